/* The run folder: results/NNN-<model>/ with checkpoints/SSSSSSS.safetensors,
 * log.jsonl, config.json and loss.png; finding the newest complete
 * checkpoint, keeping the newest K, atomic text files. API:
 * include/digcl/train.h. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "digcl/safetensors.h"
#include "digcl/train.h"
#include "digcl/error.h"

#define CHECKPOINT_SUFFIX ".safetensors"
#define CHECKPOINT_DIGITS 7

static int make_dir(const char *path, char *error, size_t size) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return digcl_format_error(error, size, "%s: cannot create the directory: %s", path,
                              strerror(errno));
}

/* mkdir -p */
static int make_dirs(const char *path, char *error, size_t size) {
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return digcl_format_error(error, size, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (make_dir(buf, error, size) != 0) return -1;
        *p = '/';
    }
    return make_dir(buf, error, size);
}

/* The leading decimal number of name followed by `end` ("-" for runs); -1 if
 * name does not start that way. */
static long long leading_index(const char *name, char end) {
    const char *p = name;
    long long value = 0;
    while (*p >= '0' && *p <= '9' && p - name < 15) value = value * 10 + (*p++ - '0');
    return p > name && *p == end ? value : -1;
}

/* The step of a complete checkpoint name (exactly digits + ".safetensors"), else -1. */
static long long checkpoint_step(const char *name) {
    size_t n = strlen(name), suffix = strlen(CHECKPOINT_SUFFIX);
    if (n < CHECKPOINT_DIGITS + suffix || strcmp(name + n - suffix, CHECKPOINT_SUFFIX) != 0)
        return -1;
    long long value = 0;
    for (size_t i = 0; i < n - suffix; i++) {
        if (name[i] < '0' || name[i] > '9' || i > 15) return -1;
        value = value * 10 + (name[i] - '0');
    }
    return value;
}

static int is_temp_file(const char *name) {
    return strstr(name, CHECKPOINT_SUFFIX ".tmp.") != NULL;
}

int digcl_results_new_run(const char *results_dir, const char *model_name, char *out,
                          size_t out_size, char *error, size_t size) {
    if (make_dirs(results_dir, error, size) != 0) return -1;
    DIR *dir = opendir(results_dir);
    if (!dir)
        return digcl_format_error(error, size, "%s: cannot read the directory: %s", results_dir,
                                  strerror(errno));
    long long next = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        long long index = leading_index(e->d_name, '-');
        if (index >= next) next = index + 1;
    }
    closedir(dir);
    char model[128];
    snprintf(model, sizeof model, "%s", model_name);
    for (char *p = model; *p; p++)
        if (*p == '/' || *p == ' ') *p = '-';
    if ((size_t)snprintf(out, out_size, "%s/%03lld-%s", results_dir, next, model) >= out_size)
        return digcl_format_error(error, size, "%s: path too long", results_dir);
    char checkpoints[4200];
    snprintf(checkpoints, sizeof checkpoints, "%s/checkpoints", out);
    if (make_dir(out, error, size) != 0) return -1;
    return make_dir(checkpoints, error, size);
}

void digcl_results_checkpoint_path(const char *run_dir, int64_t step, char *out, size_t size) {
    snprintf(out, size, "%s/checkpoints/%0*lld%s", run_dir, CHECKPOINT_DIGITS, (long long)step,
             CHECKPOINT_SUFFIX);
}

int digcl_results_latest_checkpoint(const char *run_dir, char *out, size_t size, int64_t *step) {
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoints", run_dir);
    DIR *dir = opendir(path);
    if (!dir)
        return errno == ENOENT ? 1 : digcl_format_error(out, size, "%s: %s", path, strerror(errno));
    long long best = -1;
    for (struct dirent *e; (e = readdir(dir));) {
        long long s = checkpoint_step(e->d_name);
        if (s > best) best = s;
    }
    closedir(dir);
    if (best < 0) return 1;
    digcl_results_checkpoint_path(run_dir, best, out, size);
    if (step) *step = best;
    return 0;
}

int digcl_results_latest_run(const char *results_dir, char *out, size_t out_size, char *error,
                             size_t size) {
    DIR *dir = opendir(results_dir);
    if (!dir) {
        if (errno == ENOENT) return 1;
        return digcl_format_error(error, size, "%s: cannot read the directory: %s", results_dir,
                                  strerror(errno));
    }
    long long best = -1;
    char candidate[4200], checkpoint[4400];
    for (struct dirent *e; (e = readdir(dir));) {
        long long index = leading_index(e->d_name, '-');
        if (index <= best) continue;
        snprintf(candidate, sizeof candidate, "%s/%s", results_dir, e->d_name);
        if (digcl_results_latest_checkpoint(candidate, checkpoint, sizeof checkpoint, NULL) != 0)
            continue;
        best = index;
        snprintf(out, out_size, "%s", candidate);
    }
    closedir(dir);
    return best < 0 ? 1 : 0;
}

static int compare_steps(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Removes run/checkpoints/<name>; a failure is reported, not fatal. */
static int remove_entry(const char *dir, const char *name, char *error, size_t size) {
    char path[4800];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return digcl_format_error(error, size, "%s: path too long", dir);
    if (remove(path) == 0 || errno == ENOENT) return 0;
    return digcl_format_error(error, size, "%s: cannot delete: %s", path, strerror(errno));
}

int digcl_results_prune(const char *run_dir, int keep, char *error, size_t size) {
    char dir_path[4200];
    snprintf(dir_path, sizeof dir_path, "%s/checkpoints", run_dir);
    DIR *dir = opendir(dir_path);
    if (!dir)
        return digcl_format_error(error, size, "%s: cannot read the directory: %s", dir_path,
                                  strerror(errno));
    long long *steps = NULL;
    size_t count = 0, capacity = 0;
    int status = 0;
    for (struct dirent *e; (e = readdir(dir)) && status == 0;) {
        long long s = checkpoint_step(e->d_name);
        if (is_temp_file(e->d_name)) status = remove_entry(dir_path, e->d_name, error, size);
        if (s < 0) continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            long long *grown = realloc(steps, capacity * sizeof *steps);
            if (!grown) status = digcl_format_error(error, size, "out of host memory");
            else steps = grown;
        }
        if (status == 0) steps[count++] = s;
    }
    closedir(dir);
    if (status == 0 && count > 1) qsort(steps, count, sizeof *steps, compare_steps);
    for (size_t i = 0; status == 0 && keep >= 1 && i + (size_t)keep < count; i++) {
        char path[4400];
        digcl_results_checkpoint_path(run_dir, steps[i], path, sizeof path);
        if (remove(path) != 0 && errno != ENOENT)
            status =
                digcl_format_error(error, size, "%s: cannot delete: %s", path, strerror(errno));
    }
    free(steps);
    return status;
}

/* ------------------------------------------------------------ text files */

typedef struct text_job {
    const char *text;
    size_t length;
    const char *path;
} text_job;

static int write_text(void *file, void *user, digcl_st_error *err) {
    const text_job *job = user;
    if (fwrite(job->text, 1, job->length, file) == job->length) return 0;
    snprintf(err->message, sizeof err->message, "%s: write failed: %s", job->path, strerror(errno));
    return -1;
}

int digcl_write_file_atomic(const char *path, const char *text, size_t length, char *error,
                            size_t size) {
    text_job job = {text, length, path};
    digcl_st_error err;
    if (digcl_st_write_atomic(path, write_text, &job, &err) == 0) return 0;
    return digcl_format_error(error, size, "%s", err.message);
}

/* The whole file, NUL-terminated; NULL with *missing = 1 when absent. */
static char *read_text(const char *path, size_t *length, int *missing) {
    FILE *f = fopen(path, "rb");
    *missing = !f && errno == ENOENT;
    if (!f) return NULL;
    size_t capacity = 4096, n = 0;
    char *text = malloc(capacity);
    for (size_t got; text && (got = fread(text + n, 1, capacity - n - 1, f)) > 0;) {
        n += got;
        if (capacity - n > 1) continue;
        char *grown = realloc(text, capacity *= 2);
        if (!grown) free(text);
        text = grown;
    }
    fclose(f);
    if (text) text[n] = '\0';
    *length = n;
    return text;
}

/* The "step" of one log.jsonl line; -1 when unreadable. */
static long long line_step(const char *line, size_t length) {
    char *copy = malloc(length + 1);
    if (!copy) return -1;
    memcpy(copy, line, length);
    copy[length] = '\0';
    cJSON *root = cJSON_Parse(copy);
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "step");
    long long value = cJSON_IsNumber(step) ? (long long)step->valuedouble : -1;
    cJSON_Delete(root);
    free(copy);
    return value;
}

int digcl_train_log_truncate(const char *run_dir, int64_t step, char *error, size_t size) {
    char path[4200];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    size_t length = 0;
    int missing = 0;
    char *text = read_text(path, &length, &missing);
    if (!text)
        return missing
                   ? 0
                   : digcl_format_error(error, size, "%s: cannot read: %s", path, strerror(errno));
    size_t kept = 0;
    for (size_t start = 0; start < length;) {
        const char *newline = memchr(text + start, '\n', length - start);
        size_t end = newline ? (size_t)(newline - text) + 1 : length;
        long long s =
            newline ? line_step(text + start, end - start) : -1; /* a torn last line goes */
        if (s >= 0 && s <= step) {
            memmove(text + kept, text + start, end - start);
            kept += end - start;
        }
        start = end;
    }
    int status = kept == length ? 0 : digcl_write_file_atomic(path, text, kept, error, size);
    free(text);
    return status;
}
