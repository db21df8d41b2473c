/* apps/sample_output.c: what `digcl sample` writes (apps/sample.h): PNG text
 * metadata ("parameters" in the form of other diffusion tools, "digcl" JSON),
 * the grid, 000000.png ... with labels.csv, the .npz and the latents. Every
 * file goes through a temp file and a rename (digcl/file.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/file.h"
#include "digcl/safetensors.h"
#include "sample.h"

#ifndef DIGCL_VERSION
#define DIGCL_VERSION "0.1.0"
#endif

#define GRID_MIN_CELL_PIXELS 64 /* cells are upscaled to at least this (auto --grid-scale) */
#define GRID_PADDING         2

/* ------------------------------------------------------------ checks */

/* The folder part of path ("." without one). */
static void parent_of(const char *path, char *dir, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, size, ".");
    else if (slash == path) snprintf(dir, size, "/");
    else snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

static int check_output_file(const sample_args *a, const char *flag, const char *path) {
    char dir[4096];
    struct stat st;
    if (!path) return 0;
    parent_of(path, dir, sizeof dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK) != 0) {
        fprintf(stderr, "digcl sample: %s %s: the folder %s %s\n", flag, path, dir,
                stat(dir, &st) != 0 ? "does not exist" : "cannot be written");
        return 2;
    }
    const char *inputs[2] = {a->model.ckpt, a->noise_path};
    for (int i = 0; i < 2; i++) {
        if (!inputs[i] || !digcl_file_same(path, inputs[i])) continue;
        fprintf(stderr, "digcl sample: %s %s is the input %s; refusing to overwrite it\n", flag,
                path, inputs[i]);
        return 2;
    }
    return 0;
}

/* mkdir -p */
static int make_folder(const char *path) {
    char partial[4096];
    size_t n = strlen(path);
    if (n >= sizeof partial) return -1;
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        if (mkdir(partial, 0755) != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

static int check_output_dir(const char *dir) {
    struct stat st;
    if (!dir) return 0;
    if (make_folder(dir) != 0 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
        access(dir, W_OK) != 0) {
        fprintf(stderr, "digcl sample: --output-dir %s: %s\n", dir,
                stat(dir, &st) == 0 && !S_ISDIR(st.st_mode) ? "is a file, not a folder"
                                                            : "cannot be created or written");
        return 2;
    }
    return 0;
}

int sample_check_outputs(const sample_args *a) {
    if (a->npz_path && !digcl_npz_available()) {
        fprintf(stderr,
                "digcl sample: --npz %s: this build has no libzip (configure with "
                "-DDIGCL_WITH_ZIP=ON); --output-dir writes the images and labels.csv\n",
                a->npz_path);
        return 2;
    }
    int status = check_output_file(a, "-o", a->grid_path);
    if (status == 0) status = check_output_file(a, "--npz", a->npz_path);
    if (status == 0) status = check_output_file(a, "--output-latents", a->latents_path);
    if (status == 0) status = check_output_dir(a->output_dir);
    return status;
}

/* ------------------------------------------------------------ metadata */

static const char *checkpoint_name(const sample_args *a, char *buf, size_t size) {
    const char *path = a->model.ckpt ? a->model.ckpt : a->model.model ? a->model.model : "custom";
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    snprintf(buf, size, "%.*s", dot && dot != base ? (int)(dot - base) : (int)strlen(base), base);
    return buf;
}

/* "Steps: 250, Sampler: ddpm, CFG scale: 4.0, Seed: 42, Image: 3, Size: 28x28, Model hash: ...,
 *  Model: name, Class: 3" (a grid: the image range and every label). */
static void parameters_text(const sample_args *a, const sample_plan *plan, const char *image_text,
                            const char *class_text, char *out, size_t size) {
    char name[256], scale[32], eta[48] = "";
    double s = plan->options.cfg_scale;
    snprintf(scale, sizeof scale, s == floor(s) && fabs(s) < 1e6 ? "%.1f" : "%g", s);
    if (plan->options.kind == DIGCL_SAMPLER_DDIM)
        snprintf(eta, sizeof eta, ", Eta: %g", (double)plan->options.eta);
    snprintf(
        out, size,
        "Steps: %d, Sampler: %s, CFG scale: %s, Seed: %llu, Image: %s, Size: %dx%d, Model hash: %.10s, "
        "Model: %s%s, Class: %s",
        plan->options.steps, a->sampler, scale, (unsigned long long)a->seed, image_text,
        plan->out_w, plan->out_h, plan->ckpt_hash, checkpoint_name(a, name, sizeof name), eta,
        class_text);
}

/* The digcl JSON: version, checkpoint and hash, model config, every flag,
 * then what `extra` adds (image, seed, label ...). Returns malloc'ed text. */
static char *digcl_json(const sample_args *a, const sample_plan *plan, cJSON *extra) {
    cJSON *root = cJSON_CreateObject();
    char *config = digcl_model_config_to_json(&plan->config);
    cJSON_AddStringToObject(root, "version", DIGCL_VERSION);
    cJSON_AddStringToObject(root, "command", "sample");
    if (a->model.ckpt) cJSON_AddStringToObject(root, "checkpoint", a->model.ckpt);
    cJSON_AddStringToObject(root, "checkpoint_xxh3", plan->ckpt_hash);
    cJSON_AddItemToObject(root, "model", config ? cJSON_Parse(config) : cJSON_CreateNull());
    cJSON_AddItemToObject(root, "flags", cJSON_Parse(plan->args_json));
    for (cJSON *item = extra ? extra->child : NULL; item;) {
        cJSON *next = item->next;
        cJSON_AddItemToObject(root, item->string, cJSON_DetachItemViaPointer(extra, item));
        item = next;
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    cJSON_Delete(extra);
    free(config);
    return text;
}

static int write_png_with_metadata(const char *path, const digcl_image *image,
                                   const char *parameters, char *json) {
    char error[1024];
    if (!json) {
        fprintf(stderr, "digcl sample: %s: out of memory for the metadata\n", path);
        return 1;
    }
    digcl_png_text texts[2] = {{"parameters", parameters}, {"digcl", json}};
    int status = digcl_png_write(path, image, texts, 2, error, sizeof error);
    free(json);
    if (status == 0) return 0;
    fprintf(stderr, "digcl sample: %s\n", error);
    return 1;
}

int sample_write_image(const sample_args *a, const sample_plan *plan, const digcl_image *image,
                       int i) {
    char path[4096], parameters[1024], label[32], number[32];
    uint64_t image_number = a->first_image + (uint64_t)i;
    int y = plan->labels[i];
    snprintf(path, sizeof path, "%s/%06llu.png", a->output_dir, (unsigned long long)image_number);
    snprintf(label, sizeof label, "%d", y);
    snprintf(number, sizeof number, "%llu", (unsigned long long)image_number);
    parameters_text(a, plan, number, label, parameters, sizeof parameters);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddNumberToObject(extra, "image", (double)image_number);
    cJSON_AddNumberToObject(extra, "seed", (double)a->seed);
    cJSON_AddNumberToObject(extra, "label", y);
    cJSON_AddStringToObject(extra, "class_name", plan->class_names[y]);
    return write_png_with_metadata(path, image, parameters, digcl_json(a, plan, extra));
}

/* ------------------------------------------------------------ grid */

/* One caption per row when every row holds a single class. */
static int rows_share_labels(const sample_plan *plan, int cols) {
    for (int i = 0; i < plan->n; i++)
        if (plan->labels[i] != plan->labels[i - i % cols]) return 0;
    return 1;
}

static void grid_shape(const sample_args *a, const sample_plan *plan, int *rows, int *scale) {
    int n = plan->n, classes = plan->config.num_classes;
    if (a->grid_rows > 0) *rows = (int)(a->grid_rows < n ? a->grid_rows : n);
    else if (plan->labels_all && n >= classes) *rows = classes;
    else {
        int cols = (int)ceil(sqrt((double)n));
        *rows = (n + cols - 1) / cols;
    }
    *scale = a->grid_scale > 0 ? (int)a->grid_scale
                               : (GRID_MIN_CELL_PIXELS + plan->out_h - 1) / plan->out_h;
    if (*scale > 8 && a->grid_scale <= 0) *scale = 8;
}

static int write_grid(const sample_args *a, const sample_plan *plan, const sample_outputs *out) {
    int rows, scale;
    grid_shape(a, plan, &rows, &scale);
    int cols = (plan->n + rows - 1) / rows;
    const char **captions = malloc((size_t)plan->n * sizeof *captions);
    char *labels_text = malloc((size_t)plan->n * 8 + 1);
    cJSON *extra = cJSON_CreateObject(), *labels = cJSON_AddArrayToObject(extra, "labels");
    if (!captions || !labels_text) {
        free(captions);
        free(labels_text);
        cJSON_Delete(extra);
        fprintf(stderr, "digcl sample: out of memory for the grid\n");
        return 1;
    }
    size_t used = 0;
    for (int i = 0; i < plan->n; i++) {
        captions[i] = plan->class_names[plan->labels[i]];
        used += (size_t)snprintf(labels_text + used, 9, "%s%d", i ? "," : "", plan->labels[i]);
        cJSON_AddItemToArray(labels, cJSON_CreateNumber(plan->labels[i]));
    }
    digcl_grid_options o = {
        rows, scale, GRID_PADDING,
        rows_share_labels(plan, cols) ? DIGCL_CAPTION_ROWS : DIGCL_CAPTION_CELLS, captions};
    digcl_image grid;
    char error[1024], parameters[4096 + 1024];
    int status = 0;
    if (digcl_grid_compose(out->images, plan->n, &o, &grid, error, sizeof error) != 0) {
        fprintf(stderr, "digcl sample: -o %s: %s\n", a->grid_path, error);
        status = 1;
        cJSON_Delete(extra);
    } else {
        char range[64];
        snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)a->first_image,
                 (unsigned long long)(a->first_image + (uint64_t)plan->n - 1));
        cJSON_AddNumberToObject(extra, "images", plan->n);
        cJSON_AddNumberToObject(extra, "seed", (double)a->seed);
        cJSON_AddNumberToObject(extra, "first_image", (double)a->first_image);
        parameters_text(a, plan, range, plan->n <= 512 ? labels_text : "(see digcl)", parameters,
                        sizeof parameters);
        status =
            write_png_with_metadata(a->grid_path, &grid, parameters, digcl_json(a, plan, extra));
        digcl_image_free(&grid);
    }
    free(captions);
    free(labels_text);
    return status;
}

/* ------------------------------------------------------------ labels.csv */

typedef struct csv_job {
    const sample_args *a;
    const sample_plan *plan;
} csv_job;

/* A CSV field: quoted when it holds a comma, a quote or a newline. */
static void csv_field(FILE *f, const char *text) {
    if (!strpbrk(text, ",\"\n")) {
        fputs(text, f);
        return;
    }
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static int write_csv_rows(FILE *f, const char *path, void *user, char *error, size_t size) {
    const csv_job *job = user;
    fputs("image,file,label,class_name\n", f);
    for (int i = 0; i < job->plan->n; i++) {
        int y = job->plan->labels[i];
        unsigned long long number = job->a->first_image + (unsigned long long)i;
        fprintf(f, "%llu,%06llu.png,%d,", number, number, y);
        csv_field(f, job->plan->class_names[y]);
        fputc('\n', f);
    }
    if (!ferror(f)) return 0;
    snprintf(error, size, "%s: write failed: %s", path, strerror(errno));
    return -1;
}

static int write_labels_csv(const sample_args *a, const sample_plan *plan) {
    char path[4096], error[1024];
    csv_job job = {a, plan};
    snprintf(path, sizeof path, "%s/labels.csv", a->output_dir);
    if (digcl_file_write_atomic(path, write_csv_rows, &job, error, sizeof error) == 0) return 0;
    fprintf(stderr, "digcl sample: %s\n", error);
    return 1;
}

/* ------------------------------------------------------------ npz, latents */

static int write_npz(const sample_args *a, const sample_plan *plan, const sample_outputs *out) {
    char error[1024];
    if (digcl_npz_write(a->npz_path, out->images, plan->n, plan->labels, error, sizeof error) == 0)
        return 0;
    fprintf(stderr, "digcl sample: --npz %s\n", error);
    return 1;
}

static int write_latents(const sample_args *a, const sample_plan *plan, const sample_outputs *out) {
    const digcl_model_config *c = &plan->config;
    int64_t shape[4] = {plan->n, c->in_channels, c->input_size, c->input_size};
    digcl_st_writer *w = digcl_st_writer_new();
    char *config = digcl_model_config_to_json(c);
    char *json = digcl_json(a, plan, NULL);
    digcl_st_error err = {""};
    int status = w && config && json ? 0 : -1;
    if (status != 0)
        snprintf(err.message, sizeof err.message, "%s: out of memory", a->latents_path);
    if (status == 0) status = digcl_st_writer_add_f32(w, "x0", 4, shape, out->latents, &err);
    if (status == 0)
        status = digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, config, &err);
    if (status == 0) status = digcl_st_writer_set_metadata(w, "digcl", json, &err);
    if (status == 0) status = digcl_st_writer_write(w, a->latents_path, &err);
    if (status != 0) fprintf(stderr, "digcl sample: --output-latents %s\n", err.message);
    digcl_st_writer_free(w);
    free(config);
    free(json);
    return status != 0;
}

int sample_write_collections(const sample_args *a, const sample_plan *plan,
                             const sample_outputs *out) {
    int status = 0;
    if (out->latents && a->latents_path) status = write_latents(a, plan, out);
    if (!plan->writes_images) return status;
    if (status == 0 && a->grid_path) status = write_grid(a, plan, out);
    if (status == 0 && a->output_dir) status = write_labels_csv(a, plan);
    if (status == 0 && a->npz_path) status = write_npz(a, plan, out);
    return status;
}
