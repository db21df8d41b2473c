/* src/io/file.c: atomic output files, same-file checks and file hashes
 * (include/digcl/file.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "digcl/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* fsync of the directory holding path, so the rename itself is durable. */
static void sync_parent_directory(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) strcpy(dir, ".");
    else if ((size_t)(slash - path) >= sizeof dir) return;
    else if (slash == path) strcpy(dir, "/");
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some filesystems refuse fsync on directories */
        close(fd);
    }
}

int digcl_file_write_atomic(const char *path, digcl_file_writer write, void *user, char *error,
                            size_t size) {
    char *temp = digcl_file_temp_create(path, error, size);
    if (!temp) return -1;
    FILE *f = fopen(temp, "wb");
    int status = -1;
    if (!f) snprintf(error, size, "%s: cannot open its temp file: %s", path, strerror(errno));
    else status = write(f, path, user, error, size);
    if (f && fclose(f) != 0 && status == 0) {
        snprintf(error, size, "%s: writing the temp file failed: %s", path, strerror(errno));
        status = -1;
    }
    if (status == 0) status = digcl_file_temp_commit(temp, path, error, size);
    else remove(temp);
    free(temp);
    return status;
}

typedef struct byte_span {
    const void *bytes;
    size_t count;
} byte_span;

static int write_span(FILE *f, const char *path, void *user, char *error, size_t size) {
    const byte_span *span = user;
    if (span->count == 0 || fwrite(span->bytes, 1, span->count, f) == span->count) return 0;
    snprintf(error, size, "%s: writing %zu bytes failed: %s", path, span->count, strerror(errno));
    return -1;
}

int digcl_file_write_bytes_atomic(const char *path, const void *bytes, size_t count, char *error,
                                  size_t size) {
    byte_span span = {bytes, count};
    return digcl_file_write_atomic(path, write_span, &span, error, size);
}

/* The mode of the file a write replaces, else 0666 less the umask (what
 * open(2) would give a new file). */
static mode_t output_mode(const char *path) {
    struct stat info;
    if (stat(path, &info) == 0 && S_ISREG(info.st_mode)) return info.st_mode & 07777;
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

char *digcl_file_temp_create(const char *path, char *error, size_t size) {
    struct stat existing;
    if (!path[0]) {
        snprintf(error, size, "the output file name is empty");
        return NULL;
    }
    if (stat(path, &existing) == 0 && S_ISDIR(existing.st_mode)) {
        snprintf(error, size, "%s: is a directory, expected a file name", path);
        return NULL;
    }
    size_t n = strlen(path);
    char *temp = malloc(n + 16);
    if (!temp) {
        snprintf(error, size, "%s: out of memory", path);
        return NULL;
    }
    snprintf(temp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(temp);
    if (fd < 0) {
        snprintf(error, size, "%s: cannot create a temp file next to it: %s", path,
                 strerror(errno));
        free(temp);
        return NULL;
    }
    fchmod(fd, output_mode(path));
    close(fd);
    return temp;
}

int digcl_file_temp_commit(const char *temp, const char *path, char *error, size_t size) {
    int fd = open(temp, O_RDONLY);
    int status = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (status != 0)
        snprintf(error, size, "%s: flushing to disk failed: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    if (status == 0 && rename(temp, path) != 0) {
        snprintf(error, size, "%s: renaming the temp file into place failed: %s", path,
                 strerror(errno));
        status = -1;
    }
    if (status != 0) remove(temp);
    else sync_parent_directory(path);
    return status;
}

int digcl_file_same(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int digcl_file_xxh3(const char *path, uint64_t *hash, char *error, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(error, size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    XXH3_state_t *state = XXH3_createState();
    int status = state && XXH3_64bits_reset(state) != XXH_ERROR ? 0 : -1;
    if (status != 0) snprintf(error, size, "%s: out of memory for the hash state", path);
    unsigned char chunk[1 << 16];
    size_t got;
    while (status == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (XXH3_64bits_update(state, chunk, got) == XXH_ERROR) status = -1;
    if (status == 0 && ferror(f)) {
        snprintf(error, size, "%s: read error: %s", path, strerror(errno));
        status = -1;
    }
    if (status == 0) *hash = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    fclose(f);
    return status;
}
