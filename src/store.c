/*
 * store.c - the store interface (store.h): the dispatcher that hands every
 * call to the backend chosen by the store parameter (parsed by
 * store_kind.c, with the names of the record kinds): the embedded LMDB
 * file (store_lmdb.c) or Redis shared by several MX hosts (store_redis.c),
 * through an ops table (store_ops.h).
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
	/* The other workers of this daemon (store_siblings), for the embedded store. */
	int (*sib_post)(const char *msg, void *arg);
	void *sib_arg;
	store_msg_fn sub_cb; /* what store_subscribe set, for their messages */
	void *sub_arg;
	int sibling; /* a sibling's line is being delivered */
};

struct store *store_open(struct event_base *base, const char *spec, const char *state_dir,
			 int timeout_ms, int cache_size, char *err, size_t errsz)
{
	struct store *s = calloc(1, sizeof(*s));
	struct store_spec sp;

	if (s == NULL) {
		snprintf(err, errsz, "store: out of memory");
		return NULL;
	}
	if (store_kind_spec_parse(spec, &sp, err, errsz) < 0) {
		free(s);
		return NULL;
	}
	if (sp.backend == STORE_LMDB) {
		s->ops = &store_lmdb_ops;
		s->b = store_lmdb_open(base, state_dir, err, errsz);
	} else {
		s->ops = &store_redis_ops;
		s->b = store_redis_open(base, &sp, state_dir, timeout_ms, cache_size, err, errsz);
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

	if (store_kind_key_valid(key) && store_kind_rec_valid(rec))
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
	/*
	 * The workers of one daemon sharing the embedded file are its other
	 * instances. On Redis each worker is an instance of its own already.
	 */
	if (s->sib_post != NULL && s->ops == &store_lmdb_ops)
		s->sib_post(msg, s->sib_arg);
	return s->ops->publish(s->b, msg);
}

void store_subscribe(struct store *s, store_msg_fn cb, void *arg)
{
	s->sub_cb = cb;
	s->sub_arg = arg;
	s->ops->subscribe(s->b, cb, arg);
}

void store_siblings(struct store *s, int (*post)(const char *msg, void *arg), void *arg)
{
	s->sib_post = post;
	s->sib_arg = arg;
}

void store_sibling_msg(struct store *s, const char *msg)
{
	if (s->sub_cb != NULL && s->ops == &store_lmdb_ops) {
		s->sibling = 1;
		s->sub_cb(msg, s->sub_arg);
		s->sibling = 0;
	}
}

int store_from_sibling(const struct store *s)
{
	return s->sibling;
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
