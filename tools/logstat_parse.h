/*
 * logstat_parse.h - logstat's Postfix log-line parser and session
 * accounting (tools/logstat_parse.c): the state a run accounts into, which
 * the reports (logstat_report.c, logstat_svg.c) and the fuzz target read.
 *
 * The types keep the tool's own ls_ prefix; the module's functions are
 * lsparse_*.
 */
#ifndef MXG_LOGSTAT_PARSE_H
#define MXG_LOGSTAT_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct rules;

#define LS_MAX_BUCKETS 32 /* --buckets edges, at most */
#define LS_MAX_ENDS 40	  /* distinct ways to end, at most */
#define LS_END_NAME 48
#define LS_USEC 1000000LL

/* The fixed ways to end; lost/timeout after X are added as seen. */
enum ls_end_fixed { LS_END_QUIT, LS_END_REJECTED, LS_END_NOQUIT, LS_END_MISSING, LS_NFIXED };

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

struct ls_slot;	 /* a hash slot (logstat_parse.c) */
struct ls_chunk; /* a chunk of entries (logstat_parse.c) */

struct ls_names {
	struct ls_name **v; /* in the order added: the top list breaks ties by it */
	size_t n, cap;
	struct ls_slot *slot;
	size_t nslot; /* a power of two */
	struct ls_chunk *chunk;
};

struct ls_sess; /* an open session (logstat_parse.c) */

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

#define LS_BATCH 128 /* records per lsparse_flush() */

struct ls_opts {
	int64_t edge[LS_MAX_BUCKETS]; /* bucket upper bounds, microseconds */
	int nedge, csv, json, year;
	const char *svg;
	const char *service; /* --service: smtpd, submission...; NULL: all */
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
	unsigned long other_service; /* smtpd lines of services --service left out */
	/* The accounted sessions' first start and last end (microseconds); 0: none. */
	int64_t t_first, t_last;
	/* Timestamps with a fraction of a second, and without: the resolution. */
	unsigned long ts_fine, ts_coarse;
	char first_bad[120]; /* the start of the first unparseable line */
	size_t first_bad_len;
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

/*
 * lsparse_default_buckets - set o's bucket edges to the default
 * log-scale ones (0.1s to 300s); the other fields are left alone.
 */
void lsparse_default_buckets(struct ls_opts *o);

/*
 * lsparse_init - an empty st for a run with options o (its edges and
 * year) and the S25R rules that classify clients. st keeps both
 * pointers: o and rules must outlive it, and the caller frees rules
 * after lsparse_free().
 */
void lsparse_init(struct ls_state *st, const struct ls_opts *o, struct rules *rules);

/*
 * lsparse_line - parse one log line s[0..n), without its newline: count
 * it, and queue what it says about a session for lsparse_flush() (which
 * it calls itself when the batch is full). The queued records point into
 * s: the caller keeps s unchanged until the next lsparse_flush(). Any
 * bytes are accepted; a line that is not a log line is counted as
 * unparseable. Out of memory sets st->oom (the caller checks it).
 */
void lsparse_line(struct ls_state *st, const char *s, size_t n);

/*
 * lsparse_flush - apply the records lsparse_line() queued, in the order
 * of their lines. Call it before the buffer the lines were in changes,
 * and at the end of the input.
 */
void lsparse_flush(struct ls_state *st);

/*
 * lsparse_end - at the end of the input (after lsparse_flush()), account
 * every session still open as without a disconnect: it lost its
 * disconnect to the end of the log. Afterwards st->open.n is 0.
 */
void lsparse_end(struct ls_state *st);

/*
 * lsparse_free - free what st holds (not o, not rules). st is not used
 * again.
 */
void lsparse_free(struct ls_state *st);

#endif
