/* digcl/plot.h: line plots written as PNG through cairo (loss.png of a
 * training run, bench sweeps): one or more series against a shared x axis,
 * a linear or log-scaled y axis, ticks with labels, axis labels, a title and
 * a legend. Fonts: cairo's "DejaVu Sans" (fonts-dejavu-core) when present.
 *
 * A build without cairo (DIGCL_WITH_CAIRO=OFF) returns -1 with a message.
 */
#ifndef DIGCL_PLOT_H
#define DIGCL_PLOT_H

#include <stddef.h>

typedef struct digcl_plot_series {
    const char *label; /* legend text; NULL: not in the legend */
    const double *x;   /* [count] ascending */
    const double *y;   /* [count]; non-finite (and, on a log axis, <= 0) points are skipped */
    size_t count;
    double rgb[3];     /* colour, each in [0, 1] */
    double line_width; /* pixels; 0: 1.5 */
} digcl_plot_series;

typedef struct digcl_plot {
    const char *title, *x_label, *y_label;
    int log_y;         /* 1: logarithmic y axis */
    int width, height; /* pixels; 0: 960 x 600 */
    const digcl_plot_series *series;
    size_t series_count;
} digcl_plot;

/* 1 when this build can draw (cairo). */
int digcl_plot_available(void);

/* Draws and writes path atomically (temp, fsync, rename). Returns 0, or -1
 * with one line in error[size]. */
int digcl_plot_png(const digcl_plot *plot, const char *path, char *error, size_t size);
/* count panels side by side in one PNG (each panels[0].width x height, default
 * 960 x 600; the figure of `digcl bench sweep`). Same returns. */
int digcl_plot_png_panels(const digcl_plot *panels, size_t count, const char *path, char *error,
                          size_t size);

/* Nice tick values covering [low, high]: linear steps of 1, 2 or 5 x 10^k
 * (log: decades, with 2 and 5 between when few decades are shown). Returns
 * the count (at most max). */
int digcl_plot_ticks(double low, double high, int log_scale, double *ticks, int max);

#endif
