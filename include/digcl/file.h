/* digcl/file.h: writing outputs safely and telling files apart.
 *
 * Every output of digcl (checkpoints, images, archives, CSV files) is written
 * atomically: into a temp file next to the target (PATH.tmp.XXXXXX, with the
 * mode of the file it replaces, else 0666 less the umask), flushed and
 * fsync'ed, renamed over PATH, then the directory is fsync'ed. A failed write
 * leaves PATH as it was and removes the temp file, so no partial output is ever
 * left behind. digcl_st_write_atomic (safetensors.h) is this writer with the
 * safetensors error type.
 *
 * Functions that can fail return 0 on success and -1 with one line in
 * error[size] naming the file and what went wrong.
 */
#ifndef DIGCL_FILE_H
#define DIGCL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes the content into the open temp file f; returns 0, or -1 with a
 * message in error[size] (naming `path`, the final name). */
typedef int (*digcl_file_writer)(FILE *f, const char *path, void *user, char *error, size_t size);

/* Creates PATH atomically with the content `write` produces. When `write`
 * fails its message is kept; the helper's own failures (temp file, flush,
 * fsync, close, rename) are reported here. */
int digcl_file_write_atomic(const char *path, digcl_file_writer write, void *user, char *error,
                            size_t size);

/* Creates PATH atomically holding bytes[0..count). */
int digcl_file_write_bytes_atomic(const char *path, const void *bytes, size_t count, char *error,
                                  size_t size);

/* For writers that must name their own file (a library that opens it by
 * path): creates an empty PATH.tmp.XXXXXX next to path and returns its
 * malloc'ed name (NULL with a message on failure). */
char *digcl_file_temp_create(const char *path, char *error, size_t size);
/* Makes the finished temp file durable (fsync) and renames it over path, then
 * fsyncs the directory; on failure the temp file is removed. */
int digcl_file_temp_commit(const char *temp, const char *path, char *error, size_t size);

/* 1 when both paths exist and name the same file (device and inode), else 0. */
int digcl_file_same(const char *a, const char *b);

/* XXH3-64 of a whole file's bytes. */
int digcl_file_xxh3(const char *path, uint64_t *hash, char *error, size_t size);

#endif
