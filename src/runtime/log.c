/* log.c: the library's notices, handed to the installed handler (digcl/log.h). */
#include "digcl/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static digcl_log_handler log_handler = NULL;
static void *log_user = NULL;

digcl_log_handler digcl_set_log_handler(digcl_log_handler handler, void *user) {
    pthread_mutex_lock(&log_lock);
    digcl_log_handler previous = log_handler;
    log_handler = handler;
    log_user = user;
    pthread_mutex_unlock(&log_lock);
    return previous;
}

void digcl_log(digcl_log_level level, const char *format, ...) {
    char message[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    pthread_mutex_lock(&log_lock);
    if (log_handler) log_handler(level, message, log_user);
    pthread_mutex_unlock(&log_lock);
}
