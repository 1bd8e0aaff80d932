/*
 * store.h - mxguard's durable state: tarpit records, greylist triplets and
 * auto-whitelist counts, operator whitelist entries and dynamic blocks,
 * behind one interface with interchangeable backends: the embedded LMDB
 * file (store_lmdb.c) and Redis shared by several MX hosts (store_redis.c).
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

/* The record kinds, struct store_rec and STORE_KEY_MAX. */
#include "store_kind.h"

struct event_base;
struct store;
struct store_req;

/*
 * store_open - open the store that spec names: "lmdb" (or empty), the
 * embedded file in state_dir (created if missing); or Redis,
 * "redis://[:password@]host[:port][/db]" or "redis:///path/to/socket[?db=N]"
 * ("unix:/path[?db=N]" is the same), with the embedded file in state_dir as
 * its local fallback. timeout_ms bounds how long a Redis lookup may take
 * before it is answered locally; cache_size bounds the records read from
 * Redis that are remembered for an outage, and the writes queued during
 * one. Returns NULL with a message in err.
 */
struct store *store_open(struct event_base *base, const char *spec, const char *state_dir,
			 int timeout_ms, int cache_size, char *err, size_t errsz);

/*
 * store_get - look up kind/key. cb gets found = 1 with the record, 0 when
 * there is none (or it has expired), -1 on a store error (callers then
 * decide as if in doubt: 4xx, never 5xx). Returns a request that the
 * caller may cancel until cb has run, or NULL when the request could not
 * even be queued (cb will not run).
 */
typedef void (*store_get_cb)(int found, const struct store_rec *rec, void *arg);
struct store_req *store_get(struct store *s, enum store_kind kind, const char *key, store_get_cb cb,
			    void *arg);

/* store_cancel - the callback of req will not run. */
void store_cancel(struct store_req *req);

/* store_put - create or replace kind/key. Returns 0, or -1 on error. */
int store_put(struct store *s, enum store_kind kind, const char *key, const struct store_rec *rec);

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

/*
 * Messages between the mxguard instances that share a store (blocks and
 * attack state). store_publish sends one line (at most 512 bytes, no CR or
 * LF) to every other instance; with the embedded store there are none and
 * it does nothing. store_subscribe sets the callback that receives the
 * lines other instances publish (never our own); it runs from the event
 * loop and must not close the store. store_publish returns 0 when the line
 * was sent (or there is nobody to send it to), -1 when it could not be
 * (Redis unreachable: it is not queued, such news goes stale).
 */
int store_publish(struct store *s, const char *msg);
void store_subscribe(struct store *s, void (*cb)(const char *msg, void *arg), void *arg);

/*
 * store_siblings - the other workers of this daemon (workers > 1): with
 * the embedded store they are the instances that share it, so
 * store_publish also hands each line to post(msg, arg), and a line they
 * published is given to store_sibling_msg, which passes it to the
 * store_subscribe callback. With Redis both do nothing: every worker is an
 * instance of its own there.
 */
void store_siblings(struct store *s, int (*post)(const char *msg, void *arg), void *arg);
void store_sibling_msg(struct store *s, const char *msg);

/*
 * store_from_sibling - is the line the subscriber is handling now from
 * another worker of this daemon (not from another host)? What such a line
 * reports was counted, and pushed to the firewall, by that worker.
 */
int store_from_sibling(const struct store *s);

/* What mxguardctl status and the metrics show about the store. */
struct store_status {
	const char *backend;	 /* "lmdb" or "redis" */
	int connected;		 /* redis: the connection is up */
	int fallback;		 /* redis: decisions are local right now */
	int64_t fallback_since;	 /* unix time the current fallback began, 0 if none */
	uint64_t fallbacks;	 /* fallbacks so far */
	uint64_t timeouts;	 /* lookups answered locally after store_timeout */
	uint64_t replay_pending; /* writes waiting for Redis to come back */
	uint64_t replay_dropped; /* queued writes dropped (queue full), oldest first */
	uint64_t cached;	 /* records read from Redis remembered for an outage */
};
void store_status(struct store *s, struct store_status *st);

/* store_set_timeout - a new store_timeout (reload); lookups already waiting keep theirs. */
void store_set_timeout(struct store *s, int timeout_ms);

/* store_close - flush, close, free; sets *sp to NULL. */
void store_close(struct store **sp);

#endif
