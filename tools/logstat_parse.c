/*
 * logstat_parse.c - the log-line parser and session accounting of
 * "mxguardctl logstat" (the command itself is logstat.c).
 *
 * Each line's timestamp (traditional, with the year from --year rolled
 * over from December to January, or RFC 3339), syslog host and tag are
 * parsed; smtpd lines "connect from NAME[ADDR]", "disconnect from",
 * "lost connection after X", "timeout after X" and "NOQUEUE: reject"
 * open, end or mark the session of their host and pid, and an ended
 * session's duration is added to its bucket, its way of ending, its S25R
 * class and its client. What logstat.c's manual block promises about
 * pairing, endings and unparseable lines is done here.
 *
 * Every byte of a line is hostile: a line is read only within its
 * length, names longer than LS_NAME_MAX are refused, durations are
 * capped so that the sums cannot overflow, and the tables are bounded by
 * memory only (out of memory sets st->oom).
 *
 * IMPLEMENTATION
 *	Speed matters (logs of millions of lines; bench/logstat compares
 *	with pflogsumm). With tens of thousands of clients the cost is in
 *	cache misses on the client table, not in parsing: so smtpd lines are
 *	parsed in batches into records (prefetching the hash slot of each
 *	connect's client), then a batch is applied in line order after a
 *	pass that prefetches the entries the slots point to. The output is
 *	that of applying every line as it is read. Entries keep their
 *	string inline; the timestamp of the last second is cached; short
 *	compares and scans are inline rather than calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logstat_parse.h"
#include "rules.h"

/* The longest session counted as it is (30 days, in microseconds). */
#define LS_MAX_SESSION_US (30LL * 86400 * 1000000)
#define LS_NAME_MAX 1024 /* NAME[ADDR] longer than this is garbage */

static const char *const ls_fixed_names[LS_NFIXED] = {"quit", "rejected", "disconnect without quit",
						      "missing disconnect"};

static const double ls_default_edges[] = {0.1, 0.3, 1, 3, 10, 30, 100, 300};

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

/* An open session, keyed by host index and smtpd pid. */
struct ls_sess {
	uint64_t key; /* host << 32 | pid; 0: free slot (pid 0 is not a pid) */
	int64_t start;
	struct ls_name *client;
	int8_t rejected;
	int8_t end; /* lost/timeout end index, -1 none */
};

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
	int end = missing	? LS_END_MISSING
		  : s->end >= 0 ? s->end
		  : s->rejected ? LS_END_REJECTED
		  : quit	? LS_END_QUIT
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
		if (st->t_last == 0 || s->start < st->t_first)
			st->t_first = s->start;
		if (now > st->t_last)
			st->t_last = now;
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
 * ls_frac - the fraction of a second at s[*i] when it starts with '.':
 * microseconds (digits past the sixth are dropped), *i moved past it.
 * Counts the stamp as fine (with a fraction) or coarse (whole seconds).
 */
static int64_t ls_frac(struct ls_state *st, const char *s, size_t n, size_t *i)
{
	int64_t us = 0, scale = 100000;
	size_t j = *i;

	if (j >= n || s[j] != '.' || j + 1 >= n || s[j + 1] < '0' || s[j + 1] > '9') {
		st->ts_coarse++;
		return 0;
	}
	for (j++; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
		us += (s[j] - '0') * scale; /* digits past micro: scale 0 */
		scale /= 10;
	}
	*i = j;
	st->ts_fine++;
	return us;
}

/*
 * ls_offset - a UTC offset at s[*i]: "Z", "+HH:MM" (RFC 3339) or "+HHMM"
 * (journalctl -o short-iso before systemd 253) into *off (seconds).
 * Returns 0, or -1 when there is none.
 */
static int ls_offset(const char *s, size_t n, size_t *i, int64_t *off)
{
	size_t j = *i;
	int oh, om;

	if (j < n && (s[j] == 'Z' || s[j] == 'z')) {
		*off = 0;
		*i = j + 1;
		return 0;
	}
	if (j + 5 > n || (s[j] != '+' && s[j] != '-'))
		return -1;
	oh = ls_digits(s + j + 1, 2);
	if (s[j + 3] == ':' && j + 6 <= n) {
		om = ls_digits(s + j + 4, 2);
		*i = j + 6;
	} else {
		om = ls_digits(s + j + 3, 2);
		*i = j + 5;
	}
	if (oh < 0 || oh > 23 || om < 0 || om > 59)
		return -1;
	*off = (oh * 3600 + om * 60) * (s[j] == '-' ? -1 : 1);
	return 0;
}

/*
 * ls_ymd_hms - "YYYY-MM-DD?HH:MM:SS" at s as seconds since the epoch
 * (negative before 1970) in *t_r. Returns 0, or -1 when it is none.
 */
static int ls_ymd_hms(const char *s, int64_t *t_r)
{
	int y = ls_digits(s, 4), mo = ls_digits(s + 5, 2), d = ls_digits(s + 8, 2);
	int sec = ls_hms(s + 11);

	if (y < 0 || s[4] != '-' || s[7] != '-' || mo < 1 || mo > 12 || d < 1 || d > 31 || sec < 0)
		return -1;
	*t_r = ls_days(y, mo, d) * 86400 + sec;
	return 0;
}

/*
 * ls_time - parse the timestamp at the start of s[0..n) into *t_r
 * (microseconds since the epoch, UTC where the stamp has an offset).
 * Every "journalctl -o" short format is read:
 *	short, short-precise		Dec 03 12:00:00[.123456]
 *	short-iso, short-iso-precise	2026-12-03T12:00:00[.123456]+0000
 *					(and RFC 3339: Z, +00:00)
 *	short-full			Thu 2026-12-03 12:00:00[.123456] UTC
 *	short-unix			1796300287.726990
 *	short-monotonic			[ 1234.567890]
 * A short-full zone other than UTC or GMT is ignored, as the traditional
 * stamp's is. Returns the length parsed, or 0 when there is none.
 */
static size_t ls_time(struct ls_state *st, const char *s, size_t n, int64_t *t_r)
{
	size_t i;
	int64_t base, off = 0;

	/*
	 * Lines come many to a second: the last second of each format is
	 * kept with its value. A traditional stamp equal to the last one has
	 * its month, so the year cannot change; nothing else moves the year.
	 */
	if (st->tc_trad_ok && n >= 15 && ls_eq(s, st->tc_trad, 15)) {
		i = 15;
		*t_r = st->tv_trad + ls_frac(st, s, n, &i);
		return i;
	}
	if (n >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T') {
		if (st->tc_rfc_ok && ls_eq(s, st->tc_rfc, 19)) {
			base = st->tv_rfc;
		} else {
			if (ls_ymd_hms(s, &base) < 0)
				return 0;
			memcpy(st->tc_rfc, s, 19);
			st->tv_rfc = base;
			st->tc_rfc_ok = 1;
		}
		i = 19;
		int64_t us = ls_frac(st, s, n, &i);

		if (ls_offset(s, n, &i, &off) < 0)
			return 0;
		*t_r = ((base - off) * LS_USEC) + us;
		return i;
	}
	if (n >= 27 && s[3] == ' ' && s[8] == '-' && s[14] == ' ') {
		/* short-full: "Thu 2026-12-03 12:00:00 UTC" (the weekday is not read). */
		char ymd[19];

		memcpy(ymd, s + 4, 19);
		if (ls_ymd_hms(ymd, &base) < 0)
			return 0;
		i = 23;
		int64_t us = ls_frac(st, s, n, &i);

		if (i >= n || s[i] != ' ')
			return 0;
		size_t z = ++i;

		while (i < n && s[i] != ' ')
			i++;
		if (i == z || i - z > 8)
			return 0;
		if (s[z] == '+' || s[z] == '-') {
			size_t k = z;

			if (ls_offset(s, i, &k, &off) < 0 || k != i)
				return 0;
		}
		*t_r = base * LS_USEC + us - off * LS_USEC;
		return i;
	}
	if (n >= 3 && (s[0] == '[' || (s[0] >= '0' && s[0] <= '9'))) {
		/* short-monotonic "[   12.345678]" or short-unix "1796300287.726990". */
		int64_t sec = 0;

		i = 0;
		if (s[0] == '[')
			for (i = 1; i < n && s[i] == ' '; i++)
				;
		size_t d0 = i;

		for (; i < n && s[i] >= '0' && s[i] <= '9' && i - d0 < 12; i++)
			sec = sec * 10 + (s[i] - '0');
		if (i == d0 || (s[0] != '[' && i - d0 < 9))
			return 0;
		int64_t us = ls_frac(st, s, n, &i);

		if (s[0] == '[') {
			if (i >= n || s[i] != ']')
				return 0;
			i++;
		}
		*t_r = sec * LS_USEC + us;
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
		memcpy(st->tc_trad, s, 15);
		st->tv_trad = (ls_days(st->year, mo + 1, d) * 86400 + sec) * LS_USEC;
		st->tc_trad_ok = 1;
		i = 15;
		*t_r = st->tv_trad + ls_frac(st, s, n, &i);
		return i;
	}
	return 0;
}

/*
 * ls_bad - count s[0..n) as unparseable; the first such line is kept
 * (cut) for the message when nothing parses.
 */
static void ls_bad(struct ls_state *st, const char *s, size_t n)
{
	if (st->unparseable++ == 0) {
		st->first_bad_len = n < sizeof(st->first_bad) ? n : sizeof(st->first_bad);
		memcpy(st->first_bad, s, st->first_bad_len);
	}
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
 * lsparse_flush - see logstat_parse.h. By now the hash slots of the
 * records' clients, prefetched while parsing, have arrived: a first pass
 * starts loading the entries they point to (and those of the sessions
 * that end), the second does the work, mostly from cache.
 */
void lsparse_flush(struct ls_state *st)
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
 * lsparse_line - see logstat_parse.h: count the line, and queue what it
 * says about a session for lsparse_flush().
 */
void lsparse_line(struct ls_state *st, const char *s, size_t n)
{
	int64_t t;
	size_t i = ls_time(st, s, n, &t);
	const char *host, *tag, *lb, *end = s + n;

	st->lines++;
	if (i == 0 || i >= n || s[i] != ' ') {
		ls_bad(st, s, n);
		return;
	}
	/* Loops, not memchr(): the words are short, a call costs more. */
	host = s + i + 1;
	for (tag = host; tag < end && *tag != ' '; tag++)
		;
	if (tag == end || tag == host || tag - host >= LS_NAME_MAX) {
		ls_bad(st, s, n);
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
	if (st->o->service != NULL) {
		/*
		 * The service is the syslog_name part between the first '/'
		 * and "/smtpd": postfix/submission/smtpd is "submission";
		 * postfix/smtpd (port 25, master.cf's "smtp") is "smtpd".
		 */
		const char *sl = memchr(tag, '/', taglen), *sv = sl + 1;
		size_t svlen = (size_t)(lb - 6 - sv);

		if (sv > lb - 6) {
			sv = "smtpd";
			svlen = 5;
		}
		if (svlen != strlen(st->o->service) || memcmp(sv, st->o->service, svlen) != 0) {
			st->other_service++;
			return;
		}
	}
	uint64_t pid = 0;

	for (const char *p = lb + 1; p < msg - 2; p++) {
		if (*p < '0' || *p > '9' || pid > 0xffffffffu / 10) {
			ls_bad(st, s, n);
			return;
		}
		pid = pid * 10 + (uint64_t)(*p - '0');
	}
	if (pid == 0 || pid > 0xffffffffu) {
		ls_bad(st, s, n);
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
		if (lb == NULL || lb == c ||
		    (rb = memchr(lb, ']', cn - (size_t)(lb - c))) == NULL ||
		    (size_t)(rb - c) + 1 >= LS_NAME_MAX) {
			ls_bad(st, s, n);
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
		lsparse_flush(st);
}

/* ---- the run ---------------------------------------------------------- */

void lsparse_default_buckets(struct ls_opts *o)
{
	o->nedge = 0;
	for (size_t b = 0; b < sizeof(ls_default_edges) / sizeof(ls_default_edges[0]); b++)
		o->edge[o->nedge++] = (int64_t)(ls_default_edges[b] * LS_USEC + 0.5);
}

void lsparse_init(struct ls_state *st, const struct ls_opts *o, struct rules *rules)
{
	memset(st, 0, sizeof(*st));
	st->o = o;
	st->rules = rules;
	st->year = o->year;
	st->last_mon = -1;
	st->last_host = -1;
	st->nend = LS_NFIXED;
	for (int e = 0; e < LS_NFIXED; e++)
		snprintf(st->end_name[e], LS_END_NAME, "%s", ls_fixed_names[e]);
}

void lsparse_end(struct ls_state *st)
{
	for (size_t j = 0; j < st->open.cap;) {
		if (st->open.v[j].key != 0)
			ls_close(st, j, 0, 0, 1); /* may move a later entry into j */
		else
			j++;
	}
}

void lsparse_free(struct ls_state *st)
{
	free(st->open.v);
	ls_names_free(&st->hosts);
	ls_names_free(&st->clients);
}
