/*
 * store.h - mxguard's durable state: tarpit records, greylist triplets and
 * auto-whitelist counts, behind one interface with interchangeable
 * backends (store_lmdb.c today; a Redis backend will follow).
 *
 * Lookups are asynchronous by contract: the result always arrives through
 * the callback from the event loop, never before store_get() returns, so
 * that a backend on the network fits the same interface. Writes are
 * fire-and-forget. Every record carries its own expiry time; expired
 * records are never returned and are removed in the background a few at a
 * time, so expiry never stalls the loop.
 */
#ifndef MXG_STORE_H
#define MXG_STORE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;
struct store_req;

enum store_kind { STORE_TARPIT, STORE_GREY, STORE_AWL, STORE_WHITE, STORE_NKINDS };

/*
 * store_kind_name - "tarpit", "grey", "awl", "white" (entries an operator
 * added with mxguardctl); store_kind_parse: the reverse, -1 if unknown.
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

/*
 * store_open - open the embedded store in state_dir (created if missing).
 * Returns NULL with a message in err.
 */
struct store *store_open(struct event_base *base, const char *state_dir, char *err,
			 size_t errsz);

/*
 * store_get - look up kind/key. cb gets found = 1 with the record, 0 when
 * there is none (or it has expired), -1 on a store error (callers then
 * decide as if in doubt: 4xx, never 5xx). Returns a request that the
 * caller may cancel until cb has run, or NULL when the request could not
 * even be queued (cb will not run).
 */
typedef void (*store_get_cb)(int found, const struct store_rec *rec, void *arg);
struct store_req *store_get(struct store *s, enum store_kind kind, const char *key,
			    store_get_cb cb, void *arg);

/* store_cancel - the callback of req will not run. */
void store_cancel(struct store_req *req);

/* store_put - create or replace kind/key. Returns 0, or -1 on error. */
int store_put(struct store *s, enum store_kind kind, const char *key,
	      const struct store_rec *rec);

/* store_del - remove kind/key. Returns 1 if it existed, 0 if not, -1 on error. */
int store_del(struct store *s, enum store_kind kind, const char *key);

/*
 * store_list - call fn for every unexpired record of kind, in key order,
 * synchronously (for the control socket). fn returns 0 to go on, else the
 * walk stops. Returns the number of records visited, or -1 on error.
 */
int store_list(struct store *s, enum store_kind kind,
	       int (*fn)(const char *key, const struct store_rec *rec, void *arg), void *arg);

/* store_count - unexpired and expired-but-not-yet-removed records of kind. */
long store_count(struct store *s, enum store_kind kind);

/* store_close - flush, close, free; sets *sp to NULL. */
void store_close(struct store **sp);

#endif
