/* What src/dist/ shares: the group's fields and the deadline wait. */
#ifndef DIGCL_DIST_INTERNAL_H
#define DIGCL_DIST_INTERNAL_H

#include <time.h>

#ifdef DIGCL_HAVE_MPI
#include <mpi.h>
#endif

#include "digcl/dist.h"

struct digcl_dist {
    int rank, world, local_rank, local_size;
    int initialised; /* MPI_Init_thread was called */
    int serialized;  /* MPI_THREAD_SERIALIZED provided: the averager may use its thread */
    double timeout_s;
#ifdef DIGCL_HAVE_MPI
    MPI_Comm comm; /* a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN */
#endif
};

/* Sleeps *microseconds and doubles it up to 1 ms (polling back-off). */
void digcl_dist_pause(int *microseconds);

#ifdef DIGCL_HAVE_MPI
/* Tests `request` until done, an MPI error or the group's timeout: 0, or -1
 * with a message naming `what` and this rank. */
int digcl_dist_wait(const digcl_dist *dist, MPI_Request *request, const char *what, char *error,
                    size_t size);
#endif

#endif
