/* loss.png of a run folder, drawn from its log.jsonl: the logged loss (the
 * mean of each log interval) and a Gaussian moving average of its logarithm,
 * against steps, log-scaled. The training loop redraws it at every
 * checkpoint; `digcl plot` redraws it on demand. API: include/digcl/train.h. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/error.h"
#include "digcl/plot.h"
#include "digcl/train.h"

#define SIGMA 5 /* log points: the width of the moving average */

typedef struct loss_points {
    double *step, *loss; /* [count] */
    size_t count, capacity;
} loss_points;

static int add_point(loss_points *p, double step, double loss) {
    if (p->count == p->capacity) {
        size_t capacity = p->capacity ? 2 * p->capacity : 256;
        double *steps = realloc(p->step, capacity * sizeof *steps);
        if (steps) p->step = steps;
        double *losses = steps ? realloc(p->loss, capacity * sizeof *losses) : NULL;
        if (losses) p->loss = losses;
        if (!steps || !losses) return -1;
        p->capacity = capacity;
    }
    p->step[p->count] = step;
    p->loss[p->count++] = loss;
    return 0;
}

/* Every line of log.jsonl with a numeric step and loss; unreadable lines are skipped. */
static int read_points(const char *path, loss_points *p, char *error, size_t size) {
    FILE *f = fopen(path, "r");
    if (!f) return digcl_format_error(error, size, "%s: cannot read: %s", path, strerror(errno));
    char line[2048];
    int status = 0;
    while (status == 0 && fgets(line, sizeof line, f)) {
        cJSON *root = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "step");
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(root, "loss");
        if (cJSON_IsNumber(step) && cJSON_IsNumber(loss) &&
            add_point(p, step->valuedouble, loss->valuedouble) != 0)
            status = digcl_format_error(error, size, "%s: out of memory", path);
        cJSON_Delete(root);
    }
    fclose(f);
    return status;
}

/* A Gaussian-weighted moving average of log(loss), sigma SIGMA log points: no
 * lag, and no jumps when a large early loss leaves a box window (a trailing
 * 20-point mean fell by 40 % when the first interval's 0.2 left it). Near the
 * start the window shrinks to stay centred, so the curve follows the steep
 * first intervals instead of being dragged by them; at the end it is one-sided. */
static void smooth(const double *loss, size_t n, double *average /* [n] */) {
    for (size_t i = 0; i < n; i++) {
        size_t reach = i < 3 * SIGMA ? i : 3 * SIGMA;
        size_t last = i + reach < n ? i + reach : n - 1;
        double log_sum = 0, weight_sum = 0;
        for (size_t j = i - reach; j <= last; j++) {
            double d = ((double)j - (double)i) / SIGMA, w = exp(-0.5 * d * d);
            log_sum += w * log(fmax(loss[j], 1e-30));
            weight_sum += w;
        }
        average[i] = exp(log_sum / weight_sum);
    }
}

int digcl_train_loss_plot(const char *run_dir, const char *png_path, char *error, size_t size) {
    if (!digcl_plot_available())
        return digcl_format_error(error, size, "this build has no plotting (DIGCL_WITH_CAIRO=OFF)");
    char log_path[4200], default_png[4200];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", run_dir);
    if (!png_path) {
        snprintf(default_png, sizeof default_png, "%s/loss.png", run_dir);
        png_path = default_png;
    }
    loss_points p = {0};
    int status = read_points(log_path, &p, error, size);
    if (status == 0 && p.count == 0) {
        digcl_format_error(error, size, "%s: no log lines with a step and a loss yet", log_path);
        status = 1;
    }
    double *average = status == 0 ? malloc(p.count * sizeof *average) : NULL;
    if (status == 0 && !average) status = digcl_format_error(error, size, "out of memory");
    if (status == 0) {
        smooth(p.loss, p.count, average);
        digcl_plot_series series[2] = {
            {"loss (mean per log interval)", p.step, p.loss, p.count, {0.55, 0.7, 0.9}, 1.2},
            {"moving average (Gaussian, 5 intervals)",
             p.step,
             average,
             p.count,
             {0.8, 0.2, 0.1},
             2.2}};
        digcl_plot plot = {"training loss", "step", "loss (log scale)", 1, 0, 0, series, 2};
        status = digcl_plot_png(&plot, png_path, error, size);
    }
    free(average);
    free(p.step);
    free(p.loss);
    return status;
}
