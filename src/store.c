/*
 * store.c - the store interface (store.h): names of record kinds, and the
 * dispatcher that hands every call to the backend chosen by the store
 * parameter: the embedded LMDB file (store_lmdb.c) or Redis shared by
 * several MX hosts (store_redis.c), through an ops table (store_ops.h).
 *
 * Records read back in bulk (store_list: the white entries and blocks
 * restored at start, the control socket's listings) come from a file or
 * a Redis that anybody with access to it can write: each is checked here
 * before a caller sees it, and a bad one is logged (escaped) and skipped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_ops.h"

struct store {
	const struct store_ops *ops;
	void *b; /* the backend's own state */
};

static const char *const store_kinds[STORE_NKINDS] = {"tarpit", "grey", "awl", "white", "block"};

const char *store_kind_name(enum store_kind kind)
{
	return kind < STORE_NKINDS ? store_kinds[kind] : "?";
}

int store_kind_parse(const char *name)
{
	for (int i = 0; i < STORE_NKINDS; i++)
		if (strcmp(name, store_kinds[i]) == 0)
			return i;
	return -1;
}

/* Keys end up in control socket lines and Redis key names: printable only. */
int store_key_valid(const char *key)
{
	size_t len = strnlen(key, STORE_KEY_MAX + 1);

	if (len == 0 || len > STORE_KEY_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return 0;
	return 1;
}

struct store *store_open(struct event_base *base, const char *spec, const char *state_dir,
			 int timeout_ms, int cache_size, char *err, size_t errsz)
{
	struct store *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errsz, "store: out of memory");
		return NULL;
	}
	if (spec == NULL || spec[0] == '\0' || strcmp(spec, "lmdb") == 0) {
		s->ops = &store_lmdb_ops;
		s->b = store_lmdb_open(base, state_dir, err, errsz);
	} else if (strncmp(spec, "redis://", 8) == 0 || strncmp(spec, "unix:", 5) == 0) {
		s->ops = &store_redis_ops;
		s->b = store_redis_open(base, spec, state_dir, timeout_ms, cache_size, err, errsz);
	} else {
		snprintf(err, errsz,
			 "store: unknown store '%.100s' (lmdb, redis://... or unix:...)", spec);
	}
	if (s->b == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

struct store_req *store_get(struct store *s, enum store_kind kind, const char *key, store_get_cb cb,
			    void *arg)
{
	return s->ops->get(s->b, kind, key, cb, arg);
}

void store_cancel(struct store_req *req)
{
	if (req != NULL)
		req->cancel(req);
}

int store_put(struct store *s, enum store_kind kind, const char *key, const struct store_rec *rec)
{
	return s->ops->put(s->b, kind, key, rec);
}

int store_del(struct store *s, enum store_kind kind, const char *key)
{
	return s->ops->del(s->b, kind, key);
}

int store_rec_valid(const struct store_rec *rec)
{
	/* Times are unix seconds after 1970 and before the year 10000. */
	const int64_t tmax = INT64_C(253402300800);

	return rec->first >= 0 && rec->first < tmax && rec->last >= 0 && rec->last < tmax &&
	       rec->expires > 0;
}

struct store_check {
	enum store_kind kind;
	store_list_fn fn;
	void *arg;
	int skipped;
};

/* store_check_cb - pass a valid record on; log and skip any other. */
static int store_check_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct store_check *c = arg;
	char esc[160];

	if (store_key_valid(key) && store_rec_valid(rec))
		return c->fn(key, rec, c->arg);
	c->skipped++;
	/* A planted store can hold any number of them: a line each for the first few. */
	if (c->skipped <= 10)
		log_warn("store: bad %s record skipped: key=\"%s\" first=%lld last=%lld "
			 "expires=%lld",
			 store_kind_name(c->kind),
			 log_escape(esc, sizeof(esc), key, strnlen(key, STORE_KEY_MAX + 1)),
			 (long long)rec->first, (long long)rec->last, (long long)rec->expires);
	return 0;
}

int store_list(struct store *s, enum store_kind kind, store_list_fn fn, void *arg)
{
	struct store_check c = {kind, fn, arg, 0};
	int n = s->ops->list(s->b, kind, store_check_cb, &c);

	if (c.skipped > 10)
		log_warn("store: %d bad %s records skipped in all", c.skipped,
			 store_kind_name(kind));
	return n < 0 ? n : n - c.skipped;
}

long store_count(struct store *s, enum store_kind kind)
{
	return s->ops->count(s->b, kind);
}

int store_publish(struct store *s, const char *msg)
{
	return s->ops->publish(s->b, msg);
}

void store_subscribe(struct store *s, store_msg_fn cb, void *arg)
{
	s->ops->subscribe(s->b, cb, arg);
}

void store_status(struct store *s, struct store_status *st)
{
	memset(st, 0, sizeof(*st));
	s->ops->status(s->b, st);
}

void store_set_timeout(struct store *s, int timeout_ms)
{
	if (s->ops->set_timeout != NULL)
		s->ops->set_timeout(s->b, timeout_ms);
}

void store_close(struct store **sp)
{
	struct store *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	s->ops->close(s->b);
	free(s);
}
