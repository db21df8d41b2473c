/* src/io/image_grid.c: sample grids with a caption strip (include/digcl/image.h).
 *
 * Layout (all in output pixels, s = scale, P = padding):
 *   cell      = H s x W s, nearest-neighbour upscaled
 *   ROWS      : a strip of width L (the widest row caption + 2 margins) on the left
 *               of every row, caption vertically centred
 *   CELLS     : a strip of height F (font size + 4) under every cell, caption
 *               centred and shrunk to fit the cell width
 *   width     = L + cols (W s + P) + P,  height = rows (H s + F + P) + P
 * Background white, text black, drawn as a cairo A8 coverage mask (DejaVu Sans
 * through fontconfig) and blended into every channel: out = out (1 - a).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/image.h"
#include "digcl/log.h"

#ifdef DIGCL_HAVE_CAIRO
#include <cairo.h>
#endif

#define CAPTION_MARGIN 6
#define CAPTION_FONT   "DejaVu Sans"

typedef struct grid_layout {
    int rows, cols;
    int cell_w, cell_h; /* upscaled cell */
    int left;           /* ROWS caption strip width */
    int strip;          /* CELLS caption strip height */
    double font_px;
    int padding;
} grid_layout;

int digcl_grid_has_captions(void) {
#ifdef DIGCL_HAVE_CAIRO
    return 1;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------ text (cairo) */

#ifdef DIGCL_HAVE_CAIRO
static void select_font(cairo_t *cr, double font_px) {
    cairo_select_font_face(cr, CAPTION_FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, font_px);
}

static double text_width(cairo_t *cr, const char *text) {
    cairo_text_extents_t extents;
    cairo_text_extents(cr, text, &extents);
    return extents.x_advance;
}

/* Widest row caption at the layout's font size (a scratch surface measures). */
static int widest_row_caption(const grid_layout *g, const char *const *labels, int count) {
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
    cairo_t *cr = cairo_create(surface);
    select_font(cr, g->font_px);
    double widest = 0;
    for (int r = 0; r < g->rows && r * g->cols < count; r++) {
        double w = text_width(cr, labels[r * g->cols]);
        if (w > widest) widest = w;
    }
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
    return (int)ceil(widest);
}

/* Draws text with its left baseline at (x, y), shrunk to at most max_width. */
static void draw_text(cairo_t *cr, const char *text, double font_px, double x, double y,
                      double max_width, int centred) {
    select_font(cr, font_px);
    double w = text_width(cr, text);
    if (w > max_width && w > 0) {
        select_font(cr, font_px * max_width / w);
        w = text_width(cr, text);
    }
    cairo_move_to(cr, centred ? x + (max_width - w) / 2 : x, y);
    cairo_show_text(cr, text);
}

static void draw_captions(cairo_t *cr, const grid_layout *g, const char *const *labels, int count) {
    cairo_set_source_rgba(cr, 0, 0, 0, 1);
    for (int i = 0; i < count; i++) {
        int r = i / g->cols, c = i % g->cols;
        int top = g->padding + r * (g->cell_h + g->strip + g->padding);
        if (g->strip > 0) {
            double x = g->left + g->padding + c * (g->cell_w + g->padding);
            draw_text(cr, labels[i], g->font_px, x, top + g->cell_h + g->font_px, g->cell_w, 1);
        } else if (c == 0) {
            double baseline = top + g->cell_h / 2.0 + g->font_px * 0.35;
            draw_text(cr, labels[i], g->font_px, CAPTION_MARGIN, baseline,
                      g->left - 2 * CAPTION_MARGIN, 0);
        }
    }
}

/* Renders the captions as a coverage mask and darkens the output under it. */
static int blend_captions(const grid_layout *g, const char *const *labels, int count,
                          digcl_image *out) {
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_A8, out->width, out->height);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return -1;
    }
    cairo_t *cr = cairo_create(surface);
    draw_captions(cr, g, labels, count);
    cairo_destroy(cr);
    cairo_surface_flush(surface);
    const unsigned char *mask = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            unsigned a = mask[(size_t)y * (size_t)stride + (size_t)x];
            uint8_t *p =
                out->pixels + ((size_t)y * (size_t)out->width + (size_t)x) * (size_t)out->channels;
            for (int k = 0; k < out->channels; k++)
                p[k] = (uint8_t)((p[k] * (255u - a) + 127u) / 255u);
        }
    cairo_surface_destroy(surface);
    return 0;
}
#endif

/* ------------------------------------------------------------ layout */

static int check_cells(const digcl_image *cells, int count, const digcl_grid_options *o,
                       char *error, size_t size) {
    if (count < 1 || o->rows < 1 || o->scale < 1 || o->padding < 0) {
        snprintf(error, size,
                 "grid: %d images in %d rows at scale %d, expected at least one of each", count,
                 o->rows, o->scale);
        return -1;
    }
    if (o->captions != DIGCL_CAPTION_NONE && !o->labels) {
        snprintf(error, size, "grid: captions asked for without labels");
        return -1;
    }
    for (int i = 1; i < count; i++) {
        if (cells[i].width == cells[0].width && cells[i].height == cells[0].height &&
            cells[i].channels == cells[0].channels)
            continue;
        snprintf(error, size, "grid: image %d is %dx%dx%d, expected %dx%dx%d like image 0", i,
                 cells[i].width, cells[i].height, cells[i].channels, cells[0].width,
                 cells[0].height, cells[0].channels);
        return -1;
    }
    return 0;
}

static grid_layout plan_layout(const digcl_image *cells, int count, const digcl_grid_options *o,
                               digcl_caption_mode captions) {
    grid_layout g = {0};
    g.rows = o->rows < count ? o->rows : count;
    g.cols = (count + g.rows - 1) / g.rows;
    g.rows = (count + g.cols - 1) / g.cols; /* no empty trailing rows */
    g.cell_w = cells[0].width * o->scale;
    g.cell_h = cells[0].height * o->scale;
    g.padding = o->padding;
    if (captions == DIGCL_CAPTION_ROWS) {
        g.font_px = fmin(20.0, fmax(10.0, g.cell_h * 0.25));
#ifdef DIGCL_HAVE_CAIRO
        g.left = widest_row_caption(&g, o->labels, count) + 2 * CAPTION_MARGIN;
#endif
    } else if (captions == DIGCL_CAPTION_CELLS) {
        g.font_px = fmin(14.0, fmax(8.0, g.cell_w / 6.0));
        g.strip = (int)g.font_px + 4;
    }
    return g;
}

static void paste_cell(const digcl_image *cell, int scale, int x0, int y0, digcl_image *out) {
    int ch = out->channels;
    for (int y = 0; y < cell->height * scale; y++) {
        const uint8_t *src_row =
            cell->pixels + (size_t)(y / scale) * (size_t)cell->width * (size_t)ch;
        uint8_t *dst =
            out->pixels + ((size_t)(y0 + y) * (size_t)out->width + (size_t)x0) * (size_t)ch;
        for (int x = 0; x < cell->width * scale; x++)
            memcpy(dst + (size_t)x * (size_t)ch, src_row + (size_t)(x / scale) * (size_t)ch,
                   (size_t)ch);
    }
}

int digcl_grid_compose(const digcl_image *cells, int count, const digcl_grid_options *options,
                       digcl_image *out, char *error, size_t size) {
    memset(out, 0, sizeof *out);
    if (check_cells(cells, count, options, error, size) != 0) return -1;
    digcl_caption_mode captions = options->captions;
    if (captions != DIGCL_CAPTION_NONE && !digcl_grid_has_captions()) {
        digcl_log(DIGCL_LOG_NOTICE, "grid: this build has no cairo, so the grid has no captions");
        captions = DIGCL_CAPTION_NONE;
    }
    grid_layout g = plan_layout(cells, count, options, captions);
    int width = g.left + g.cols * (g.cell_w + g.padding) + g.padding;
    int height = g.rows * (g.cell_h + g.strip + g.padding) + g.padding;
    if (digcl_image_alloc(out, width, height, cells[0].channels) != 0) {
        snprintf(error, size, "grid: out of memory for a %dx%d image", width, height);
        return -1;
    }
    memset(out->pixels, 255, (size_t)width * (size_t)height * (size_t)out->channels);
    for (int i = 0; i < count; i++) {
        int x0 = g.left + g.padding + (i % g.cols) * (g.cell_w + g.padding);
        int y0 = g.padding + (i / g.cols) * (g.cell_h + g.strip + g.padding);
        paste_cell(&cells[i], options->scale, x0, y0, out);
    }
#ifdef DIGCL_HAVE_CAIRO
    if (captions != DIGCL_CAPTION_NONE && blend_captions(&g, options->labels, count, out) != 0) {
        snprintf(error, size, "grid: cairo could not draw the captions of a %dx%d image", width,
                 height);
        digcl_image_free(out);
        return -1;
    }
#endif
    return 0;
}
