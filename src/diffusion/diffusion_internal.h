/* diffusion_internal.h: what the files of src/diffusion share (private). */
#ifndef DIGCL_DIFFUSION_INTERNAL_H
#define DIGCL_DIFFUSION_INTERNAL_H

#include "digcl/diffusion.h"

/* Rows of the device table [DIFFUSION_TABLE_COUNT, 1000] (float), indexed by
 * t; the same numbering is written out in cl/diffusion.cl. */
enum {
    TABLE_SQRT_ACP = 0,
    TABLE_SQRT_ONE_MINUS_ACP = 1,
    TABLE_SQRT_RECIP_ACP = 2,
    TABLE_SQRT_RECIPM1_ACP = 3,
    TABLE_COEF1 = 4,
    TABLE_COEF2 = 5,
    TABLE_POSTERIOR_LOG_VARIANCE = 6,
    TABLE_LOG_RANGE = 7,           /* log(beta) - posterior_log_variance_clipped, in double */
    TABLE_SQRT_RECIP_ACP_LO = 8,   /* double - float(double) of row 2 */
    TABLE_SQRT_RECIPM1_ACP_LO = 9, /* double - float(double) of row 3 */
    TABLE_INV_VARIANCE = 10,       /* exp(-min_log) */
    TABLE_INV_STD = 11,            /* exp(-min_log / 2) */
    DIFFUSION_TABLE_COUNT = 12
};

struct digcl_diffusion {
    digcl_context *ctx;
    int learn_sigma;
    digcl_diffusion_schedule schedule; /* the 1000-step base process */
    digcl_buffer device_tables;        /* [DIFFUSION_TABLE_COUNT, 1000] float */
};

#define DIFFUSION_GROUP 256

/* Kernels index with int: refuse sizes that do not fit. */
void digcl_diffusion_check_size(size_t value, const char *what, const char *op);

#endif
