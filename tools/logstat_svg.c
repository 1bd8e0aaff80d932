/*
 * logstat_svg.c - "mxguardctl logstat --svg FILE": the histogram of an
 * accounted run (logstat_parse.c) as an SVG bar chart. Per bucket, two
 * bars: the bucket's share of the sessions and its share of the session
 * time (what it costs in smtpd processes), on a 0-100 % axis. Above them a
 * title and the totals: sessions, smtpd time, the dates the sessions span,
 * the service kept. The chart grows with the number of buckets so that no
 * label is cut or overlaps. The labels and units are the reports'
 * (logstat_report.c). Only numbers, dates and our own labels reach the
 * file (the --service name is escaped): nothing from the log is written
 * into it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "logstat_parse.h"
#include "logstat_report.h"
#include "logstat_svg.h"

#define SVG_GROUP 72 /* pixels per bucket: room for a label such as ">=300s" */

/* lssvg_date - microseconds since 1970 as "2026-12-03 12:00" (UTC). */
static void lssvg_date(int64_t us, char *buf, size_t bufsz)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (us <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, bufsz, "?");
	else
		strftime(buf, bufsz, "%Y-%m-%d %H:%M", &tm);
}

/* lssvg_text - s for an XML text node: the five markup characters escaped. */
static void lssvg_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '&':
			fputs("&amp;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&apos;", out);
			break;
		default:
			putc(*s, out);
		}
	}
}

int lssvg_write(const struct ls_state *st, const char *path)
{
	static const char *const color[2] = {"#1f77b4", "#2ca02c"};
	static const char *const legend[2] = {"share of sessions", "share of smtpd time"};
	const struct ls_opts *o = st->o;
	const int nb = o->nedge + 1;
	const double L = 60, R = 20, T = 70, B = 70, PH = 280;
	const double W = L + R + (nb * SVG_GROUP > 640 ? nb * SVG_GROUP : 640), H = T + PH + B;
	const double gw = (W - L - R) / nb, bw = gw * 0.35;
	double tn = (double)st->total.n, tu = (double)st->total.us;
	char label[32], from[32], to[32];
	FILE *out = fopen(path, "w");

	if (out == NULL) {
		fprintf(stderr, "mxguardctl: logstat: %s: %s\n", path, strerror(errno));
		return -1;
	}
	lssvg_date(st->t_first, from, sizeof(from));
	lssvg_date(st->t_last, to, sizeof(to));
	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
		"viewBox=\"0 0 %g %g\" font-family=\"sans-serif\">\n"
		"<title>smtpd session durations</title>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"%g\" y=\"24\" font-size=\"16\" font-weight=\"bold\">"
		"smtpd session durations</text>\n",
		W, H, W, H, L);
	fprintf(out,
		"<text x=\"%g\" y=\"46\" font-size=\"12\">%lu sessions, %.0f s of smtpd"
		" time, %s to %s UTC",
		L, st->total.n, lsreport_sec(st->total.us), from, to);
	if (o->service != NULL) {
		fputs(", service ", out);
		lssvg_text(out, o->service);
	}
	fputs("</text>\n", out);
	/* The percent axis and its grid. */
	for (int p = 0; p <= 100; p += 25) {
		double y = T + PH - PH * p / 100.0;

		fprintf(
		    out,
		    "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\"/>\n"
		    "<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"end\">%d%%</text>\n",
		    L, y, W - R, y, p ? "#dddddd" : "black", L - 6, y + 4, p);
	}
	for (int b = 0; b < nb; b++) {
		double v[2] = {lsreport_pct((double)st->bucket[b].n, tn),
			       lsreport_pct((double)st->bucket[b].us, tu)};
		double gx = L + gw * b, cx = gx + gw / 2;

		for (int k = 0; k < 2; k++) {
			double h = PH * v[k] / 100.0;

			fprintf(out,
				"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				"fill=\"%s\"><title>%.1f%%</title></rect>\n",
				cx - bw + bw * k, T + PH - h, bw, h, color[k], v[k]);
		}
		lsreport_label(o, b, label, sizeof(label));
		fprintf(out, "<text x=\"%.1f\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">",
			cx, T + PH + 16);
		lssvg_text(out, label);
		fprintf(out,
			"</text>\n<text x=\"%.1f\" y=\"%g\" font-size=\"10\" fill=\"#555555\" "
			"text-anchor=\"middle\">%lu</text>\n",
			cx, T + PH + 30, st->bucket[b].n);
	}
	fprintf(out,
		"<text x=\"%g\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\">session duration "
		"(sessions per bucket below the labels)</text>\n",
		L + (W - L - R) / 2, T + PH + 48);
	for (int k = 0; k < 2; k++)
		fprintf(out,
			"<rect x=\"%g\" y=\"%g\" width=\"14\" height=\"10\" fill=\"%s\"/>\n"
			"<text x=\"%g\" y=\"%g\" font-size=\"11\">%s</text>\n",
			L + 200 * k, H - 14, color[k], L + 20 + 200 * k, H - 5, legend[k]);
	fputs("</svg>\n", out);
	if (ferror(out) | fclose(out)) {
		fprintf(stderr, "mxguardctl: logstat: %s: write error\n", path);
		return -1;
	}
	return 0;
}
