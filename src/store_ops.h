/*
 * store_ops.h - what store.c (the dispatcher) expects of a store backend,
 * private to store*.c. Callers use store.h only.
 *
 * A backend is an ops table plus an opaque pointer. Its lookup requests
 * start with a struct store_req, so store_cancel() finds the backend from
 * the request alone.
 */
#ifndef MXG_STORE_OPS_H
#define MXG_STORE_OPS_H

#include "store.h"

/* The head of every backend's lookup request. */
struct store_req {
	void (*cancel)(struct store_req *req);
};

typedef int (*store_list_fn)(const char *key, const struct store_rec *rec, void *arg);
typedef void (*store_msg_fn)(const char *msg, void *arg);

struct store_ops {
	const char *name;
	struct store_req *(*get)(void *b, enum store_kind kind, const char *key, store_get_cb cb,
				 void *arg);
	int (*put)(void *b, enum store_kind kind, const char *key, const struct store_rec *rec);
	int (*del)(void *b, enum store_kind kind, const char *key);
	int (*list)(void *b, enum store_kind kind, store_list_fn fn, void *arg);
	long (*count)(void *b, enum store_kind kind);
	int (*publish)(void *b, const char *msg);
	void (*subscribe)(void *b, store_msg_fn cb, void *arg);
	void (*status)(void *b, struct store_status *st);
	void (*set_timeout)(void *b, int timeout_ms); /* NULL: no timeout to set */
	void (*close)(void *b);
};

/*
 * A backend's list() passes every record it can decode, keys included
 * that store_kind_key_valid() refuses: store.c logs and skips those. A key
 * longer than STORE_KEY_MAX is passed as its first STORE_KEY_MAX + 1
 * bytes, and a NUL byte inside a key as 0x7f, so that the check sees them.
 */
#define STORE_LIST_KEYSZ (STORE_KEY_MAX + 2)

/* The embedded backend (store_lmdb.c). */
extern const struct store_ops store_lmdb_ops;
void *store_lmdb_open(struct event_base *base, const char *state_dir, char *err, size_t errsz);
/* store_lmdb_lookup - synchronous lookup: 1 and rec, 0 for none, -1 on error. */
int store_lmdb_lookup(void *b, enum store_kind kind, const char *key, struct store_rec *rec);

/*
 * A record as LMDB holds it: STORE_LMDB_VALSZ bytes, a version byte, then
 * first, last, expires (64 bits) and count (32 bits), little-endian.
 * store_lmdb_rec_encode writes rec into p[0..STORE_LMDB_VALSZ);
 * store_lmdb_rec_decode reads one back from data[0..len), which may be
 * anything the file holds: it returns 0 and fills rec, or -1 (another
 * size or version) with rec untouched. Neither checks that the times make
 * sense (store_kind_rec_valid does).
 */
#define STORE_LMDB_VALSZ (1 + 3 * 8 + 4)
void store_lmdb_rec_encode(const struct store_rec *rec, unsigned char *p);
int store_lmdb_rec_decode(const void *data, size_t len, struct store_rec *rec);

/*
 * The shared backend (store_redis.c). store_redis_open takes the parsed
 * redis spec (store_kind_spec_parse; its strings become the store's, or
 * are freed on failure).
 */
extern const struct store_ops store_redis_ops;
void *store_redis_open(struct event_base *base, struct store_spec *spec, const char *state_dir,
		       int timeout_ms, int cache_size, char *err, size_t errsz);

#endif
