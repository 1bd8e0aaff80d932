/*
 * store_kind.h - what the store holds and where it lives, without the
 * store: the record kinds and their names, what a valid key and a
 * plausible record are, and the parsing of the store parameter ("lmdb",
 * "redis://...", "unix:..."). Depends on libc only, so that mxguardctl
 * links it without the backends (LMDB, hiredis, libevent).
 */
#ifndef MXG_STORE_KIND_H
#define MXG_STORE_KIND_H

#include <stddef.h>
#include <stdint.h>

enum store_kind { STORE_TARPIT, STORE_GREY, STORE_AWL, STORE_WHITE, STORE_BLOCK, STORE_NKINDS };

/*
 * store_kind_name - "tarpit", "grey", "awl", "white" (entries an operator
 * added with mxguardctl), "block" (dynamic blocks: key is the address,
 * first = first offence, last = end of the block, count = escalation
 * level, expires = last + block_memory); "?" for anything else.
 * store_kind_parse: the reverse, -1 if unknown.
 */
const char *store_kind_name(enum store_kind kind);
int store_kind_parse(const char *name);

/* One record; which fields mean what depends on the kind (see grey.c). */
struct store_rec {
	int64_t first;	 /* unix time first seen */
	int64_t last;	 /* unix time last seen / updated */
	int64_t expires; /* unix time after which the record does not exist */
	uint32_t count;	 /* retries (grey), survivals (awl), drops (tarpit) */
};

/* Keys are printable strings of at most STORE_KEY_MAX bytes. */
#define STORE_KEY_MAX 511

/* store_kind_key_valid - 1 for 1 to STORE_KEY_MAX bytes without control characters. */
int store_kind_key_valid(const char *key);

/*
 * store_kind_rec_valid - 1 if rec's times are plausible: first and last
 * unix seconds from 1970 to the year 9999, expires positive. Records read
 * from a file or a Redis that others can write are checked with it.
 */
int store_kind_rec_valid(const struct store_rec *rec);

/* Where the store parameter puts the store. */
enum store_backend { STORE_LMDB, STORE_REDIS };

struct store_spec {
	enum store_backend backend;
	/* STORE_REDIS only (the rest NULL or 0): allocated, see store_kind_spec_free. */
	char *host;	 /* a TCP address, or NULL */
	char *path;	 /* a unix socket, or NULL */
	char *user;	 /* ACL user, or NULL */
	char *pass;	 /* password, or NULL */
	int port, db;	 /* port 6379 unless given */
	char where[160]; /* for logs: host:port or the socket path, never the password */
};

/*
 * store_kind_spec_parse - the store parameter spec: "lmdb" (or NULL or
 * empty), "redis://[[user]:password@]host[:port][/db]",
 * "redis:///path/to/socket[?db=N]" or "unix:/path/to/socket[?db=N]".
 * Returns 0 with sp filled in (free it with store_kind_spec_free), or -1
 * with a message in err and nothing left allocated.
 */
int store_kind_spec_parse(const char *spec, struct store_spec *sp, char *err, size_t errsz);

/* store_kind_spec_free - free what store_kind_spec_parse allocated in sp (idempotent). */
void store_kind_spec_free(struct store_spec *sp);

#endif
