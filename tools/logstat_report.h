/*
 * logstat_report.h - logstat's reports (tools/logstat_report.c): an
 * accounted run as text, CSV or JSON, and the bucket labels and units
 * the SVG chart (logstat_svg.c) shares with them.
 */
#ifndef MXG_LOGSTAT_REPORT_H
#define MXG_LOGSTAT_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ls_opts;
struct ls_state;

/*
 * lsreport_text, lsreport_csv, lsreport_json - write the report of st
 * (after lsparse_end()) to out: the counts of lines and sessions, the
 * histogram, the ways sessions ended, the S25R classes and the top
 * clients. Strings from the log (clients, commands) are escaped for the
 * format (CSV quoting, JSON \u escapes). Write errors are left in out's
 * error flag for the caller.
 */
void lsreport_text(const struct ls_state *st, FILE *out);
void lsreport_csv(const struct ls_state *st, FILE *out);
void lsreport_json(const struct ls_state *st, FILE *out);

/*
 * lsreport_label - the name of bucket b (0 to o->nedge) of o in buf,
 * "<0.1s" or ">=300s", truncated to bufsz (32 is enough).
 */
void lsreport_label(const struct ls_opts *o, int b, char *buf, size_t bufsz);

/* lsreport_pct - part as a percentage of whole; 0 when whole is 0. */
double lsreport_pct(double part, double whole);

/* lsreport_sec - microseconds as seconds. */
double lsreport_sec(int64_t us);

#endif
