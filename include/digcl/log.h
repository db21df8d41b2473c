/* digcl/log.h: notices from the library. The library never prints: it hands
 * each notice (one line, no trailing newline) to the installed log handler,
 * and the program (apps/, tests) decides what to show. With no handler
 * installed, notices are dropped. Thread-safe: worker threads (the data
 * loader) may log; the handler is called under a lock. */
#ifndef DIGCL_LOG_H
#define DIGCL_LOG_H

#include "digcl/error.h" /* DIGCL_PRINTF */

typedef enum digcl_log_level {
    DIGCL_LOG_DEBUG = 0,  /* -v: kernels compiled or loaded, choices made */
    DIGCL_LOG_INFO = 1,   /* progress that is not an error */
    DIGCL_LOG_NOTICE = 2, /* something the user should know (CPU fallback) */
    DIGCL_LOG_WARNING = 3 /* something went wrong but work goes on (a skipped file) */
} digcl_log_level;

typedef void (*digcl_log_handler)(digcl_log_level level, const char *message, void *user);

/* Installs a handler (NULL: drop notices); returns the previous one. */
digcl_log_handler digcl_set_log_handler(digcl_log_handler handler, void *user);

void digcl_log(digcl_log_level level, const char *format, ...) DIGCL_PRINTF(2, 3);

#endif
