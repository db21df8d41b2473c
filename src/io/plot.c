/* Line plots as PNG through cairo (include/digcl/plot.h): data ranges, nice
 * ticks, axes, labels, legend; the PNG stream goes through the atomic writer
 * of safetensors.c. */
#include "digcl/plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "digcl/error.h"
#include "digcl/safetensors.h"

#ifdef DIGCL_HAVE_CAIRO
#include <cairo.h>
#endif

static int fail(char *error, size_t size, const char *format, ...) DIGCL_PRINTF(3, 4);

static int fail(char *error, size_t size, const char *format, ...) {
    if (error && size) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, size, format, args);
        va_end(args);
    }
    return -1;
}

/* ------------------------------------------------------------ ticks */

static int linear_ticks(double low, double high, double *ticks, int max) {
    double span = high - low;
    if (!(span > 0)) span = fabs(low) > 0 ? fabs(low) : 1.0;
    double raw = span / 5.0, decade = pow(10.0, floor(log10(raw))), step = decade;
    const double mult[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++) {
        step = mult[i] * decade;
        if (span / step <= 6.0) break;
    }
    int n = 0;
    for (double v = ceil(low / step - 1e-9) * step; v <= high + 1e-9 * step && n < max; v += step)
        ticks[n++] = fabs(v) < 1e-12 * step ? 0.0 : v;
    return n;
}

static int log_ticks(double low, double high, double *ticks, int max) {
    double first = floor(log10(low)), last = ceil(log10(high));
    int decades = (int)(last - first);
    if (decades < 1 || log10(high) - log10(low) < 0.7) return linear_ticks(low, high, ticks, max);
    const double mult_few[] = {1, 2, 5}, mult_one[] = {1};
    const double *mult = decades <= 3 ? mult_few : mult_one;
    int per = decades <= 3 ? 3 : 1, n = 0;
    for (double e = first; e <= last && n < max; e++)
        for (int i = 0; i < per && n < max; i++) {
            double v = mult[i] * pow(10.0, e);
            if (v >= low * (1 - 1e-9) && v <= high * (1 + 1e-9)) ticks[n++] = v;
        }
    return n;
}

int digcl_plot_ticks(double low, double high, int log_scale, double *ticks, int max) {
    if (log_scale && low > 0) return log_ticks(low, high, ticks, max);
    return linear_ticks(low, high, ticks, max);
}

#ifdef DIGCL_HAVE_CAIRO

int digcl_plot_available(void) { return 1; }

/* ------------------------------------------------------------ ranges */

typedef struct plot_frame {
    double x0, x1, y0, y1;           /* data range (y in log10 when log_y) */
    double left, right, top, bottom; /* plot area in pixels */
    int log_y;
} plot_frame;

static int usable(const digcl_plot *plot, double y) {
    return isfinite(y) && (!plot->log_y || y > 0);
}

static double y_value(const plot_frame *f, double y) { return f->log_y ? log10(y) : y; }

/* Returns 0 when no point is drawable. */
static int data_range(const digcl_plot *plot, plot_frame *f) {
    int any = 0;
    for (size_t s = 0; s < plot->series_count; s++) {
        const digcl_plot_series *series = &plot->series[s];
        for (size_t i = 0; i < series->count; i++) {
            double x = series->x[i], y = series->y[i];
            if (!isfinite(x) || !usable(plot, y)) continue;
            y = y_value(f, y);
            if (!any) f->x0 = f->x1 = x, f->y0 = f->y1 = y;
            f->x0 = fmin(f->x0, x), f->x1 = fmax(f->x1, x);
            f->y0 = fmin(f->y0, y), f->y1 = fmax(f->y1, y);
            any = 1;
        }
    }
    if (!any) return 0;
    if (f->x1 <= f->x0) f->x1 = f->x0 + 1;
    double pad = (f->y1 - f->y0) * 0.05;
    if (!(pad > 0)) pad = f->log_y ? 0.1 : (fabs(f->y0) > 0 ? fabs(f->y0) * 0.1 : 1.0);
    f->y0 -= pad, f->y1 += pad;
    return 1;
}

static double px(const plot_frame *f, double x) {
    return f->left + (x - f->x0) / (f->x1 - f->x0) * (f->right - f->left);
}

static double py(const plot_frame *f, double y) {
    return f->bottom - (y - f->y0) / (f->y1 - f->y0) * (f->bottom - f->top);
}

/* ------------------------------------------------------------ drawing */

static void format_tick(char *buf, size_t size, double v) {
    double a = fabs(v);
    if (a != 0 && (a >= 1e5 || a < 1e-3)) snprintf(buf, size, "%.0e", v);
    else snprintf(buf, size, "%g", v);
}

static void text_at(cairo_t *cr, const char *text, double x, double y, double align_x,
                    double align_y) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, text, &e);
    cairo_move_to(cr, x - e.width * align_x - e.x_bearing, y - e.height * align_y - e.y_bearing);
    cairo_show_text(cr, text);
}

static void draw_axes(cairo_t *cr, const digcl_plot *plot, const plot_frame *f) {
    double ticks[64];
    char label[32];
    cairo_set_font_size(cr, 13);
    int n = digcl_plot_ticks(f->x0, f->x1, 0, ticks, 64);
    for (int i = 0; i < n; i++) {
        double x = px(f, ticks[i]);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, f->top), cairo_line_to(cr, x, f->bottom), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        format_tick(label, sizeof label, ticks[i]);
        text_at(cr, label, x, f->bottom + 8, 0.5, 0.0);
    }
    double low = f->log_y ? pow(10, f->y0) : f->y0, high = f->log_y ? pow(10, f->y1) : f->y1;
    n = digcl_plot_ticks(low, high, f->log_y, ticks, 64);
    for (int i = 0; i < n; i++) {
        double y = py(f, y_value(f, ticks[i]));
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, f->left, y), cairo_line_to(cr, f->right, y), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        format_tick(label, sizeof label, ticks[i]);
        text_at(cr, label, f->left - 8, y, 1.0, 0.5);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, f->left, f->top, f->right - f->left, f->bottom - f->top);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 15);
    if (plot->x_label)
        text_at(cr, plot->x_label, (f->left + f->right) / 2, f->bottom + 34, 0.5, 0.0);
    if (plot->y_label) {
        cairo_save(cr);
        cairo_translate(cr, 22, (f->top + f->bottom) / 2);
        cairo_rotate(cr, -2.0 * atan(1.0));
        text_at(cr, plot->y_label, 0, 0, 0.5, 0.5);
        cairo_restore(cr);
    }
    cairo_set_font_size(cr, 18);
    if (plot->title) text_at(cr, plot->title, (f->left + f->right) / 2, 14, 0.5, 0.0);
}

static void draw_series(cairo_t *cr, const digcl_plot *plot, const plot_frame *f) {
    cairo_save(cr);
    cairo_rectangle(cr, f->left, f->top, f->right - f->left, f->bottom - f->top);
    cairo_clip(cr);
    for (size_t s = 0; s < plot->series_count; s++) {
        const digcl_plot_series *series = &plot->series[s];
        cairo_set_source_rgb(cr, series->rgb[0], series->rgb[1], series->rgb[2]);
        cairo_set_line_width(cr, series->line_width > 0 ? series->line_width : 1.5);
        int open = 0;
        for (size_t i = 0; i < series->count; i++) {
            double x = series->x[i], y = series->y[i];
            if (!isfinite(x) || !usable(plot, y)) {
                open = 0;
                continue;
            }
            double X = px(f, x), Y = py(f, y_value(f, y));
            if (open) cairo_line_to(cr, X, Y);
            else cairo_move_to(cr, X, Y);
            open = 1;
        }
        cairo_stroke(cr);
    }
    cairo_restore(cr);
}

static void draw_legend(cairo_t *cr, const digcl_plot *plot, const plot_frame *f) {
    cairo_set_font_size(cr, 13);
    double y = f->top + 18;
    for (size_t s = 0; s < plot->series_count; s++) {
        const digcl_plot_series *series = &plot->series[s];
        if (!series->label) continue;
        cairo_text_extents_t e;
        cairo_text_extents(cr, series->label, &e);
        double x = f->right - 16 - e.width;
        cairo_set_source_rgb(cr, series->rgb[0], series->rgb[1], series->rgb[2]);
        cairo_set_line_width(cr, 3);
        cairo_move_to(cr, x - 34, y), cairo_line_to(cr, x - 8, y), cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, series->label, x, y, 0.0, 0.5);
        y += 20;
    }
}

static void draw(cairo_t *cr, const digcl_plot *plot, plot_frame *f, int width, int height) {
    f->left = 90, f->right = width - 24, f->top = 44, f->bottom = height - 64;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_line_width(cr, 1);
    draw_axes(cr, plot, f);
    draw_series(cr, plot, f);
    draw_legend(cr, plot, f);
}

/* ------------------------------------------------------------ output */

static cairo_status_t png_chunk(void *file, const unsigned char *data, unsigned int length) {
    return fwrite(data, 1, length, file) == length ? CAIRO_STATUS_SUCCESS
                                                   : CAIRO_STATUS_WRITE_ERROR;
}

static int write_png(void *file, void *surface, digcl_st_error *err) {
    cairo_status_t status = cairo_surface_write_to_png_stream(surface, png_chunk, file);
    if (status == CAIRO_STATUS_SUCCESS) return 0;
    snprintf(err->message, sizeof err->message, "writing the PNG failed: %s",
             cairo_status_to_string(status));
    return -1;
}

/* Panel i of count takes the i-th column of equal width of the picture. */
static void draw_panel(cairo_t *cr, const digcl_plot *plot, int x_offset, int width, int height) {
    plot_frame frame = {0};
    frame.log_y = plot->log_y;
    if (!data_range(plot, &frame)) frame.x0 = 0, frame.x1 = 1, frame.y0 = 0, frame.y1 = 1;
    cairo_save(cr);
    cairo_translate(cr, x_offset, 0);
    cairo_rectangle(cr, 0, 0, width, height);
    cairo_clip(cr);
    draw(cr, plot, &frame, width, height);
    cairo_restore(cr);
}

int digcl_plot_png_panels(const digcl_plot *panels, size_t count, const char *path, char *error,
                          size_t size) {
    if (count == 0) return fail(error, size, "%s: no panels to draw", path);
    int width = panels[0].width > 0 ? panels[0].width : 960;
    int height = panels[0].height > 0 ? panels[0].height : 600;
    cairo_surface_t *surface =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, width * (int)count, height);
    cairo_t *cr = cairo_create(surface);
    for (size_t i = 0; i < count; i++) draw_panel(cr, &panels[i], (int)i * width, width, height);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    digcl_st_error err;
    int result = status != CAIRO_STATUS_SUCCESS ? fail(error, size, "%s: drawing failed: %s", path,
                                                       cairo_status_to_string(status))
                 : digcl_st_write_atomic(path, write_png, surface, &err) != 0
                     ? fail(error, size, "%s: %s", path, err.message)
                     : 0;
    cairo_surface_destroy(surface);
    return result;
}

int digcl_plot_png(const digcl_plot *plot, const char *path, char *error, size_t size) {
    return digcl_plot_png_panels(plot, 1, path, error, size);
}

#else

int digcl_plot_available(void) { return 0; }

int digcl_plot_png_panels(const digcl_plot *panels, size_t count, const char *path, char *error,
                          size_t size) {
    (void)panels, (void)count;
    return fail(error, size,
                "%s: this digcl was built without cairo (DIGCL_WITH_CAIRO=OFF), so "
                "it cannot draw plots",
                path);
}

int digcl_plot_png(const digcl_plot *plot, const char *path, char *error, size_t size) {
    return digcl_plot_png_panels(plot, 1, path, error, size);
}

#endif
