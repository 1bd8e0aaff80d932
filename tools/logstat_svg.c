/*
 * logstat_svg.c - "mxguardctl logstat --svg FILE": the histogram of an
 * accounted run (logstat_parse.c) as an SVG chart, three lines over the
 * buckets on a log scale: sessions (as a fraction of the largest
 * bucket), their share, and their share of session time. The labels and
 * units are the reports' (logstat_report.c). Only numbers and our own
 * labels reach the file: nothing from the log is written into it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "logstat_parse.h"
#include "logstat_report.h"
#include "logstat_svg.h"

/*
 * ls_log10 - log10(v) for v > 0, to a few digits: enough for placing
 * points on a chart, and it spares mxguardctl a libm for one call.
 */
static double ls_log10(double v)
{
	double e = 0, z, z2, term, sum = 0;

	while (v >= 10) {
		v /= 10;
		e++;
	}
	while (v < 1) {
		v *= 10;
		e--;
	}
	/* ln v = 2 atanh((v - 1) / (v + 1)), |z| < 0.82 for v in [1, 10). */
	z = (v - 1) / (v + 1);
	z2 = z * z;
	term = z;
	for (int k = 1; k < 200; k += 2) {
		sum += term / k;
		term *= z2;
	}
	return e + 2 * sum / 2.302585092994046;
}

/*
 * lssvg_write - see logstat_svg.h. x is log10 of each bucket's upper
 * bound (the open last bucket one step further), y is percent for the
 * two shares and the fraction of the largest bucket for sessions.
 */
int lssvg_write(const struct ls_state *st, const char *path)
{
	static const char *const color[3] = {"#1f77b4", "#d62728", "#2ca02c"};
	static const char *const legend[3] = {"sessions (of largest bucket)", "session share %",
					      "time share %"};
	const struct ls_opts *o = st->o;
	const double W = 720, H = 400, L = 60, R = 20, T = 30, B = 60;
	double x[LS_MAX_BUCKETS + 1], lo, hi, maxn = 1;
	double tn = (double)st->total.n, tu = (double)st->total.us;
	char label[32];
	FILE *out = fopen(path, "w");

	if (out == NULL) {
		fprintf(stderr, "mxguardctl: logstat: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int b = 0; b < o->nedge; b++)
		x[b] = ls_log10(lsreport_sec(o->edge[b]));
	x[o->nedge] = o->nedge > 1 ? x[o->nedge - 1] + (x[o->nedge - 1] - x[0]) / (o->nedge - 1)
				   : x[0] + 1;
	lo = x[0];
	hi = x[o->nedge] > lo ? x[o->nedge] : lo + 1;
	for (int b = 0; b <= o->nedge; b++)
		if ((double)st->bucket[b].n > maxn)
			maxn = (double)st->bucket[b].n;
	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
		"viewBox=\"0 0 %g %g\">\n"
		"<title>smtpd session durations</title>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n"
		"<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n",
		W, H, W, H, L, H - B, W - R, H - B, L, T, L, H - B);
	for (int p = 0; p <= 100; p += 25)
		fprintf(out,
			"<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"end\">%d%%</text>\n",
			L - 5, H - B - (H - B - T) * p / 100.0 + 4, p);
	for (int b = 0; b <= o->nedge; b++) {
		double px = L + (W - L - R) * (x[b] - lo) / (hi - lo);

		lsreport_label(o, b, label, sizeof(label));
		fprintf(out,
			"<text x=\"%g\" y=\"%g\" font-size=\"11\" text-anchor=\"middle\">"
			"%s%s</text>\n",
			px, H - B + 16, label[0] == '<' ? "&lt;" : "&gt;", label + 1);
	}
	fprintf(out,
		"<text x=\"%g\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\">"
		"session duration (log scale)</text>\n",
		L + (W - L - R) / 2, H - B + 34);
	for (int line = 0; line < 3; line++) {
		fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
			color[line]);
		for (int b = 0; b <= o->nedge; b++) {
			double v = line == 0   ? 100.0 * (double)st->bucket[b].n / maxn
				   : line == 1 ? lsreport_pct((double)st->bucket[b].n, tn)
					       : lsreport_pct((double)st->bucket[b].us, tu);

			fprintf(out, "%s%.1f,%.1f", b ? " " : "",
				L + (W - L - R) * (x[b] - lo) / (hi - lo),
				H - B - (H - B - T) * v / 100.0);
		}
		fputs("\"/>\n", out);
		fprintf(out,
			"<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
			"stroke-width=\"2\"/>\n<text x=\"%g\" y=\"%g\" font-size=\"11\">%s</text>\n",
			L + 10 + 210 * line, H - 12, L + 30 + 210 * line, H - 12, color[line],
			L + 35 + 210 * line, H - 8, legend[line]);
	}
	fputs("</svg>\n", out);
	if (ferror(out) | fclose(out)) {
		fprintf(stderr, "mxguardctl: logstat: %s: write error\n", path);
		return -1;
	}
	return 0;
}
