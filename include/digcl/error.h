/* digcl/error.h: fatal errors, the OpenCL call checker and error names.
 *
 * This is the one mechanism for device and internal errors (bad user files are
 * reported by return codes with a message instead, see checkpoint.h). A fatal
 * error formats one message (what failed, where, and a hint), keeps it for
 * digcl_last_error() and calls the installed handler. The library itself never
 * prints or exits: without a handler it calls abort(). The CLI installs a
 * handler that prints "digcl: error: ..." and exits 1; tests install one that
 * longjmps back, so that the error path itself can be tested.
 */
#ifndef DIGCL_ERROR_H
#define DIGCL_ERROR_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>

#if defined(__GNUC__)
#define DIGCL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DIGCL_PRINTF(a, b)
#endif

/* Called with the complete message after it was formatted. Must not return
 * normally: exit, abort or longjmp. */
typedef void (*digcl_error_handler)(const char *message, void *user);

/* Installs a handler; NULL restores the default (abort without printing).
 * Returns the previous handler. */
digcl_error_handler digcl_set_error_handler(digcl_error_handler handler, void *user);

/* The last fatal message (also kept when a handler longjmps). */
const char *digcl_last_error(void);

/* Formats a message and calls the handler. Never returns. */
_Noreturn void digcl_fatal(const char *format, ...) DIGCL_PRINTF(1, 2);

/* Formats one line into error[size] (when not NULL) and returns -1: the
 * failure path of every function that reports bad input by return code. */
int digcl_format_error(char *error, size_t size, const char *format, ...) DIGCL_PRINTF(3, 4);

/* "CL_INVALID_VALUE" and so on; "CL_UNKNOWN_ERROR(-9999)" for unknown codes. */
const char *digcl_cl_error_name(cl_int code);

/* Fails with the call text, the error name, file:line and a hint. */
_Noreturn void digcl_cl_failed(const char *call, cl_int code, const char *file, int line);

#define DIGCL_CL_CHECK(call)                                                 \
    do {                                                                     \
        cl_int digcl_check_status_ = (call);                                 \
        if (digcl_check_status_ != CL_SUCCESS)                               \
            digcl_cl_failed(#call, digcl_check_status_, __FILE__, __LINE__); \
    } while (0)

#endif
