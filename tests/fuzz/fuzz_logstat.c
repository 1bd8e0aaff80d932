/*
 * fuzz_logstat.c - libFuzzer target: the input as Postfix log lines
 * through mxguardctl logstat's line parser and session accounting.
 *
 * The parser is the module tools/logstat_parse.c, linked in: the target
 * calls lsparse_line() and reads the state it accounts into
 * (logstat_parse.h), as the command (tools/logstat.c) does.
 *
 * The input is read twice. Once as ls_file() in tools/logstat.c reads
 * it: the lines in one buffer, applied in batches (lsparse_flush() when a
 * batch is full and at the end). Once a line at a time, each in a heap
 * block of its own size (a read past its end is caught) and applied at
 * once. logstat promises the output of applying every line as it is
 * read: both must account the same. Then the tallies must add up:
 * buckets, classes, ends and clients each sum to the sessions, and every
 * bucket holds durations within its edges. (A malformed smtpd "connect
 * from" line counts as smtpd and as unparseable.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "tools/logstat_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rules *rules;
static struct ls_opts opts;

/* state_end - close what is still open, as logstat_main() does. */
static void state_end(struct ls_state *st)
{
	lsparse_end(st);
	if (st->open.n != 0 || st->oom)
		__builtin_trap();
}

static int tally_eq(const struct ls_tally *a, const struct ls_tally *b)
{
	return a->n == b->n && a->us == b->us;
}

/* same - a and b accounted the same lines the same way. */
static void same(const struct ls_state *a, const struct ls_state *b)
{
	if (a->lines != b->lines || a->unparseable != b->unparseable || a->smtpd != b->smtpd ||
	    a->postscreen != b->postscreen || a->orphans != b->orphans ||
	    a->negative != b->negative || a->nend != b->nend || !tally_eq(&a->total, &b->total) ||
	    a->clients.n != b->clients.n || a->hosts.n != b->hosts.n)
		__builtin_trap();
	for (int i = 0; i <= opts.nedge; i++)
		if (!tally_eq(&a->bucket[i], &b->bucket[i]))
			__builtin_trap();
	for (int i = 0; i < 2; i++)
		if (!tally_eq(&a->cls[i], &b->cls[i]))
			__builtin_trap();
	for (int i = 0; i < a->nend; i++)
		if (!tally_eq(&a->end_t[i], &b->end_t[i]) ||
		    strcmp(a->end_name[i], b->end_name[i]) != 0)
			__builtin_trap();
	for (size_t i = 0; i < a->clients.n; i++) {
		const struct ls_name *x = a->clients.v[i], *y = b->clients.v[i];

		if (x->len != y->len || memcmp(x->s, y->s, x->len) != 0 || x->s25r != y->s25r ||
		    !tally_eq(&x->t, &y->t))
			__builtin_trap();
	}
}

/* sums - the tallies of st add up. */
static void sums(const struct ls_state *st, unsigned long nlines)
{
	struct ls_tally b = {0, 0}, c = {0, 0}, e = {0, 0}, k = {0, 0};

	if (st->lines != nlines || st->unparseable > st->lines ||
	    st->smtpd + st->postscreen > st->lines || st->nend < LS_NFIXED ||
	    st->nend > LS_MAX_ENDS || st->total.us < 0)
		__builtin_trap();
	for (int i = 0; i <= opts.nedge; i++) {
		const struct ls_tally *t = &st->bucket[i];

		/* Durations in bucket i are in [edge[i-1], edge[i]). */
		if (i > 0 && (__int128)t->us < (__int128)t->n * opts.edge[i - 1])
			__builtin_trap();
		if (i < opts.nedge && (__int128)t->us > (__int128)t->n * (opts.edge[i] - 1))
			__builtin_trap();
		b.n += t->n, b.us += t->us;
	}
	for (int i = 0; i < 2; i++)
		c.n += st->cls[i].n, c.us += st->cls[i].us;
	for (int i = 0; i < st->nend; i++) {
		if (memchr(st->end_name[i], '\0', LS_END_NAME) == NULL)
			__builtin_trap();
		e.n += st->end_t[i].n, e.us += st->end_t[i].us;
	}
	for (size_t i = 0; i < st->clients.n; i++)
		k.n += st->clients.v[i]->t.n, k.us += st->clients.v[i]->t.us;
	/* Sessions without a disconnect are ends, with no duration. */
	if (!tally_eq(&b, &st->total) || !tally_eq(&c, &st->total) || !tally_eq(&k, &st->total) ||
	    e.n != st->total.n + st->end_t[LS_END_MISSING].n || e.us != st->total.us ||
	    st->end_t[LS_END_MISSING].us != 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ls_state batched, single;
	const char *buf = (const char *)data, *p = buf, *e = buf + size, *nl;
	unsigned long nlines = 0;

	if (rules == NULL) {
		char err[256];

		if ((rules = rules_load(NULL, 0, err, sizeof(err))) == NULL)
			abort();
		opts.year = 2024;
		lsparse_default_buckets(&opts);
	}
	/* As ls_file(): every line, and a last one without a newline. */
	lsparse_init(&batched, &opts, rules);
	while ((nl = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		lsparse_line(&batched, p, (size_t)(nl - p));
		nlines++;
		p = nl + 1;
	}
	if (p < e) {
		lsparse_line(&batched, p, (size_t)(e - p));
		nlines++;
	}
	lsparse_flush(&batched);
	state_end(&batched);
	sums(&batched, nlines);

	/* A line at a time, each in its own block, applied at once. */
	lsparse_init(&single, &opts, rules);
	for (size_t off = 0, n; off < size; off += n + 1) {
		char *line;

		p = buf + off;
		nl = memchr(p, '\n', size - off);
		n = nl ? (size_t)(nl - p) : size - off;
		if ((line = malloc(n ? n : 1)) == NULL)
			abort();
		memcpy(line, p, n);
		lsparse_line(&single, line, n);
		lsparse_flush(&single);
		free(line);
	}
	state_end(&single);
	same(&batched, &single);
	lsparse_free(&batched);
	lsparse_free(&single);
	return 0;
}
