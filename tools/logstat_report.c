/*
 * logstat_report.c - the reports of "mxguardctl logstat": text (the
 * default), CSV (--csv) and JSON (--json) of an accounted run
 * (logstat_parse.c), to standard output.
 *
 * Each report has the same parts: the counts, the histogram (sessions,
 * their share, their share of session time: "occupancy"), the ways
 * sessions ended, S25R suspects against the others and the LS_TOP
 * clients that occupied smtpd longest. Client names and commands come
 * from the log: they are escaped for CSV, and the JSON is built with
 * jansson, their strings through jsonstr.c (logs are not always UTF-8:
 * valid UTF-8 is kept, each invalid byte becomes U+FFFD).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "jsonstr.h"
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

/*
 * ls_jreal - x rounded to unit (0.0001: a share; 0.000001: seconds), as a
 * jansson real: printed with 15 digits, 12.3457 stays 12.3457.
 */
static json_t *ls_jreal(double x, double unit)
{
	return json_real(x >= 0 ? (double)(long long)(x / unit + 0.5) * unit : x);
}

/* ls_json_tally - the members of a tally into o; o is returned. */
static json_t *ls_json_tally(json_t *o, unsigned long n, double share, int64_t us, double occ)
{
	json_object_set_new(o, "sessions", json_integer((json_int_t)n));
	json_object_set_new(o, "share", ls_jreal(share, 1e-4));
	json_object_set_new(o, "time", ls_jreal(lsreport_sec(us), 1e-6));
	json_object_set_new(o, "occupancy", ls_jreal(occ, 1e-4));
	return o;
}

/* ls_json_uint - n as a jansson integer. */
static json_t *ls_json_uint(unsigned long n)
{
	return json_integer((json_int_t)n);
}

/*
 * lsreport_json - built with jansson; names from the log through
 * jsonstr_cstr (invalid UTF-8 becomes U+FFFD). Out of memory, a member
 * is missing (json_object_set_new takes NULL as an error) and the
 * report still parses.
 */
void lsreport_json(const struct ls_state *st, FILE *out)
{
	const struct ls_opts *o = st->o;
	double tn = (double)st->total.n, tu = (double)st->total.us;
	double en = (double)ls_ends_total(st);
	size_t top[LS_TOP];
	int k = ls_top(st, top);
	char label[32];
	json_t *r = json_object(), *buckets = json_array(), *ended = json_array();
	json_t *cls = json_object(), *tops = json_array();

	if (r == NULL || buckets == NULL || ended == NULL || cls == NULL || tops == NULL) {
		json_decref(r);
		json_decref(buckets);
		json_decref(ended);
		json_decref(cls);
		json_decref(tops);
		fputs("{\"error\":\"out of memory\"}\n", out);
		return;
	}
	json_object_set_new(r, "files", ls_json_uint(st->files));
	json_object_set_new(r, "lines", ls_json_uint(st->lines));
	json_object_set_new(r, "unparseable", ls_json_uint(st->unparseable));
	json_object_set_new(r, "smtpd", ls_json_uint(st->smtpd));
	json_object_set_new(r, "postscreen", ls_json_uint(st->postscreen));
	json_object_set_new(r, "sessions", ls_json_uint(st->total.n));
	json_object_set_new(r, "time", ls_jreal(lsreport_sec(st->total.us), 1e-6));
	json_object_set_new(r, "missing_disconnect", ls_json_uint(st->end_t[LS_END_MISSING].n));
	json_object_set_new(r, "orphan_disconnect", ls_json_uint(st->orphans));
	json_object_set_new(r, "negative", ls_json_uint(st->negative));
	for (int b = 0; b <= o->nedge; b++) {
		json_t *e = json_object();

		lsreport_label(o, b, label, sizeof(label));
		json_object_set_new(e, "label", jsonstr_cstr(label));
		json_object_set_new(e, "lt",
				    b < o->nedge ? json_real(lsreport_sec(o->edge[b])) : json_null());
		json_array_append_new(
		    buckets, ls_json_tally(e, st->bucket[b].n, lsreport_pct((double)st->bucket[b].n, tn),
					   st->bucket[b].us, lsreport_pct((double)st->bucket[b].us, tu)));
	}
	json_object_set_new(r, "buckets", buckets);
	for (int i = 0; i < st->nend; i++) {
		json_t *e;

		if (st->end_t[i].n == 0)
			continue;
		e = json_object();
		json_object_set_new(e, "how", jsonstr_cstr(st->end_name[i]));
		json_array_append_new(
		    ended, ls_json_tally(e, st->end_t[i].n, lsreport_pct((double)st->end_t[i].n, en),
					 st->end_t[i].us, lsreport_pct((double)st->end_t[i].us, tu)));
	}
	json_object_set_new(r, "ended", ended);
	for (int c = 1; c >= 0; c--)
		json_object_set_new(cls, c ? "s25r" : "other",
				    ls_json_tally(json_object(), st->cls[c].n,
						  lsreport_pct((double)st->cls[c].n, tn), st->cls[c].us,
						  lsreport_pct((double)st->cls[c].us, tu)));
	json_object_set_new(r, "class", cls);
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];
		json_t *e = json_object();

		json_object_set_new(e, "client", jsonstr_cstr(c->s));
		json_object_set_new(e, "s25r", json_integer(c->s25r));
		json_array_append_new(tops, ls_json_tally(e, c->t.n,
							  lsreport_pct((double)c->t.n, tn), c->t.us,
							  lsreport_pct((double)c->t.us, tu)));
	}
	json_object_set_new(r, "top_clients", tops);
	if (json_dumpf(r, out, JSON_COMPACT | JSON_REAL_PRECISION(15)) == 0)
		putc('\n', out);
	json_decref(r);
}
