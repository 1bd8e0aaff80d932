/*
 * logstat_svg.h - logstat's histogram as an SVG chart
 * (tools/logstat_svg.c, "mxguardctl logstat --svg FILE").
 */
#ifndef MXG_LOGSTAT_SVG_H
#define MXG_LOGSTAT_SVG_H

struct ls_state;

/*
 * lssvg_write - write the histogram of st (after lsparse_end()) as an
 * SVG chart to the file path (created or truncated). Returns 0, or -1
 * after a message on stderr when the file cannot be opened or written.
 */
int lssvg_write(const struct ls_state *st, const char *path);

#endif
