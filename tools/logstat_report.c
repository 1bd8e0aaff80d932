/*
 * logstat_report.c - the reports of "mxguardctl logstat": text (the
 * default), CSV (--csv) and JSON (--json) of an accounted run
 * (logstat_parse.c), to standard output.
 *
 * Each report has the same parts: the counts, the histogram (sessions,
 * their share, their share of session time: "occupancy"), the ways
 * sessions ended, S25R suspects against the others and the LS_TOP
 * clients that occupied smtpd longest. Client names and commands come
 * from the log: they are escaped for CSV and JSON (JSON \u escapes for
 * bytes outside printable ASCII, as logs are not always UTF-8).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "logstat_parse.h"
#include "logstat_report.h"

#define LS_TOP 10 /* clients shown */

double lsreport_pct(double part, double whole)
{
	return whole > 0 ? 100.0 * part / whole : 0.0;
}

double lsreport_sec(int64_t us)
{
	return (double)us / LS_USEC;
}

void lsreport_label(const struct ls_opts *o, int b, char *buf, size_t bufsz)
{
	if (b < o->nedge)
		snprintf(buf, bufsz, "<%gs", lsreport_sec(o->edge[b]));
	else
		snprintf(buf, bufsz, ">=%gs", lsreport_sec(o->edge[o->nedge - 1]));
}

/* ls_top - the indexes of the (at most) LS_TOP clients with most time. */
static int ls_top(const struct ls_state *st, size_t *top)
{
	int k = 0;

	for (size_t i = 0; i < st->clients.n; i++) {
		const struct ls_tally *t = &st->clients.v[i]->t;
		int p;

		if (t->n == 0)
			continue;
		if (k == LS_TOP && t->us <= st->clients.v[top[k - 1]]->t.us)
			continue;
		p = k < LS_TOP ? k++ : LS_TOP - 1;
		while (p > 0 && st->clients.v[top[p - 1]]->t.us < t->us) {
			top[p] = top[p - 1];
			p--;
		}
		top[p] = i;
	}
	return k;
}

/* ls_json_str - s as a JSON string. */
static void ls_json_str(FILE *out, const char *s)
{
	putc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c); /* logs are not always UTF-8 */
		else
			putc(c, out);
	}
	putc('"', out);
}

/* ls_csv_str - s as a CSV field, quoted when it has to be. */
static void ls_csv_str(FILE *out, const char *s)
{
	if (strpbrk(s, ",\"\n\r") == NULL) {
		fputs(s, out);
		return;
	}
	putc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			putc('"', out);
		putc(*s, out);
	}
	putc('"', out);
}

static unsigned long ls_ends_total(const struct ls_state *st)
{
	unsigned long n = 0;

	for (int i = 0; i < st->nend; i++)
		n += st->end_t[i].n;
	return n;
}

void lsreport_text(const struct ls_state *st, FILE *out)
{
	const struct ls_opts *o = st->o;
	double tn = (double)st->total.n, tu = (double)st->total.us;
	double en = (double)ls_ends_total(st);
	size_t top[LS_TOP];
	int k = ls_top(st, top);
	char label[32];

	fprintf(out, "files %lu, lines %lu, unparseable %lu, smtpd %lu, postscreen %lu\n",
		st->files, st->lines, st->unparseable, st->smtpd, st->postscreen);
	fprintf(out,
		"sessions %lu, session time %.3fs, missing disconnect %lu, "
		"disconnect without connect %lu\n\n",
		st->total.n, lsreport_sec(st->total.us), st->end_t[LS_END_MISSING].n, st->orphans);
	fprintf(out, "%-12s %10s %8s %10s\n", "duration", "sessions", "share", "occupancy");
	for (int b = 0; b <= o->nedge; b++) {
		lsreport_label(o, b, label, sizeof(label));
		fprintf(out, "%-12s %10lu %7.1f%% %9.1f%%\n", label, st->bucket[b].n,
			lsreport_pct((double)st->bucket[b].n, tn),
			lsreport_pct((double)st->bucket[b].us, tu));
	}
	fprintf(out, "\n%-26s %10s %8s %12s\n", "ended by", "sessions", "share", "time");
	for (int i = 0; i < st->nend; i++) {
		if (st->end_t[i].n == 0)
			continue;
		fprintf(out, "%-26s %10lu %7.1f%% %11.3fs\n", st->end_name[i], st->end_t[i].n,
			lsreport_pct((double)st->end_t[i].n, en), lsreport_sec(st->end_t[i].us));
	}
	fprintf(out, "\n%-12s %10s %8s %10s\n", "class", "sessions", "share", "occupancy");
	for (int c = 1; c >= 0; c--)
		fprintf(out, "%-12s %10lu %7.1f%% %9.1f%%\n", c ? "s25r" : "other", st->cls[c].n,
			lsreport_pct((double)st->cls[c].n, tn),
			lsreport_pct((double)st->cls[c].us, tu));
	fprintf(out, "\ntop clients by occupied time\n%-50s %10s %12s %10s\n", "client",
		"sessions", "time", "occupancy");
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];

		fprintf(out, "%-50s %10lu %11.3fs %9.1f%%\n", c->s, c->t.n, lsreport_sec(c->t.us),
			lsreport_pct((double)c->t.us, tu));
	}
}

static void ls_csv_row(FILE *out, const char *section, const char *key, unsigned long n,
		       double share, int64_t us, double occ)
{
	fprintf(out, "%s,", section);
	ls_csv_str(out, key);
	fprintf(out, ",%lu,%.4f,%.6f,%.4f\n", n, share, lsreport_sec(us), occ);
}

void lsreport_csv(const struct ls_state *st, FILE *out)
{
	const struct ls_opts *o = st->o;
	double tn = (double)st->total.n, tu = (double)st->total.us;
	double en = (double)ls_ends_total(st);
	size_t top[LS_TOP];
	int k = ls_top(st, top);
	char label[32];

	fputs("section,key,sessions,share_pct,time_s,occupancy_pct\n", out);
	ls_csv_row(out, "total", "sessions", st->total.n, 100.0 * (tn > 0), st->total.us,
		   100.0 * (tu > 0));
	for (int b = 0; b <= o->nedge; b++) {
		lsreport_label(o, b, label, sizeof(label));
		ls_csv_row(out, "bucket", label, st->bucket[b].n,
			   lsreport_pct((double)st->bucket[b].n, tn), st->bucket[b].us,
			   lsreport_pct((double)st->bucket[b].us, tu));
	}
	for (int i = 0; i < st->nend; i++)
		if (st->end_t[i].n > 0)
			ls_csv_row(out, "ended", st->end_name[i], st->end_t[i].n,
				   lsreport_pct((double)st->end_t[i].n, en), st->end_t[i].us,
				   lsreport_pct((double)st->end_t[i].us, tu));
	for (int c = 1; c >= 0; c--)
		ls_csv_row(out, "class", c ? "s25r" : "other", st->cls[c].n,
			   lsreport_pct((double)st->cls[c].n, tn), st->cls[c].us,
			   lsreport_pct((double)st->cls[c].us, tu));
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];

		ls_csv_row(out, "client", c->s, c->t.n, lsreport_pct((double)c->t.n, tn), c->t.us,
			   lsreport_pct((double)c->t.us, tu));
	}
}

static void ls_json_tally(FILE *out, unsigned long n, double share, int64_t us, double occ)
{
	fprintf(out, "\"sessions\":%lu,\"share\":%.4f,\"time\":%.6f,\"occupancy\":%.4f}", n,
		share, lsreport_sec(us), occ);
}

void lsreport_json(const struct ls_state *st, FILE *out)
{
	const struct ls_opts *o = st->o;
	double tn = (double)st->total.n, tu = (double)st->total.us;
	double en = (double)ls_ends_total(st);
	size_t top[LS_TOP];
	int k = ls_top(st, top);
	char label[32];

	fprintf(out,
		"{\"files\":%lu,\"lines\":%lu,\"unparseable\":%lu,\"smtpd\":%lu,"
		"\"postscreen\":%lu,\"sessions\":%lu,\"time\":%.6f,\"missing_disconnect\":%lu,"
		"\"orphan_disconnect\":%lu,\"negative\":%lu,\"buckets\":[",
		st->files, st->lines, st->unparseable, st->smtpd, st->postscreen, st->total.n,
		lsreport_sec(st->total.us), st->end_t[LS_END_MISSING].n, st->orphans, st->negative);
	for (int b = 0; b <= o->nedge; b++) {
		lsreport_label(o, b, label, sizeof(label));
		fprintf(out, "%s{\"label\":\"%s\",\"lt\":", b ? "," : "", label);
		if (b < o->nedge)
			fprintf(out, "%g,", lsreport_sec(o->edge[b]));
		else
			fputs("null,", out);
		ls_json_tally(out, st->bucket[b].n, lsreport_pct((double)st->bucket[b].n, tn),
			      st->bucket[b].us, lsreport_pct((double)st->bucket[b].us, tu));
	}
	fputs("],\"ended\":[", out);
	for (int i = 0, first = 1; i < st->nend; i++) {
		if (st->end_t[i].n == 0)
			continue;
		fprintf(out, "%s{\"how\":", first ? "" : ",");
		ls_json_str(out, st->end_name[i]);
		putc(',', out);
		ls_json_tally(out, st->end_t[i].n, lsreport_pct((double)st->end_t[i].n, en),
			      st->end_t[i].us, lsreport_pct((double)st->end_t[i].us, tu));
		first = 0;
	}
	fputs("],\"class\":{", out);
	for (int c = 1; c >= 0; c--) {
		fprintf(out, "%s\"%s\":{", c ? "" : ",", c ? "s25r" : "other");
		ls_json_tally(out, st->cls[c].n, lsreport_pct((double)st->cls[c].n, tn),
			      st->cls[c].us, lsreport_pct((double)st->cls[c].us, tu));
	}
	fputs("},\"top_clients\":[", out);
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];

		fputs(i ? ",{\"client\":" : "{\"client\":", out);
		ls_json_str(out, c->s);
		fprintf(out, ",\"s25r\":%d,", c->s25r);
		ls_json_tally(out, c->t.n, lsreport_pct((double)c->t.n, tn), c->t.us,
			      lsreport_pct((double)c->t.us, tu));
	}
	fputs("]}\n", out);
}
