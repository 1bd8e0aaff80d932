/*
 * NAME
 *	logstat - smtpd session durations from Postfix logs
 * SYNOPSIS
 *	mxguardctl logstat [--buckets S,S,...] [--csv | --json] [--svg FILE]
 *		[--year YYYY] FILE...
 * DESCRIPTION
 *	Reads Postfix logs (plain, gzip, or "-" for standard input) and pairs
 *	each smtpd "connect from NAME[ADDR]" with the "disconnect from" of the
 *	same syslog host and smtpd pid. For every session that has both ends
 *	it reports:
 *
 *	- a histogram of durations (log-scale buckets, or --buckets), with
 *	  per bucket the number of sessions, their share of all sessions and
 *	  their share of all session time ("occupancy": what the bucket costs
 *	  in smtpd processes);
 *	- how sessions ended: quit (a disconnect with quit=1), lost
 *	  connection after X, timeout after X, rejected (a NOQUEUE reject in
 *	  the session), a disconnect without quit, or no disconnect at all
 *	  (a new connect of the same pid, or the end of the input). When
 *	  several apply, the first in this order wins: missing, timeout or
 *	  lost, rejected, quit;
 *	- S25R suspect clients versus the others, by the daemon's own rules
 *	  (a name of "unknown" is S25R rule 0);
 *	- the 10 clients (NAME[ADDR]) that occupied smtpd longest.
 *
 *	Traditional timestamps have no year: --year (default: this year) is
 *	assumed, and it is incremented when the month goes from December to
 *	January. Their time zone and daylight saving time are ignored: a
 *	session across a DST change is off by an hour. RFC 3339 timestamps
 *	carry their own year and offset.
 *
 *	Lines that do not start with a timestamp, a host and a tag are
 *	counted as unparseable; lines of other programs are skipped.
 *	postscreen lines are counted.
 * IMPLEMENTATION
 *	Speed matters (logs of millions of lines; bench/logstat compares
 *	with pflogsumm). With tens of thousands of clients the cost is in
 *	cache misses on the client table, not in parsing: so smtpd lines are
 *	parsed in batches into records (prefetching the hash slot of each
 *	connect's client), then a batch is applied in line order after a
 *	pass that prefetches the entries the slots point to. The output is
 *	that of applying every line as it is read. Entries keep their
 *	string inline; the timestamp of the last second is cached; short
 *	compares and scans are inline rather than calls. One thread: mmap()
 *	of plain files was measured and gained nothing over read().
 * DIAGNOSTICS
 *	Exit 0 on success, 1 on an error (with a message), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "logstat.h"
#include "rules.h"

/* The longest session counted as it is (30 days, in microseconds). */
#define LS_MAX_SESSION_US (30LL * 86400 * 1000000)
#define LS_BUF (1024 * 1024)	    /* one read; also the longest line kept */
#define LS_MAX_BUCKETS 32	    /* --buckets edges, at most */
#define LS_MAX_ENDS 40		    /* distinct ways to end, at most */
#define LS_END_NAME 48
#define LS_TOP 10		    /* clients shown */
#define LS_NAME_MAX 1024	    /* NAME[ADDR] longer than this is garbage */
#define LS_PROGRESS_MIN (64L << 20) /* input size that earns a progress bar */
#define LS_USEC 1000000LL

/* The fixed ways to end; lost/timeout after X are added as seen. */
enum ls_end_fixed { LS_END_QUIT, LS_END_REJECTED, LS_END_NOQUIT, LS_END_MISSING, LS_NFIXED };

static const char *const ls_fixed_names[LS_NFIXED] = {
	"quit", "rejected", "disconnect without quit", "missing disconnect"};

static const double ls_default_edges[] = {0.1, 0.3, 1, 3, 10, 30, 100, 300};

/* A tally: sessions and the time they took. */
struct ls_tally {
	unsigned long n;
	int64_t us;
};

/*
 * An interned string: a syslog host, or a client NAME[ADDR]. The string
 * follows the header in the same chunk: a lookup touches two places in
 * memory (slot, entry), not three (slot, entry, string); with 50000
 * clients those are cache misses that cost more than all the parsing.
 */
struct ls_name {
	struct ls_tally t;
	int s25r; /* clients: rules_s25r() of NAME, -1 none */
	uint32_t len, hash;
	uint32_t idx; /* index in v[] of its table */
	char s[];     /* len bytes and a NUL */
};

/* A hash slot; e NULL: free. hash and len spare most visits to e. */
struct ls_slot {
	uint32_t hash, len;
	struct ls_name *e;
};

/* Strings of a table live in chunks: one malloc per client is slow. */
struct ls_chunk {
	struct ls_chunk *prev;
	size_t used;
	char data[];
};

#define LS_CHUNK (256 * 1024)

struct ls_names {
	struct ls_name **v; /* in the order added: the top list breaks ties by it */
	size_t n, cap;
	struct ls_slot *slot;
	size_t nslot; /* a power of two */
	struct ls_chunk *chunk;
};

/* An open session, keyed by host index and smtpd pid. */
struct ls_sess {
	uint64_t key; /* host << 32 | pid; 0: free slot (pid 0 is not a pid) */
	int64_t start;
	struct ls_name *client;
	int8_t rejected;
	int8_t end; /* lost/timeout end index, -1 none */
};

struct ls_sessions {
	struct ls_sess *v;
	size_t cap, n; /* cap a power of two, n <= cap / 2 */
};

/* What an smtpd line says about its session. */
enum ls_kind { LS_K_CONNECT, LS_K_DISC, LS_K_LOST, LS_K_TMO, LS_K_REJ };

/*
 * One parsed smtpd line. Lines are parsed in batches, and the batch is
 * applied after: the table lookups of a batch then overlap in memory.
 */
struct ls_rec {
	uint64_t key;  /* host << 32 | pid */
	int64_t t;     /* microseconds */
	const char *m; /* connect: NAME[ADDR]; lost/timeout: the command X */
	uint32_t n;    /* length of m */
	uint32_t lb;   /* connect: offset of '[' in m */
	uint32_t hash; /* connect: ls_hash() of m */
	uint8_t kind;  /* enum ls_kind */
	uint8_t quit;  /* disconnect: with quit=1 */
};

#define LS_BATCH 128 /* records per ls_flush() */

struct ls_opts {
	int64_t edge[LS_MAX_BUCKETS]; /* bucket upper bounds, microseconds */
	int nedge, csv, json, year;
	const char *svg;
};

struct ls_state {
	const struct ls_opts *o;
	struct rules *rules;
	struct ls_names hosts, clients;
	struct ls_sessions open;
	struct ls_tally bucket[LS_MAX_BUCKETS + 1], total, cls[2]; /* cls[1]: suspect */
	char end_name[LS_MAX_ENDS][LS_END_NAME];
	struct ls_tally end_t[LS_MAX_ENDS];
	int nend;
	unsigned long lines, unparseable, smtpd, postscreen, orphans, files, negative;
	int year, last_mon;
	long last_host; /* index into hosts, -1 none */
	int oom;
	/* The last timestamp of each format, and its value (ls_time). */
	char tc_trad[15], tc_rfc[19];
	int tc_trad_ok, tc_rfc_ok;
	int64_t tv_trad, tv_rfc; /* microseconds; seconds, before the offset */
	/* smtpd lines parsed, not yet applied; they point into the buffer. */
	struct ls_rec rec[LS_BATCH];
	int nrec;
};

static void ls_usage(void)
{
	fprintf(stderr, "usage: mxguardctl logstat [--buckets S,S,...] [--csv | --json] "
			"[--svg FILE] [--year YYYY] FILE...\n");
}

/* ---- tables ----------------------------------------------------------- */

static uint32_t ls_hash(const char *s, size_t n)
{
	uint64_t h = n * 0x9e3779b97f4a7c15ull, w;
	size_t i = 0;

	/* Eight bytes a step: hashing NAME[ADDR] of every connect is hot. */
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (w = 0; i < n; i++)
		w = w << 8 | (uint8_t)s[i];
	h ^= w; /* then MurmurHash3's finalizer: every bit moves the low ones */
	h = (h ^ h >> 33) * 0xff51afd7ed558ccdull;
	h = (h ^ h >> 33) * 0xc4ceb9fe1a85ec53ull;
	return (uint32_t)(h ^ h >> 33);
}

/* ls_names_grow - double the slot array; -1 when out of memory. */
static int ls_names_grow(struct ls_names *t)
{
	size_t nslot = t->nslot ? t->nslot * 2 : 1024;
	struct ls_slot *slot = calloc(nslot, sizeof(*slot));

	if (slot == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t j = t->v[i]->hash & (nslot - 1);

		while (slot[j].e != NULL)
			j = (j + 1) & (nslot - 1);
		slot[j] = (struct ls_slot){t->v[i]->hash, t->v[i]->len, t->v[i]};
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = nslot;
	return 0;
}

/*
 * ls_intern - the entry of s[0..n) in t, whose ls_hash() is h, added
 * (copied) if new; *added says which. It is an error to pass n >=
 * LS_NAME_MAX. Returns NULL when out of memory.
 */
static struct ls_name *ls_intern(struct ls_names *t, const char *s, size_t n, uint32_t h,
				 int *added)
{
	size_t j, need;
	struct ls_name *e;

	*added = 0;
	if (t->n + 1 > t->nslot / 2 && ls_names_grow(t) < 0)
		return NULL;
	for (j = h & (t->nslot - 1); t->slot[j].e != NULL; j = (j + 1) & (t->nslot - 1))
		if (t->slot[j].hash == h && t->slot[j].len == n &&
		    memcmp(t->slot[j].e->s, s, n) == 0)
			return t->slot[j].e;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct ls_name **v = realloc(t->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	/* Callers keep n below LS_NAME_MAX, far below a chunk; 8-aligned. */
	need = (sizeof(*e) + n + 1 + 7) & ~(size_t)7;
	if (t->chunk == NULL || LS_CHUNK - t->chunk->used < need) {
		struct ls_chunk *c = malloc(sizeof(*c) + LS_CHUNK);

		if (c == NULL)
			return NULL;
		c->prev = t->chunk;
		c->used = 0;
		t->chunk = c;
	}
	e = (struct ls_name *)(void *)(t->chunk->data + t->chunk->used);
	t->chunk->used += need;
	memset(e, 0, sizeof(*e));
	memcpy(e->s, s, n);
	e->s[n] = '\0';
	e->len = (uint32_t)n;
	e->hash = h;
	e->s25r = -1;
	e->idx = (uint32_t)t->n;
	t->v[t->n++] = e;
	t->slot[j] = (struct ls_slot){h, (uint32_t)n, e};
	*added = 1;
	return e;
}

/* ls_prefetch_slot - start loading the slot where an entry of hash h lives. */
static inline void ls_prefetch_slot(const struct ls_names *t, uint32_t h)
{
	if (t->nslot > 0)
		__builtin_prefetch(&t->slot[h & (t->nslot - 1)]);
}

static void ls_names_free(struct ls_names *t)
{
	while (t->chunk != NULL) {
		struct ls_chunk *prev = t->chunk->prev;

		free(t->chunk);
		t->chunk = prev;
	}
	free(t->v);
	free(t->slot);
}

static size_t ls_sess_home(const struct ls_sessions *t, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (t->cap - 1);
}

/* ls_sess_find - the slot of key, or of the free slot where it belongs. */
static size_t ls_sess_find(const struct ls_sessions *t, uint64_t key)
{
	size_t j = ls_sess_home(t, key);

	while (t->v[j].key != 0 && t->v[j].key != key)
		j = (j + 1) & (t->cap - 1);
	return j;
}

static int ls_sess_grow(struct ls_sessions *t)
{
	struct ls_sessions g = {.cap = t->cap ? t->cap * 2 : 4096};

	g.v = calloc(g.cap, sizeof(*g.v));
	if (g.v == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].key != 0)
			g.v[ls_sess_find(&g, t->v[i].key)] = t->v[i];
	g.n = t->n;
	free(t->v);
	*t = g;
	return 0;
}

/*
 * ls_sess_del - free slot j. Linear probing without tombstones: later
 * members of the probe run move back so that no lookup stops early at
 * the hole.
 */
static void ls_sess_del(struct ls_sessions *t, size_t j)
{
	size_t mask = t->cap - 1, i = j;

	for (;;) {
		i = (i + 1) & mask;
		if (t->v[i].key == 0)
			break;
		size_t home = ls_sess_home(t, t->v[i].key);

		/* Move v[i] into the hole unless its home lies in (j, i]. */
		if (((i - home) & mask) >= ((i - j) & mask)) {
			t->v[j] = t->v[i];
			j = i;
		}
	}
	t->v[j].key = 0;
	t->n--;
}

/* ---- accounting ------------------------------------------------------- */

/* ls_end_index - the index of a "lost/timeout after X" end, added if new. */
static int ls_end_index(struct ls_state *st, const char *what, const char *x, size_t xlen)
{
	char name[LS_END_NAME];
	size_t wl = strlen(what);

	/* As snprintf("%s after %.*s") would, without its cost per line. */
	if (xlen > 24)
		xlen = 24;
	xlen = strnlen(x, xlen);
	memcpy(name, what, wl);
	memcpy(name + wl, " after ", 7);
	memcpy(name + wl + 7, x, xlen);
	name[wl + 7 + xlen] = '\0';
	for (int i = LS_NFIXED; i < st->nend; i++)
		if (strcmp(st->end_name[i], name) == 0)
			return i;
	if (st->nend == LS_MAX_ENDS) {
		/* The last slot collects the rest: a log can name any command. */
		snprintf(st->end_name[LS_MAX_ENDS - 1], LS_END_NAME, "lost/timeout after other");
		return LS_MAX_ENDS - 1;
	}
	memcpy(st->end_name[st->nend], name, sizeof(name));
	return st->nend++;
}

/*
 * ls_close - account the session in slot j as ended at now (microseconds),
 * or without a duration when missing, and free the slot.
 */
static void ls_close(struct ls_state *st, size_t j, int64_t now, int quit, int missing)
{
	struct ls_sess *s = &st->open.v[j];
	int end = missing	    ? LS_END_MISSING
		  : s->end >= 0	    ? s->end
		  : s->rejected	    ? LS_END_REJECTED
		  : quit	    ? LS_END_QUIT
				    : LS_END_NOQUIT;

	st->end_t[end].n++;
	if (!missing) {
		int64_t d = now - s->start;
		struct ls_name *c = s->client;
		int b = 0;

		if (d < 0) { /* out of order lines, or a clock step */
			st->negative++;
			d = 0;
		} else if (d > LS_MAX_SESSION_US) {
			/*
			 * No smtpd session lasts a month: a mangled timestamp. Cut
			 * it there (and count it with the impossible ones) so that
			 * the sums cannot overflow whatever the input.
			 */
			st->negative++;
			d = LS_MAX_SESSION_US;
		}
		while (b < st->o->nedge && d >= st->o->edge[b])
			b++;
		st->bucket[b].n++;
		st->bucket[b].us += d;
		st->total.n++;
		st->total.us += d;
		st->end_t[end].us += d;
		st->cls[c->s25r >= 0].n++;
		st->cls[c->s25r >= 0].us += d;
		c->t.n++;
		c->t.us += d;
	}
	ls_sess_del(&st->open, j);
}

/* ---- parsing ---------------------------------------------------------- */

/*
 * ls_eq - are a[0..n) and b[0..n) equal? For the short strings compared
 * on every line, where a call to memcmp() costs more than the compare:
 * with n a constant this is a few loads.
 */
static inline __attribute__((always_inline)) int ls_eq(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	uint32_t u, v;
	size_t i = 0;

	if (n >= 8) {
		for (; i + 8 <= n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				return 0;
		}
		if (i < n) { /* the last 8, overlapping */
			memcpy(&x, a + n - 8, 8);
			memcpy(&y, b + n - 8, 8);
			return x == y;
		}
		return 1;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&v, b, 4);
		if (u != v)
			return 0;
		memcpy(&u, a + n - 4, 4);
		memcpy(&v, b + n - 4, 4);
		return u == v;
	}
	for (; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* ls_days - days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t ls_days(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* ls_digits - n digits at p as a number, or -1. */
static int ls_digits(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* ls_hms - "HH:MM:SS" at p as seconds, or -1. */
static int ls_hms(const char *p)
{
	int h = ls_digits(p, 2), m = ls_digits(p + 3, 2), s = ls_digits(p + 6, 2);

	if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60)
		return -1;
	return h * 3600 + m * 60 + s;
}

static int ls_month(const char *p)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (memcmp(names + 3 * i, p, 3) == 0)
			return i;
	return -1;
}

/*
 * ls_time - parse the timestamp at the start of s[0..n) into *t_r
 * (microseconds since the epoch, UTC for RFC 3339). Returns the length
 * parsed, or 0 when there is none.
 */
static size_t ls_time(struct ls_state *st, const char *s, size_t n, int64_t *t_r)
{
	/*
	 * Lines come many to a second: the last second of each format is
	 * kept with its value. A traditional stamp equal to the last one has
	 * its month, so the year cannot change; nothing else moves the year.
	 */
	if (st->tc_trad_ok && n >= 15 && ls_eq(s, st->tc_trad, 15)) {
		*t_r = st->tv_trad;
		return 15;
	}
	if (n >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T') {
		size_t i = 19;
		int64_t us = 0, scale = 100000, base;

		if (st->tc_rfc_ok && ls_eq(s, st->tc_rfc, 19)) {
			base = st->tv_rfc;
		} else {
			int y = ls_digits(s, 4), mo = ls_digits(s + 5, 2), d = ls_digits(s + 8, 2);
			int sec = ls_hms(s + 11);

			if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || sec < 0)
				return 0;
			base = ls_days(y, mo, d) * 86400 + sec;
			memcpy(st->tc_rfc, s, 19);
			st->tv_rfc = base;
			st->tc_rfc_ok = 1;
		}
		if (s[i] == '.') {
			for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
				us += (s[i] - '0') * scale; /* digits past micro: scale 0 */
				scale /= 10;
			}
		}
		int64_t off = 0;

		if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i + 6 <= n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
			int oh = ls_digits(s + i + 1, 2), om = ls_digits(s + i + 4, 2);

			if (oh < 0 || oh > 23 || om < 0 || om > 59)
				return 0;
			off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
			i += 6;
		} else {
			return 0;
		}
		*t_r = ((base - off) * LS_USEC) + us;
		return i;
	}
	if (n >= 15 && s[3] == ' ' && s[6] == ' ') {
		int mo = ls_month(s), sec = ls_hms(s + 7);
		int d = s[4] == ' ' ? ls_digits(s + 5, 1) : ls_digits(s + 4, 2);

		if (mo < 0 || d < 1 || d > 31 || sec < 0)
			return 0;
		if (st->last_mon == 11 && mo == 0)
			st->year++;
		st->last_mon = mo;
		*t_r = (ls_days(st->year, mo + 1, d) * 86400 + sec) * LS_USEC;
		memcpy(st->tc_trad, s, 15);
		st->tv_trad = *t_r;
		st->tc_trad_ok = 1;
		return 15;
	}
	return 0;
}

/* ls_prefix - does s[0..n) start with the literal p? */
#define ls_prefix(s, n, p) ((n) >= sizeof(p) - 1 && ls_eq((s), (p), sizeof(p) - 1))

/* ls_connect - open the session of connect record r. */
static void ls_connect(struct ls_state *st, const struct ls_rec *r)
{
	struct ls_name *c;
	size_t j;
	int added;

	c = ls_intern(&st->clients, r->m, r->n, r->hash, &added);
	if (c == NULL) {
		st->oom = 1;
		return;
	}
	if (added) {
		/* S25R needs the NAME alone; it is cached per client. */
		char name[LS_NAME_MAX];

		memcpy(name, r->m, r->lb);
		name[r->lb] = '\0';
		c->s25r = rules_s25r(st->rules, name);
	}
	if (st->open.n + 1 > st->open.cap / 2 && ls_sess_grow(&st->open) < 0) {
		st->oom = 1;
		return;
	}
	j = ls_sess_find(&st->open, r->key);
	if (st->open.v[j].key == r->key) {
		/* The pid was reused: the old session lost its disconnect line. */
		ls_close(st, j, r->t, 0, 1);
		j = ls_sess_find(&st->open, r->key);
	}
	st->open.v[j] = (struct ls_sess){.key = r->key, .start = r->t, .client = c, .end = -1};
	st->open.n++;
}

/* ls_apply - account one smtpd record, in the order of the lines. */
static void ls_apply(struct ls_state *st, const struct ls_rec *r)
{
	size_t j;

	if (r->kind == LS_K_CONNECT) {
		ls_connect(st, r);
		return;
	}
	if (st->open.cap == 0 || st->open.v[j = ls_sess_find(&st->open, r->key)].key != r->key) {
		st->orphans++; /* its connect was before the input began */
		return;
	}
	if (r->kind == LS_K_DISC)
		ls_close(st, j, r->t, r->quit, 0);
	else if (r->kind == LS_K_REJ)
		st->open.v[j].rejected = 1;
	else if (st->open.v[j].end < 0)
		st->open.v[j].end =
		    (int8_t)ls_end_index(st, r->kind == LS_K_LOST ? "lost" : "timeout", r->m, r->n);
}

/*
 * ls_flush - apply the records parsed so far. By now the hash slots of
 * their clients, prefetched while parsing, have arrived: a first pass
 * starts loading the entries they point to (and those of the sessions
 * that end), the second does the work, mostly from cache.
 */
static void ls_flush(struct ls_state *st)
{
	const struct ls_names *cl = &st->clients;

	for (int i = 0; i < st->nrec; i++) {
		const struct ls_rec *r = &st->rec[i];

		if (r->kind == LS_K_CONNECT) {
			const struct ls_slot *sl;

			if (cl->nslot == 0)
				continue;
			sl = &cl->slot[r->hash & (cl->nslot - 1)];
			if (sl->e != NULL && sl->hash == r->hash) {
				__builtin_prefetch(sl->e);
				__builtin_prefetch(sl->e->s + r->n - 1);
			}
		} else if (r->kind == LS_K_DISC && st->open.cap > 0) {
			size_t j = ls_sess_find(&st->open, r->key);

			if (st->open.v[j].key == r->key)
				__builtin_prefetch(st->open.v[j].client);
		}
	}
	for (int i = 0; i < st->nrec; i++)
		ls_apply(st, &st->rec[i]);
	st->nrec = 0;
}

/* ls_host - the index of the syslog host s[0..n), added if new; -1: no memory. */
static long ls_host(struct ls_state *st, const char *s, size_t n)
{
	struct ls_names *t = &st->hosts;
	long h = st->last_host;
	int added;

	/* Hosts are few and come in runs: try the last one, then all. */
	if (h >= 0 && t->v[h]->len == n && ls_eq(t->v[h]->s, s, n))
		return h;
	if (t->n <= 8) {
		for (h = 0; h < (long)t->n; h++)
			if (t->v[h]->len == n && ls_eq(t->v[h]->s, s, n))
				return st->last_host = h;
	}
	const struct ls_name *e = ls_intern(t, s, n, ls_hash(s, n), &added);

	if (e == NULL)
		return -1;
	return st->last_host = e->idx;
}

/*
 * ls_line - parse one log line s[0..n), without its newline: count it,
 * and queue what it says about a session for ls_flush().
 */
static void ls_line(struct ls_state *st, const char *s, size_t n)
{
	int64_t t;
	size_t i = ls_time(st, s, n, &t);
	const char *host, *tag, *lb, *end = s + n;

	st->lines++;
	if (i == 0 || i >= n || s[i] != ' ') {
		st->unparseable++;
		return;
	}
	/* Loops, not memchr(): the words are short, a call costs more. */
	host = s + i + 1;
	for (tag = host; tag < end && *tag != ' '; tag++)
		;
	if (tag == end || tag == host || tag - host >= LS_NAME_MAX) {
		st->unparseable++;
		return;
	}
	size_t hostlen = (size_t)(tag - host);
	const char *msg;

	tag++;
	for (lb = NULL, msg = tag; msg < end && *msg != ' '; msg++)
		if (*msg == '[' && lb == NULL)
			lb = msg;
	if (msg == end || msg - tag < 3 || msg[-1] != ':') {
		/* "host program:" without a pid, or no message: not ours. */
		return;
	}
	if (lb == NULL || msg[-2] != ']')
		return;
	size_t taglen = (size_t)(lb - tag);

	if (taglen >= 11 && ls_eq(lb - 11, "/postscreen", 11)) {
		st->postscreen++;
		return;
	}
	if (taglen < 6 || !ls_eq(lb - 6, "/smtpd", 6))
		return;
	uint64_t pid = 0;

	for (const char *p = lb + 1; p < msg - 2; p++) {
		if (*p < '0' || *p > '9' || pid > 0xffffffffu / 10) {
			st->unparseable++;
			return;
		}
		pid = pid * 10 + (uint64_t)(*p - '0');
	}
	if (pid == 0 || pid > 0xffffffffu) {
		st->unparseable++;
		return;
	}
	long h = ls_host(st, host, hostlen);

	if (h < 0) {
		st->oom = 1;
		return;
	}
	struct ls_rec *r = &st->rec[st->nrec];
	const char *m = msg + 1;
	size_t mn = (size_t)(end - m);

	st->smtpd++;
	if (ls_prefix(m, mn, "connect from ")) {
		const char *c = m + 13, *rb;
		size_t cn = mn - 13;

		lb = memchr(c, '[', cn);
		if (lb == NULL || lb == c || (rb = memchr(lb, ']', cn - (size_t)(lb - c))) == NULL ||
		    (size_t)(rb - c) + 1 >= LS_NAME_MAX) {
			st->unparseable++;
			return;
		}
		r->kind = LS_K_CONNECT;
		r->m = c;
		r->n = (uint32_t)(rb - c) + 1;
		r->lb = (uint32_t)(lb - c);
		r->hash = ls_hash(c, r->n);
		ls_prefetch_slot(&st->clients, r->hash);
	} else if (ls_prefix(m, mn, "disconnect from ")) {
		/*
		 * "quit=1" among the counters: smtpd saw QUIT. The first
		 * " quit=1" decides, as memmem() would find it. A 'q' is rare
		 * in these lines: look for that, then around it. None can
		 * start before the space after "from".
		 */
		const char *q = m + 16;

		while ((q = memchr(q, 'q', (size_t)(end - q))) != NULL &&
		       !(q[-1] == ' ' && end - q >= 6 && ls_eq(q + 1, "uit=1", 5)))
			q++;
		r->kind = LS_K_DISC;
		r->quit = q != NULL && (q + 6 == end || q[6] == ' ');
	} else if (ls_prefix(m, mn, "lost connection after ") ||
		   ls_prefix(m, mn, "timeout after ")) {
		size_t off = m[0] == 'l' ? 22 : 14, x = off;

		/* X is one word: "DATA (0 bytes)" is DATA. */
		while (x < mn && m[x] != ' ' && m[x] != '(')
			x++;
		r->kind = m[0] == 'l' ? LS_K_LOST : LS_K_TMO;
		r->m = m + off;
		r->n = (uint32_t)(x - off);
	} else if (ls_prefix(m, mn, "NOQUEUE: reject: ")) {
		r->kind = LS_K_REJ;
	} else {
		return;
	}
	r->key = (uint64_t)h << 32 | pid;
	r->t = t;
	if (++st->nrec == LS_BATCH)
		ls_flush(st);
}

/* ---- input ------------------------------------------------------------ */

static double ls_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * ls_file - read one file ("-": standard input) line by line into st.
 * Returns 0, or -1 after a message.
 */
static int ls_file(struct ls_state *st, const char *path, char *buf)
{
	int stdin_ = strcmp(path, "-") == 0;
	int fd = stdin_ ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	gzFile f;
	size_t have = 0;
	int skipping = 0, progress = 0, rc = 0;
	double last = 0;

	if (fd < 0) {
		fprintf(stderr, "mxguardctl: logstat: %s: %s\n", path, strerror(errno));
		return -1;
	}
	memset(&sb, 0, sizeof(sb)); /* if fstat() fails: no type, no size */
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "mxguardctl: logstat: %s: is a directory\n", path);
		close(fd);
		return -1;
	}
	/* Only a person watching a large file wants a bar; never in a pipe. */
	progress = isatty(2) && S_ISREG(sb.st_mode) && sb.st_size >= LS_PROGRESS_MIN;
	f = gzdopen(fd, "rb");
	if (f == NULL) {
		fprintf(stderr, "mxguardctl: logstat: %s: out of memory\n", path);
		close(fd);
		return -1;
	}
	gzbuffer(f, 256 * 1024);
	st->files++;
	for (;;) {
		int n = gzread(f, buf + have, (unsigned)(LS_BUF - have));
		int zerr;
		const char *msg = gzerror(f, &zerr);

		if (n < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
			fprintf(stderr, "mxguardctl: logstat: %s: %s\n", path,
				zerr == Z_ERRNO ? strerror(errno) : msg);
			rc = -1;
			break;
		}
		if (n == 0) {
			if (have > 0 && !skipping)
				ls_line(st, buf, have); /* the last line had no newline */
			ls_flush(st);
			break;
		}
		have += (size_t)n;
		char *p = buf, *e = buf + have, *nl;

		while ((nl = memchr(p, '\n', (size_t)(e - p))) != NULL) {
			if (!skipping)
				ls_line(st, p, (size_t)(nl - p));
			skipping = 0;
			p = nl + 1;
		}
		ls_flush(st); /* before the buffer moves under the records */
		have = (size_t)(e - p);
		if (have == LS_BUF) {
			/* A line longer than the buffer is no log line: drop it. */
			if (!skipping) {
				st->lines++;
				st->unparseable++;
			}
			skipping = 1;
			have = 0;
		} else if (have > 0 && p != buf) {
			memmove(buf, p, have);
		}
		if (st->oom) {
			fprintf(stderr, "mxguardctl: logstat: out of memory\n");
			rc = -1;
			break;
		}
		if (progress && ls_now() - last >= 0.25) {
			last = ls_now();
			fprintf(stderr, "\rlogstat: %s %3d%%", path,
				(int)(100.0 * (double)gzoffset(f) / (double)sb.st_size));
		}
	}
	if (progress)
		fprintf(stderr, "\r\033[K");
	gzclose(f);
	return rc;
}

/* ---- output ----------------------------------------------------------- */

static double ls_pct(double part, double whole)
{
	return whole > 0 ? 100.0 * part / whole : 0.0;
}

static double ls_sec(int64_t us)
{
	return (double)us / LS_USEC;
}

/* ls_label - the name of bucket b, "<0.1s" or ">=300s". */
static void ls_label(const struct ls_opts *o, int b, char *buf, size_t bufsz)
{
	if (b < o->nedge)
		snprintf(buf, bufsz, "<%gs", ls_sec(o->edge[b]));
	else
		snprintf(buf, bufsz, ">=%gs", ls_sec(o->edge[o->nedge - 1]));
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

static void ls_text(const struct ls_state *st, FILE *out)
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
		st->total.n, ls_sec(st->total.us), st->end_t[LS_END_MISSING].n, st->orphans);
	fprintf(out, "%-12s %10s %8s %10s\n", "duration", "sessions", "share", "occupancy");
	for (int b = 0; b <= o->nedge; b++) {
		ls_label(o, b, label, sizeof(label));
		fprintf(out, "%-12s %10lu %7.1f%% %9.1f%%\n", label, st->bucket[b].n,
			ls_pct((double)st->bucket[b].n, tn), ls_pct((double)st->bucket[b].us, tu));
	}
	fprintf(out, "\n%-26s %10s %8s %12s\n", "ended by", "sessions", "share", "time");
	for (int i = 0; i < st->nend; i++) {
		if (st->end_t[i].n == 0)
			continue;
		fprintf(out, "%-26s %10lu %7.1f%% %11.3fs\n", st->end_name[i], st->end_t[i].n,
			ls_pct((double)st->end_t[i].n, en), ls_sec(st->end_t[i].us));
	}
	fprintf(out, "\n%-12s %10s %8s %10s\n", "class", "sessions", "share", "occupancy");
	for (int c = 1; c >= 0; c--)
		fprintf(out, "%-12s %10lu %7.1f%% %9.1f%%\n", c ? "s25r" : "other", st->cls[c].n,
			ls_pct((double)st->cls[c].n, tn), ls_pct((double)st->cls[c].us, tu));
	fprintf(out, "\ntop clients by occupied time\n%-50s %10s %12s %10s\n", "client",
		"sessions", "time", "occupancy");
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];

		fprintf(out, "%-50s %10lu %11.3fs %9.1f%%\n", c->s, c->t.n, ls_sec(c->t.us),
			ls_pct((double)c->t.us, tu));
	}
}

static void ls_csv_row(FILE *out, const char *section, const char *key, unsigned long n,
		       double share, int64_t us, double occ)
{
	fprintf(out, "%s,", section);
	ls_csv_str(out, key);
	fprintf(out, ",%lu,%.4f,%.6f,%.4f\n", n, share, ls_sec(us), occ);
}

static void ls_csv(const struct ls_state *st, FILE *out)
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
		ls_label(o, b, label, sizeof(label));
		ls_csv_row(out, "bucket", label, st->bucket[b].n,
			   ls_pct((double)st->bucket[b].n, tn), st->bucket[b].us,
			   ls_pct((double)st->bucket[b].us, tu));
	}
	for (int i = 0; i < st->nend; i++)
		if (st->end_t[i].n > 0)
			ls_csv_row(out, "ended", st->end_name[i], st->end_t[i].n,
				   ls_pct((double)st->end_t[i].n, en), st->end_t[i].us,
				   ls_pct((double)st->end_t[i].us, tu));
	for (int c = 1; c >= 0; c--)
		ls_csv_row(out, "class", c ? "s25r" : "other", st->cls[c].n,
			   ls_pct((double)st->cls[c].n, tn), st->cls[c].us,
			   ls_pct((double)st->cls[c].us, tu));
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];

		ls_csv_row(out, "client", c->s, c->t.n, ls_pct((double)c->t.n, tn), c->t.us,
			   ls_pct((double)c->t.us, tu));
	}
}

static void ls_json_tally(FILE *out, unsigned long n, double share, int64_t us, double occ)
{
	fprintf(out, "\"sessions\":%lu,\"share\":%.4f,\"time\":%.6f,\"occupancy\":%.4f}", n,
		share, ls_sec(us), occ);
}

static void ls_json(const struct ls_state *st, FILE *out)
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
		ls_sec(st->total.us), st->end_t[LS_END_MISSING].n, st->orphans, st->negative);
	for (int b = 0; b <= o->nedge; b++) {
		ls_label(o, b, label, sizeof(label));
		fprintf(out, "%s{\"label\":\"%s\",\"lt\":", b ? "," : "", label);
		if (b < o->nedge)
			fprintf(out, "%g,", ls_sec(o->edge[b]));
		else
			fputs("null,", out);
		ls_json_tally(out, st->bucket[b].n, ls_pct((double)st->bucket[b].n, tn),
			      st->bucket[b].us, ls_pct((double)st->bucket[b].us, tu));
	}
	fputs("],\"ended\":[", out);
	for (int i = 0, first = 1; i < st->nend; i++) {
		if (st->end_t[i].n == 0)
			continue;
		fprintf(out, "%s{\"how\":", first ? "" : ",");
		ls_json_str(out, st->end_name[i]);
		putc(',', out);
		ls_json_tally(out, st->end_t[i].n, ls_pct((double)st->end_t[i].n, en),
			      st->end_t[i].us, ls_pct((double)st->end_t[i].us, tu));
		first = 0;
	}
	fputs("],\"class\":{", out);
	for (int c = 1; c >= 0; c--) {
		fprintf(out, "%s\"%s\":{", c ? "" : ",", c ? "s25r" : "other");
		ls_json_tally(out, st->cls[c].n, ls_pct((double)st->cls[c].n, tn), st->cls[c].us,
			      ls_pct((double)st->cls[c].us, tu));
	}
	fputs("},\"top_clients\":[", out);
	for (int i = 0; i < k; i++) {
		const struct ls_name *c = st->clients.v[top[i]];

		fputs(i ? ",{\"client\":" : "{\"client\":", out);
		ls_json_str(out, c->s);
		fprintf(out, ",\"s25r\":%d,", c->s25r);
		ls_json_tally(out, c->t.n, ls_pct((double)c->t.n, tn), c->t.us,
			      ls_pct((double)c->t.us, tu));
	}
	fputs("]}\n", out);
}

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
 * ls_svg - the histogram as an SVG chart: x is log10 of each bucket's
 * upper bound (the open last bucket one step further), y is percent for
 * the two shares and the fraction of the largest bucket for sessions.
 */
static int ls_svg(const struct ls_state *st, const char *path)
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
		x[b] = ls_log10(ls_sec(o->edge[b]));
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

		ls_label(o, b, label, sizeof(label));
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
				   : line == 1 ? ls_pct((double)st->bucket[b].n, tn)
					       : ls_pct((double)st->bucket[b].us, tu);

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

/* ---- command ---------------------------------------------------------- */

/* ls_buckets - parse "1,5,10,60" (seconds, ascending) into o. */
static int ls_buckets(struct ls_opts *o, const char *s)
{
	o->nedge = 0;
	for (;;) {
		char *end;
		double v;

		errno = 0;
		v = strtod(s, &end);
		if (errno != 0 || end == s || !(v > 0) || v > 1e9 || o->nedge == LS_MAX_BUCKETS)
			return -1;
		o->edge[o->nedge] = (int64_t)(v * LS_USEC + 0.5);
		if (o->nedge > 0 && o->edge[o->nedge] <= o->edge[o->nedge - 1])
			return -1;
		o->nedge++;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -1;
		s = end + 1;
	}
}

int logstat_main(int argc, char **argv)
{
	struct ls_opts o = {.nedge = 0};
	struct ls_state st;
	char err[256], *buf;
	time_t now = time(NULL);
	struct tm tm;
	int i, rc = 0;

	localtime_r(&now, &tm);
	o.year = tm.tm_year + 1900;
	for (size_t b = 0; b < sizeof(ls_default_edges) / sizeof(ls_default_edges[0]); b++)
		o.edge[o.nedge++] = (int64_t)(ls_default_edges[b] * LS_USEC + 0.5);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--csv") == 0) {
			o.csv = 1;
		} else if (strcmp(a, "--json") == 0) {
			o.json = 1;
		} else if (strcmp(a, "--svg") == 0 && i + 1 < argc) {
			o.svg = argv[++i];
		} else if (strcmp(a, "--buckets") == 0 && i + 1 < argc) {
			if (ls_buckets(&o, argv[++i]) < 0) {
				fprintf(stderr, "mxguardctl: logstat: --buckets: want ascending "
						"seconds, e.g. 1,5,10,60\n");
				return 2;
			}
		} else if (strcmp(a, "--year") == 0 && i + 1 < argc) {
			char *end;
			long y = strtol(argv[++i], &end, 10);

			if (*end != '\0' || y < 1970 || y > 9999) {
				ls_usage();
				return 2;
			}
			o.year = (int)y;
		} else {
			ls_usage();
			return 2;
		}
	}
	if (i >= argc || (o.csv && o.json)) {
		ls_usage();
		return 2;
	}
	memset(&st, 0, sizeof(st));
	st.o = &o;
	st.year = o.year;
	st.last_mon = -1;
	st.last_host = -1;
	st.nend = LS_NFIXED;
	for (int e = 0; e < LS_NFIXED; e++)
		snprintf(st.end_name[e], LS_END_NAME, "%s", ls_fixed_names[e]);
	/* No lists: only the built-in S25R rules are wanted. */
	st.rules = rules_load(NULL, 0, err, sizeof(err));
	buf = malloc(LS_BUF);
	if (st.rules == NULL || buf == NULL) {
		fprintf(stderr, "mxguardctl: logstat: %s\n", st.rules ? "out of memory" : err);
		free(buf);
		rules_free(&st.rules);
		return 1;
	}
	for (; i < argc && rc == 0; i++)
		if (ls_file(&st, argv[i], buf) < 0)
			rc = 1;
	free(buf);
	if (rc == 0) {
		/* Sessions still open lost their disconnect to the end of the log. */
		for (size_t j = 0; j < st.open.cap;) {
			if (st.open.v[j].key != 0)
				ls_close(&st, j, 0, 0, 1); /* may move a later entry into j */
			else
				j++;
		}
		if (o.json)
			ls_json(&st, stdout);
		else if (o.csv)
			ls_csv(&st, stdout);
		else
			ls_text(&st, stdout);
		if (o.svg != NULL && ls_svg(&st, o.svg) < 0)
			rc = 1;
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "mxguardctl: logstat: stdout: %s\n", strerror(errno));
			rc = 1;
		}
	}
	free(st.open.v);
	ls_names_free(&st.hosts);
	ls_names_free(&st.clients);
	rules_free(&st.rules);
	return rc;
}
