/*
 * store_redis.c - the shared store: Redis, used by several MX hosts at
 * once, with the embedded LMDB store as a local fallback. This file is
 * the backend's entry (store_ops.h): lookups, writes, listings, messages,
 * open and close. The connections and the fallback are in redislink.c,
 * the cache and the queued writes in redislocal.c, the formats in Redis
 * in redisfmt.c; the state they share is in store_redis.h.
 *
 * Layout in Redis. Each record is one string key "mxg:KIND:KEY" holding
 * "1 FIRST LAST EXPIRES COUNT" (format version, then decimal fields), with
 * a Redis expiry set from EXPIRES, so expiry is Redis' job. Readable with
 * redis-cli, and about as small as a hash would be big.
 *
 * store_list and store_del (the control socket) use a blocking connection
 * (redislink.c), with a short timeout: the control socket's interface
 * is synchronous, and making it asynchronous is a larger change than a
 * bounded wait on an operator's command. It is used only while the main
 * connection is healthy, so a dead Redis never costs the loop a wait.
 *
 * Lookups never wait longer than store_timeout: each has a timer; when it
 * fires first, the lookup is answered from the local side (the LMDB file,
 * which receives every write too, and a bounded FIFO cache of the records
 * Redis gave us), and counted. A late answer still refreshes the cache.
 * Answers are always delivered from the request's own timer event, never
 * from inside a hiredis callback, so a caller may close the store from its
 * callback.
 *
 * During a fallback (redislink.c) writes go to LMDB and to a bounded queue
 * of keys (redislocal.c), replayed when Redis is back.
 *
 * What it does not do: merge. A replayed write replaces what another host
 * wrote to the same key during the outage (last writer wins); for soft
 * state like greylist triplets that costs at most one extra retry.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "redisfmt.h"
#include "redislink.h"
#include "redislocal.h"
#include "store.h"
#include "store_ops.h"
#include "store_redis.h"

#define SLOW_AFTER 3	      /* lookups timed out in a row before a fallback */
#define QUEUE_MIN 1000	      /* the write queue holds at least this many */
#define LIST_DEADLINE_MS 2000 /* a whole store_list through Redis */
#define CACHE_BUCKETS_MAX (1 << 20)

enum rreq_state { RQ_WAIT, RQ_READY, RQ_DONE };

/* A lookup: waiting for Redis (timer armed), answered (timer fired at once), done. */
struct rreq {
	struct store_req head; /* first: store_cancel() finds rreq_cancel */
	TAILQ_ENTRY(rreq) link;
	struct rstore *r;
	store_get_cb cb;
	void *arg;
	struct event *ev;
	enum rreq_state state;
	int inflight;	/* hiredis holds it as privdata */
	int delivering; /* its callback is running */
	int found;
	struct store_rec rec;
	enum store_kind kind;
	char key[];
};

static void rreq_cancel(struct store_req *head);

/* ---- Lookups. ---- */

static void rreq_free(struct rreq *q)
{
	TAILQ_REMOVE(&q->r->reqs, q, link);
	event_free(q->ev);
	free(q);
}

/* rreq_fire - the timer: a timeout (answer locally), or the delivery of an answer. */
static void rreq_fire(evutil_socket_t fd, short what, void *arg)
{
	struct rreq *q = arg;
	struct rstore *r = q->r;
	int alive = 1;

	if (q->state == RQ_WAIT) {
		r->timeouts++;
		q->found = redislocal_lookup(r, q->kind, q->key, &q->rec);
		if (++r->slow_run >= SLOW_AFTER && r->up) {
			char why[96];

			snprintf(why, sizeof(why), "%d lookups in a row over %dms", r->slow_run,
				 r->timeout_ms);
			redislink_fallback_begin(r, why);
		}
	}
	q->state = RQ_DONE;
	q->delivering = 1;
	r->alive = &alive;
	q->cb(q->found, q->found == 1 ? &q->rec : NULL, q->arg);
	if (!alive) {
		/* The store was closed from the callback and left q to us. */
		event_free(q->ev);
		free(q);
		return;
	}
	r->alive = NULL;
	q->delivering = 0;
	if (!q->inflight)
		rreq_free(q);
}

/* rreq_reply - Redis answered a GET (reply NULL: the connection went away). */
static void rreq_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rreq *q = privdata;
	struct rstore *r = q->r;
	redisReply *rep = reply;
	struct store_rec rec;
	int found = -2;

	q->inflight = 0;
	r->inflight--;
	if (r->closing) {
		/* store_close frees the rest; one being delivered is freed by rreq_fire. */
		if (!q->delivering)
			rreq_free(q);
		return;
	}
	if (rep != NULL && rep->type == REDIS_REPLY_NIL)
		found = 0;
	else if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
		int ok = redisfmt_rec_parse(rep->str, rep->len, &rec) == 0;

		found = ok && rec.expires > time(NULL);
		if (!ok && time(NULL) - r->bad_logged >= 60) {
			/* Planted or damaged: skipped (looked up as absent), logged. */
			char esc[160];

			log_warn("store: redis %s: bad record for key \"%s\" skipped", r->where,
				 log_escape(esc, sizeof(esc), q->key, strlen(q->key)));
			r->bad_logged = time(NULL);
		}
		if (found)
			redislocal_cache_put(r, q->kind, q->key, &rec);
		else
			redislocal_cache_del(r, q->kind, q->key);
	}
	if (q->state == RQ_WAIT) {
		event_del(q->ev);
		if (found == -2) {
			q->found = redislocal_lookup(r, q->kind, q->key, &q->rec);
		} else {
			r->slow_run = 0;
			q->found = found;
			if (found)
				q->rec = rec;
		}
		q->state = RQ_READY;
		event_active(q->ev, EV_TIMEOUT, 0);
	} else if (q->state == RQ_DONE && !q->delivering) {
		rreq_free(q);
	}
}

static struct store_req *redis_get(void *b, enum store_kind kind, const char *key, store_get_cb cb,
				   void *arg)
{
	struct rstore *r = b;
	size_t len;
	struct rreq *q;

	if ((unsigned)kind >= STORE_NKINDS || !store_kind_key_valid(key))
		return NULL;
	len = strlen(key);
	if ((q = calloc(1, sizeof(*q) + len + 1)) == NULL)
		return NULL;
	if ((q->ev = evtimer_new(r->base, rreq_fire, q)) == NULL) {
		free(q);
		return NULL;
	}
	q->head.cancel = rreq_cancel;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->kind = kind;
	memcpy(q->key, key, len + 1);
	TAILQ_INSERT_TAIL(&r->reqs, q, link);
	if (r->up && redisAsyncCommand(r->ac, rreq_reply, q, "GET mxg:%s:%s", store_kind_name(kind),
				       key) == REDIS_OK) {
		struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};

		q->inflight = 1;
		q->state = RQ_WAIT;
		r->inflight++;
		evtimer_add(q->ev, &tv);
		if (r->inflight > INFLIGHT_MAX)
			redislink_fallback_begin(r, "too many commands in flight");
	} else {
		q->found = redislocal_lookup(r, kind, key, &q->rec);
		q->state = RQ_READY;
		event_active(q->ev, EV_TIMEOUT, 0);
	}
	return &q->head;
}

static void rreq_cancel(struct store_req *head)
{
	struct rreq *q = (struct rreq *)head;

	if (q->delivering || q->state == RQ_DONE)
		return;
	event_del(q->ev);
	q->state = RQ_DONE;
	if (!q->inflight)
		rreq_free(q);
}

static int redis_put(void *b, enum store_kind kind, const char *key, const struct store_rec *rec)
{
	struct rstore *r = b;
	struct rwrite *w;
	int local;

	if ((unsigned)kind >= STORE_NKINDS || !store_kind_key_valid(key))
		return -1;
	local = store_lmdb_ops.put(r->local, kind, key, rec);
	if (redislocal_cache_find(r, kind, key) != NULL)
		redislocal_cache_put(r, kind, key, rec);
	if ((w = redislocal_write_new(r, kind, key)) == NULL)
		return local;
	if (!r->up) {
		/* The replay reads LMDB; if LMDB failed, the record is lost for Redis. */
		if (local < 0) {
			free(w);
			return -1;
		}
		redislocal_enqueue(r, w);
		return 0;
	}
	return redislink_send_rec(r, w, rec) == 0 ? 0 : local;
}

static int redis_del(void *b, enum store_kind kind, const char *key)
{
	struct rstore *r = b;
	redisContext *c;
	redisReply *rep;
	struct rwrite *w;
	int local, remote = -1;

	if ((unsigned)kind >= STORE_NKINDS || !store_kind_key_valid(key))
		return -1;
	local = store_lmdb_ops.del(r->local, kind, key);
	redislocal_cache_del(r, kind, key);
	if ((c = redislink_sync(r)) != NULL) {
		rep = redislink_sync_cmd(c, "DEL mxg:%s:%s", store_kind_name(kind), key);
		if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
			remote = rep->integer > 0;
		if (rep != NULL)
			freeReplyObject(rep);
		else
			redislink_sync_drop(r);
	}
	/* Not done in Redis: done when it comes back (LMDB no longer has it: DEL). */
	if (remote < 0 && (w = redislocal_write_new(r, kind, key)) != NULL)
		redislocal_enqueue(r, w);
	if (remote > 0)
		return 1;
	return local;
}

struct litem {
	char *key;
	struct store_rec rec;
};

static int litem_cmp(const void *a, const void *b)
{
	return strcmp(((const struct litem *)a)->key, ((const struct litem *)b)->key);
}

/*
 * list_remote - every record of kind in Redis, sorted, in *items. SCAN,
 * then MGET per batch; bounded by LIST_DEADLINE_MS. Returns the number,
 * or -1 (nothing left allocated).
 */
static long list_remote(struct rstore *r, enum store_kind kind, struct litem **items)
{
	char pattern[32], cursor[32] = "0";
	size_t prefix, cap = 0;
	int64_t deadline = mono_ms() + LIST_DEADLINE_MS;
	struct litem *v = NULL;
	redisContext *c;
	redisReply *rep = NULL, *vals = NULL;
	long n = 0;

	if ((c = redislink_sync(r)) == NULL)
		return -1;
	prefix = (size_t)snprintf(pattern, sizeof(pattern), "mxg:%s:", store_kind_name(kind));
	do {
		const char **argv;
		size_t nk;

		rep = redislink_sync_cmd(c, "SCAN %s MATCH %s* COUNT 1000", cursor, pattern);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[0]->len >= sizeof(cursor) ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY)
			goto fail;
		memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
		nk = rep->element[1]->elements;
		if (nk > 0) {
			if ((argv = calloc(nk + 1, sizeof(*argv))) == NULL)
				goto fail;
			argv[0] = "MGET";
			for (size_t i = 0; i < nk; i++) {
				if (rep->element[1]->element[i]->type != REDIS_REPLY_STRING) {
					free(argv);
					goto fail;
				}
				argv[i + 1] = rep->element[1]->element[i]->str;
			}
			vals = redisCommandArgv(c, (int)nk + 1, argv, NULL);
			free(argv);
			if (vals == NULL || vals->type != REDIS_REPLY_ARRAY || vals->elements != nk)
				goto fail;
			for (size_t i = 0; i < nk; i++) {
				redisReply *k = rep->element[1]->element[i],
					   *val = vals->element[i];
				struct store_rec rec;

				if (val->type != REDIS_REPLY_STRING || k->len <= prefix ||
				    redisfmt_rec_parse(val->str, val->len, &rec) < 0 ||
				    rec.expires <= time(NULL))
					continue;
				if ((size_t)n == cap) {
					struct litem *nv;

					cap = cap ? 2 * cap : 256;
					if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
						goto fail;
					v = nv;
				}
				/* Bad keys reach store.c's check, which names them (see
				 * store_ops.h). */
				size_t klen = k->len - prefix < STORE_LIST_KEYSZ - 1
						  ? k->len - prefix
						  : STORE_LIST_KEYSZ - 1;

				if ((v[n].key = malloc(klen + 1)) == NULL)
					goto fail;
				memcpy(v[n].key, k->str + prefix, klen);
				v[n].key[klen] = '\0';
				for (size_t j = 0; j < klen; j++)
					if (v[n].key[j] == '\0')
						v[n].key[j] = 0x7f;
				v[n++].rec = rec;
			}
			freeReplyObject(vals);
			vals = NULL;
		}
		freeReplyObject(rep);
		rep = NULL;
		if (mono_ms() > deadline) {
			log_warn("store: redis %s: listing %s took over %dms, showing the local "
				 "records",
				 r->where, store_kind_name(kind), LIST_DEADLINE_MS);
			goto fail;
		}
	} while (strcmp(cursor, "0") != 0);
	if (n > 0)
		qsort(v, (size_t)n, sizeof(*v), litem_cmp);
	*items = v;
	return n;
fail:
	/* Whatever went wrong, the connection may be out of step: start afresh next time. */
	redislink_sync_drop(r);
	if (rep != NULL)
		freeReplyObject(rep);
	if (vals != NULL)
		freeReplyObject(vals);
	while (n > 0)
		free(v[--n].key);
	free(v);
	return -1;
}

/*
 * With Redis up, the list is Redis' (every host's records); otherwise, or
 * if Redis does not answer in time, this host's own.
 */
static int redis_list(void *b, enum store_kind kind, store_list_fn fn, void *arg)
{
	struct rstore *r = b;
	struct litem *items = NULL;
	long n, i;
	int visited = 0;

	if ((unsigned)kind >= STORE_NKINDS)
		return -1;
	if ((n = list_remote(r, kind, &items)) < 0)
		return store_lmdb_ops.list(r->local, kind, fn, arg);
	for (i = 0; i < n; i++) {
		visited++;
		if (fn(items[i].key, &items[i].rec, arg) != 0)
			break;
	}
	for (i = 0; i < n; i++)
		free(items[i].key);
	free(items);
	return visited;
}

/* The local file's count: counting a kind in Redis means walking the whole keyspace. */
static long redis_count(void *b, enum store_kind kind)
{
	struct rstore *r = b;

	return store_lmdb_ops.count(r->local, kind);
}

/* ---- Messages. ---- */

static int redis_publish(void *b, const char *msg)
{
	struct rstore *r = b;
	size_t len = strnlen(msg, MSG_MAX + 1);
	char line[sizeof(r->id) + MSG_MAX + 2];

	if (len == 0 || len > MSG_MAX || strpbrk(msg, "\r\n") != NULL)
		return -1;
	if (!r->up)
		return -1;
	/* One argument: spaces in a hiredis format separate arguments, those in %s do not. */
	snprintf(line, sizeof(line), "%s %s", r->id, msg);
	return redisAsyncCommand(r->ac, NULL, NULL, "PUBLISH " CHANNEL " %s", line) == REDIS_OK
		   ? 0
		   : -1;
}

static void redis_subscribe(void *b, store_msg_fn cb, void *arg)
{
	struct rstore *r = b;

	r->msg_cb = cb;
	r->msg_arg = arg;
}

/* ---- Open, status, close. ---- */

static void redis_status(void *b, struct store_status *st)
{
	struct rstore *r = b;

	st->backend = "redis";
	st->connected = r->ready;
	st->fallback = !r->up;
	st->fallback_since = r->fallback_since;
	st->fallbacks = r->fallbacks;
	st->timeouts = r->timeouts;
	st->replay_pending = r->nqueue;
	st->replay_dropped = r->dropped;
	st->cached = r->ncache;
}

static void redis_set_timeout(void *b, int timeout_ms)
{
	struct rstore *r = b;

	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 50;
}

static void redis_close(void *b)
{
	struct rstore *r = b;
	struct rreq *q;
	redisAsyncContext *ac;

	if (r == NULL)
		return;
	r->closing = 1;
	if (r->alive != NULL)
		*r->alive = 0;
	/* Freeing a connection answers its pending commands with NULL: see the callbacks. */
	if ((ac = r->ac) != NULL) {
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	if ((ac = r->sub) != NULL) {
		r->sub = NULL;
		redisAsyncFree(ac);
	}
	redislink_sync_drop(r);
	while ((q = TAILQ_FIRST(&r->reqs)) != NULL) {
		TAILQ_REMOVE(&r->reqs, q, link);
		if (q->delivering)
			continue; /* rreq_fire frees it */
		event_free(q->ev);
		free(q);
	}
	redislocal_free(r);
	if (r->tick != NULL)
		event_free(r->tick);
	if (r->replay != NULL)
		event_free(r->replay);
	if (r->local != NULL)
		store_lmdb_ops.close(r->local);
	free(r->host);
	free(r->path);
	free(r->user);
	free(r->pass);
	free(r);
}

void *store_redis_open(struct event_base *base, struct store_spec *spec, const char *state_dir,
		       int timeout_ms, int cache_size, char *err, size_t errsz)
{
	static const struct timeval second = {1, 0};
	struct rstore *r = calloc(1, sizeof(*r));
	static unsigned instances;
	char host[64] = "";
	unsigned rnd;

	if (r == NULL) {
		store_kind_spec_free(spec);
		snprintf(err, errsz, "store: out of memory");
		return NULL;
	}
	/* Where Redis is: the strings are ours from now on. */
	r->host = spec->host;
	r->path = spec->path;
	r->user = spec->user;
	r->pass = spec->pass;
	spec->host = spec->path = spec->user = spec->pass = NULL;
	r->port = spec->port;
	r->db = spec->db;
	snprintf(r->where, sizeof(r->where), "%s", spec->where);
	TAILQ_INIT(&r->reqs);
	TAILQ_INIT(&r->queue);
	TAILQ_INIT(&r->cfifo);
	r->base = base;
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 50;
	r->cache_max = cache_size > 0 ? (size_t)cache_size : 0;
	r->queue_max = r->cache_max > QUEUE_MIN ? r->cache_max : QUEUE_MIN;
	if (r->cache_max > 0) {
		for (r->nbuckets = 1024;
		     r->nbuckets < r->cache_max && r->nbuckets < CACHE_BUCKETS_MAX;)
			r->nbuckets *= 2;
		if ((r->buckets = calloc(r->nbuckets, sizeof(*r->buckets))) == NULL) {
			snprintf(err, errsz, "store: out of memory");
			goto fail;
		}
	}
	if ((r->local = store_lmdb_open(base, state_dir, err, errsz)) == NULL)
		goto fail;
	/* Unique among the instances sharing Redis: host, process, and a random part. */
	gethostname(host, sizeof(host) - 1);
	for (char *c = host; *c; c++)
		if (!isgraph((unsigned char)*c))
			*c = '_';
	/* Two stores in one process (tests) differ by the counter. */
	rnd = (unsigned)(wall_ms() ^ (getpid() << 16) ^ (++instances << 8)) * 2654435761u;
	snprintf(r->id, sizeof(r->id), "%s/%ld/%08x", host[0] ? host : "mxguard", (long)getpid(),
		 rnd);
	r->tick = event_new(base, -1, EV_PERSIST, redislink_tick, r);
	r->replay = event_new(base, -1, 0, redislink_replay, r);
	if (r->tick == NULL || r->replay == NULL || event_add(r->tick, &second) < 0) {
		snprintf(err, errsz, "store: cannot create events");
		goto fail;
	}
	/* Until the first PING comes back, decisions are local (not logged unless it fails). */
	r->fallback = 1;
	r->fallback_since = time(NULL);
	redislink_connect(r);
	redislink_sub_connect(r);
	return r;
fail:
	redis_close(r);
	return NULL;
}

const struct store_ops store_redis_ops = {
    .name = "redis",
    .get = redis_get,
    .put = redis_put,
    .del = redis_del,
    .list = redis_list,
    .count = redis_count,
    .publish = redis_publish,
    .subscribe = redis_subscribe,
    .status = redis_status,
    .set_timeout = redis_set_timeout,
    .close = redis_close,
};
