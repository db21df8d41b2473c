/* Shared by the files of src/train: one-line error messages. */
#ifndef DIGCL_TRAIN_INTERNAL_H
#define DIGCL_TRAIN_INTERNAL_H

#include <stddef.h>

#include "digcl/error.h" /* DIGCL_PRINTF */

/* Formats the message into error[size] (when not NULL) and returns -1. */
int train_fail(char *error, size_t size, const char *format, ...) DIGCL_PRINTF(3, 4);

#endif
