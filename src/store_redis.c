/*
 * store_redis.c - the shared store: Redis, used by several MX hosts at
 * once, with the embedded LMDB store as a local fallback.
 *
 * Layout in Redis. Each record is one string key "mxg:KIND:KEY" holding
 * "1 FIRST LAST EXPIRES COUNT" (format version, then decimal fields), with
 * a Redis expiry set from EXPIRES, so expiry is Redis' job. Readable with
 * redis-cli, and about as small as a hash would be big.
 *
 * Connections (hiredis 0.14 async API on the daemon's libevent loop):
 * - the main one: GET, SET, DEL, PUBLISH, PING;
 * - the subscriber: SUBSCRIBE mxguard:events (a subscribed connection can
 *   do nothing else). Messages are "INSTANCEID MSG"; our own are ignored.
 * - a blocking one, opened on demand, for store_list and store_del (the
 *   control socket), with a short timeout: the control socket's interface
 *   is synchronous, and making it asynchronous is a larger change than a
 *   bounded wait on an operator's command. It is used only while the main
 *   connection is healthy, so a dead Redis never costs the loop a wait.
 *
 * Lookups never wait longer than store_timeout: each has a timer; when it
 * fires first, the lookup is answered from the local side (the LMDB file,
 * which receives every write too, and a bounded FIFO cache of the records
 * Redis gave us), and counted. A late answer still refreshes the cache.
 * Answers are always delivered from the request's own timer event, never
 * from inside a hiredis callback, so a caller may close the store from its
 * callback.
 *
 * Fallback. When the connection is lost or cannot be made, when three
 * lookups in a row time out, or when too many commands are in flight, the
 * store decides locally: lookups from the local side, writes to LMDB and
 * to a bounded queue of keys (the oldest dropped and counted). The queue
 * holds keys, not values: a replay sends what LMDB holds for the key at
 * that time (SET, or DEL when it is gone), so repeated writes to one key
 * converge. The start and the end of each fallback are logged once. A
 * connection is retried no more often than every second, backing off to
 * every RECONNECT_MAX seconds; a slow but connected Redis is probed with a
 * PING each second and trusted again when one comes back within
 * store_timeout. Replay goes in batches between other events.
 *
 * What it does not do: merge. A replayed write replaces what another host
 * wrote to the same key during the outage (last writer wins); for soft
 * state like greylist triplets that costs at most one extra retry.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "log.h"
#include "store.h"
#include "store_ops.h"

#define CHANNEL "mxguard:events"
#define MSG_MAX 512
#define SLOW_AFTER 3		/* lookups timed out in a row before a fallback */
#define INFLIGHT_MAX 10000	/* commands awaiting an answer before a fallback */
#define CONNECT_TIMEOUT_MS 1000 /* connect plus handshake */
#define PING_GIVEUP_MS 5000	/* a probe unanswered this long: reconnect */
#define RECONNECT_MAX 5		/* seconds between attempts at most */
#define REPLAY_BATCH 500	/* queued writes sent per round */
#define QUEUE_MIN 1000		/* the write queue holds at least this many */
#define SYNC_TIMEOUT_MS 250	/* the blocking connection, per round trip */
#define LIST_DEADLINE_MS 2000	/* a whole store_list through Redis */
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

/* A write on its way to Redis, or queued until Redis is back. */
struct rwrite {
	TAILQ_ENTRY(rwrite) link;
	struct rstore *r;
	enum store_kind kind;
	char key[];
};
TAILQ_HEAD(rwrites, rwrite);

/* A record Redis gave us, kept for an outage. */
struct centry {
	struct centry *next; /* hash chain */
	TAILQ_ENTRY(centry) fifo;
	uint32_t hash;
	enum store_kind kind;
	struct store_rec rec;
	char key[];
};

struct rstore {
	struct event_base *base;
	void *local; /* the LMDB backend */
	/* Where Redis is. */
	char *host, *path, *user, *pass;
	int port, db;
	char where[160]; /* for logs: host:port or the socket path, never the password */
	int timeout_ms;
	/* The connections. */
	redisAsyncContext *ac, *sub;
	int ready;	      /* ac answered its handshake */
	int up;		      /* ready and fast enough: lookups go to Redis */
	int64_t ac_started;   /* monotonic ms of the current connect */
	int64_t next_connect; /* monotonic ms: no attempt before */
	int64_t next_sub;     /* same for the subscriber */
	int backoff;	      /* seconds before the next attempt */
	int sub_backoff;
	int ping_out; /* a probe is on its way */
	int64_t ping_sent;
	redisContext *sync; /* the blocking connection, on demand */
	uint64_t inflight;  /* gets and writes awaiting an answer */
	int slow_run;	    /* lookups timed out in a row */
	/* The fallback. */
	int fallback, logged;
	time_t bad_logged; /* last warning about a bad record (one a minute) */
	int64_t fallback_since;
	uint64_t fallbacks, timeouts, dropped;
	char why[200];
	struct rwrites queue;
	size_t nqueue, queue_max;
	struct event *tick, *replay;
	/* The cache. */
	struct centry **buckets;
	size_t nbuckets, ncache, cache_max;
	TAILQ_HEAD(, centry) cfifo;
	/* Lookups not yet freed, messages. */
	TAILQ_HEAD(, rreq) reqs;
	store_msg_fn msg_cb;
	void *msg_arg;
	char id[96];
	int *alive;
	int closing;
};

static void rconnect(struct rstore *r);
static void rsub_connect(struct rstore *r);
static void rdrop(struct rstore *r, const char *why);
static void rreq_cancel(struct store_req *head);

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_redis_rec_format(char *buf, size_t bufsz, const struct store_rec *rec)
{
	snprintf(buf, bufsz, "1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu32, rec->first,
		 rec->last, rec->expires, rec->count);
}

/* rec_field - a run of digits at s[*i..len), no sign, within int64; -1 if none. */
static int rec_field(const char *s, size_t len, size_t *i, long long *out)
{
	long long v = 0;
	size_t start = *i;

	for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
		int d = s[*i] - '0';

		if (v > (LLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*i == start)
		return -1;
	*out = v;
	return 0;
}

int store_redis_rec_parse(const char *s, size_t len, struct store_rec *rec)
{
	/*
	 * "1 FIRST LAST EXPIRES COUNT": another farm member (or whoever can
	 * write to Redis) wrote it, so exactly that, digits only, one space
	 * between fields, and plausible times (store_rec_valid).
	 */
	long long v[4];
	size_t i = 2;

	if (len < 2 || s[0] != '1' || s[1] != ' ')
		return -1;
	for (int f = 0; f < 4; f++) {
		if (f > 0 && (i >= len || s[i++] != ' '))
			return -1;
		if (rec_field(s, len, &i, &v[f]) < 0)
			return -1;
	}
	if (i != len || v[3] > UINT32_MAX)
		return -1;
	rec->first = v[0];
	rec->last = v[1];
	rec->expires = v[2];
	rec->count = (uint32_t)v[3];
	return store_rec_valid(rec) ? 0 : -1;
}

/* ---- The cache: records read from Redis, FIFO-bounded. ---- */

static uint32_t cache_hash(enum store_kind kind, const char *key)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

static struct centry **cache_find(struct rstore *r, enum store_kind kind, const char *key)
{
	uint32_t h = cache_hash(kind, key);
	struct centry **pp;

	if (r->buckets == NULL)
		return NULL;
	for (pp = &r->buckets[h & (r->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->kind == kind && strcmp((*pp)->key, key) == 0)
			return pp;
	return NULL;
}

static void cache_unlink(struct rstore *r, struct centry **pp)
{
	struct centry *ce = *pp;

	*pp = ce->next;
	TAILQ_REMOVE(&r->cfifo, ce, fifo);
	r->ncache--;
	free(ce);
}

static void cache_del(struct rstore *r, enum store_kind kind, const char *key)
{
	struct centry **pp = cache_find(r, kind, key);

	if (pp != NULL)
		cache_unlink(r, pp);
}

static void cache_put(struct rstore *r, enum store_kind kind, const char *key,
		      const struct store_rec *rec)
{
	struct centry **pp = cache_find(r, kind, key), *ce;
	size_t len = strlen(key);

	if (r->buckets == NULL)
		return;
	if (pp != NULL) {
		(*pp)->rec = *rec;
		return;
	}
	if (r->ncache >= r->cache_max) {
		ce = TAILQ_FIRST(&r->cfifo);
		cache_unlink(r, cache_find(r, ce->kind, ce->key));
	}
	if ((ce = malloc(sizeof(*ce) + len + 1)) == NULL)
		return;
	ce->hash = cache_hash(kind, key);
	ce->kind = kind;
	ce->rec = *rec;
	memcpy(ce->key, key, len + 1);
	ce->next = r->buckets[ce->hash & (r->nbuckets - 1)];
	r->buckets[ce->hash & (r->nbuckets - 1)] = ce;
	TAILQ_INSERT_TAIL(&r->cfifo, ce, fifo);
	r->ncache++;
}

/*
 * local_lookup - the answer without Redis: the LMDB file (our own writes)
 * and the cache (what Redis told us); the more recently updated wins.
 */
static int local_lookup(struct rstore *r, enum store_kind kind, const char *key,
			struct store_rec *rec)
{
	struct centry **pp = cache_find(r, kind, key);
	int found = store_lmdb_lookup(r->local, kind, key, rec);

	if (pp != NULL && (*pp)->rec.expires > time(NULL) &&
	    (found != 1 || (*pp)->rec.last > rec->last)) {
		*rec = (*pp)->rec;
		return 1;
	}
	return found;
}

/* ---- Fallback bookkeeping. ---- */

static void fallback_begin(struct rstore *r, const char *why)
{
	r->up = 0;
	if (!r->fallback) {
		r->fallback = 1;
		r->fallback_since = time(NULL);
		r->logged = 0;
	}
	if (!r->logged) {
		r->logged = 1;
		r->fallbacks++;
		snprintf(r->why, sizeof(r->why), "%s", why);
		log_warn("store: redis %s unavailable (%s): deciding locally, queueing writes",
			 r->where, why);
	}
}

static void fallback_end(struct rstore *r)
{
	r->up = 1;
	r->slow_run = 0;
	if (r->logged)
		log_info("store: redis %s back after %llds: deciding with redis, replaying %zu "
			 "writes (%llu dropped so far)",
			 r->where, (long long)(time(NULL) - r->fallback_since), r->nqueue,
			 (unsigned long long)r->dropped);
	else
		log_info("store: redis %s connected", r->where);
	r->fallback = 0;
	r->logged = 0;
	r->fallback_since = 0;
	if (r->nqueue > 0)
		event_active(r->replay, EV_TIMEOUT, 0);
}

/* ---- Writes. ---- */

static struct rwrite *rwrite_new(struct rstore *r, enum store_kind kind, const char *key)
{
	size_t len = strlen(key);
	struct rwrite *w = malloc(sizeof(*w) + len + 1);

	if (w != NULL) {
		w->r = r;
		w->kind = kind;
		memcpy(w->key, key, len + 1);
	}
	return w;
}

/* enqueue - keep w for the replay; when the queue is full the oldest goes. */
static void enqueue(struct rstore *r, struct rwrite *w)
{
	if (r->nqueue >= r->queue_max) {
		struct rwrite *old = TAILQ_FIRST(&r->queue);

		TAILQ_REMOVE(&r->queue, old, link);
		free(old);
		r->nqueue--;
		r->dropped++;
	}
	TAILQ_INSERT_TAIL(&r->queue, w, link);
	r->nqueue++;
}

/* write_done - Redis answered a write; without an answer it goes back to the queue. */
static void write_done(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rwrite *w = privdata;
	struct rstore *r = w->r;
	redisReply *rep = reply;

	r->inflight--;
	if (rep == NULL && !r->closing) {
		enqueue(r, w);
		return;
	}
	free(w);
}

/* send_rec - SET with the record's expiry (DEL if it has already expired). Takes w. */
static int send_rec(struct rstore *r, struct rwrite *w, const struct store_rec *rec)
{
	const char *kn = store_kind_name(w->kind);
	int64_t ms = rec->expires > INT64_MAX / 1000 ? INT64_MAX : rec->expires * 1000 - wall_ms();
	char val[128];
	int rc;

	store_redis_rec_format(val, sizeof(val), rec);
	/* A few years ahead (white entries: forever) is kept without a Redis expiry. */
	if (ms > (int64_t)10 * 365 * 86400 * 1000)
		rc = redisAsyncCommand(r->ac, write_done, w, "SET mxg:%s:%s %s", kn, w->key, val);
	else if (ms > 0)
		rc = redisAsyncCommand(r->ac, write_done, w, "SET mxg:%s:%s %s PX %lld", kn, w->key,
				       val, (long long)ms);
	else
		rc = redisAsyncCommand(r->ac, write_done, w, "DEL mxg:%s:%s", kn, w->key);
	if (rc != REDIS_OK) {
		enqueue(r, w);
		return -1;
	}
	r->inflight++;
	return 0;
}

static int send_del(struct rstore *r, struct rwrite *w)
{
	if (redisAsyncCommand(r->ac, write_done, w, "DEL mxg:%s:%s", store_kind_name(w->kind),
			      w->key) != REDIS_OK) {
		enqueue(r, w);
		return -1;
	}
	r->inflight++;
	return 0;
}

/*
 * replay_cb - send a batch of queued writes, as LMDB holds them now; go on
 * in the next round while Redis keeps up.
 */
static void replay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rstore *r = arg;
	struct store_rec rec;
	struct rwrite *w;
	int n = 0, found;

	while (r->up && n < REPLAY_BATCH && r->inflight < INFLIGHT_MAX / 2 &&
	       (w = TAILQ_FIRST(&r->queue)) != NULL) {
		TAILQ_REMOVE(&r->queue, w, link);
		r->nqueue--;
		n++;
		found = store_lmdb_lookup(r->local, w->kind, w->key, &rec);
		if (found == 1)
			send_rec(r, w, &rec);
		else if (found == 0)
			send_del(r, w);
		else
			free(w);
	}
	if (r->up && r->nqueue > 0)
		event_active(r->replay, EV_TIMEOUT, 0);
	else if (n > 0 && r->nqueue == 0)
		log_info("store: redis %s replay done", r->where);
}

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
		q->found = local_lookup(r, q->kind, q->key, &q->rec);
		if (++r->slow_run >= SLOW_AFTER && r->up) {
			char why[96];

			snprintf(why, sizeof(why), "%d lookups in a row over %dms", r->slow_run,
				 r->timeout_ms);
			fallback_begin(r, why);
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
		int ok = store_redis_rec_parse(rep->str, rep->len, &rec) == 0;

		found = ok && rec.expires > time(NULL);
		if (!ok && time(NULL) - r->bad_logged >= 60) {
			/* Planted or damaged: skipped (looked up as absent), logged. */
			char esc[160];

			log_warn("store: redis %s: bad record for key \"%s\" skipped", r->where,
				 log_escape(esc, sizeof(esc), q->key, strlen(q->key)));
			r->bad_logged = time(NULL);
		}
		if (found)
			cache_put(r, q->kind, q->key, &rec);
		else
			cache_del(r, q->kind, q->key);
	}
	if (q->state == RQ_WAIT) {
		event_del(q->ev);
		if (found == -2) {
			q->found = local_lookup(r, q->kind, q->key, &q->rec);
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

	if ((unsigned)kind >= STORE_NKINDS || !store_key_valid(key))
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
			fallback_begin(r, "too many commands in flight");
	} else {
		q->found = local_lookup(r, kind, key, &q->rec);
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

	if ((unsigned)kind >= STORE_NKINDS || !store_key_valid(key))
		return -1;
	local = store_lmdb_ops.put(r->local, kind, key, rec);
	if (cache_find(r, kind, key) != NULL)
		cache_put(r, kind, key, rec);
	if ((w = rwrite_new(r, kind, key)) == NULL)
		return local;
	if (!r->up) {
		/* The replay reads LMDB; if LMDB failed, the record is lost for Redis. */
		if (local < 0) {
			free(w);
			return -1;
		}
		enqueue(r, w);
		return 0;
	}
	return send_rec(r, w, rec) == 0 ? 0 : local;
}

/* ---- The blocking connection (control socket only). ---- */

static redisReply *sync_cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	void *rep;

	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	return rep;
}

static void sync_drop(struct rstore *r)
{
	if (r->sync != NULL)
		redisFree(r->sync);
	r->sync = NULL;
}

/* sync_ctx - the blocking connection, made when needed; NULL if Redis is not up. */
static redisContext *sync_ctx(struct rstore *r)
{
	struct timeval tv = {0, SYNC_TIMEOUT_MS * 1000};
	redisReply *rep;
	redisContext *c;

	/*
	 * Not while Redis is known to be down or slow. Right after store_open
	 * (no answer yet, no failure either) it is tried: the engine loads the
	 * operator's white entries then, and they should be the farm's.
	 */
	if (!r->up && !(r->fallback && !r->logged))
		return NULL;
	if (r->sync != NULL && r->sync->err == 0)
		return r->sync;
	sync_drop(r);
	c = r->path ? redisConnectUnixWithTimeout(r->path, tv)
		    : redisConnectWithTimeout(r->host, r->port, tv);
	if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	r->sync = c;
	if (r->pass != NULL) {
		rep = r->user ? sync_cmd(c, "AUTH %s %s", r->user, r->pass)
			      : sync_cmd(c, "AUTH %s", r->pass);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(rep);
	}
	if (r->db != 0) {
		rep = sync_cmd(c, "SELECT %d", r->db);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(rep);
	}
	return c;
fail:
	if (rep != NULL)
		freeReplyObject(rep);
	sync_drop(r);
	return NULL;
}

static int redis_del(void *b, enum store_kind kind, const char *key)
{
	struct rstore *r = b;
	redisContext *c;
	redisReply *rep;
	struct rwrite *w;
	int local, remote = -1;

	if ((unsigned)kind >= STORE_NKINDS || !store_key_valid(key))
		return -1;
	local = store_lmdb_ops.del(r->local, kind, key);
	cache_del(r, kind, key);
	if ((c = sync_ctx(r)) != NULL) {
		rep = sync_cmd(c, "DEL mxg:%s:%s", store_kind_name(kind), key);
		if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
			remote = rep->integer > 0;
		if (rep != NULL)
			freeReplyObject(rep);
		else
			sync_drop(r);
	}
	/* Not done in Redis: done when it comes back (LMDB no longer has it: DEL). */
	if (remote < 0 && (w = rwrite_new(r, kind, key)) != NULL)
		enqueue(r, w);
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

	if ((c = sync_ctx(r)) == NULL)
		return -1;
	prefix = (size_t)snprintf(pattern, sizeof(pattern), "mxg:%s:", store_kind_name(kind));
	do {
		const char **argv;
		size_t nk;

		rep = sync_cmd(c, "SCAN %s MATCH %s* COUNT 1000", cursor, pattern);
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
				    store_redis_rec_parse(val->str, val->len, &rec) < 0 ||
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
	sync_drop(r);
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

/* sub_cb - every reply on the subscriber: the SUBSCRIBE confirmation, then messages. */
static void sub_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rstore *r = privdata;
	redisReply *rep = reply, *m;
	char buf[MSG_MAX + 1];

	if (rep == NULL || r->closing || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
		return;
	if (rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message"))
		return; /* "subscribe": the confirmation */
	m = rep->element[2];
	if (m->type != REDIS_REPLY_STRING ||
	    store_redis_msg_parse(r->id, m->str, m->len, buf, sizeof(buf)) < 0)
		return;
	if (r->msg_cb != NULL)
		r->msg_cb(buf, r->msg_arg);
}

int store_redis_msg_parse(const char *id, const char *s, size_t len, char *buf, size_t bufsz)
{
	size_t idlen = strlen(id);
	const char *sp;
	size_t n;

	/* Ours, or not "ID MSG": ignored. */
	if (len > idlen && strncmp(s, id, idlen) == 0 && s[idlen] == ' ')
		return -1;
	if ((sp = memchr(s, ' ', len)) == NULL)
		return -1;
	n = len - (size_t)(sp + 1 - s);
	if (n == 0 || n > MSG_MAX || n >= bufsz || memchr(sp + 1, '\0', n) != NULL)
		return -1;
	memcpy(buf, sp + 1, n);
	buf[n] = '\0';
	if (strpbrk(buf, "\r\n") != NULL)
		return -1;
	return (int)n;
}

/* ---- Connections. ---- */

static int backoff_next(int *backoff)
{
	int d = *backoff < 1 ? 1 : *backoff;

	*backoff = d * 2 > RECONNECT_MAX ? RECONNECT_MAX : d * 2;
	return d;
}

/* rdrop - forget the main connection (it is freed) and decide locally. */
static void rdrop(struct rstore *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	r->ac = NULL;
	r->ready = 0;
	r->ping_out = 0;
	fallback_begin(r, why);
	r->next_connect = mono_ms() + 1000 * backoff_next(&r->backoff);
	sync_drop(r);
	/* Detached first: the callbacks it runs see it is no longer ours. */
	if (ac != NULL)
		redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rstore *r = ac->data;
	char why[160];

	if (status == REDIS_OK || r->closing)
		return;
	snprintf(why, sizeof(why), "connect: %s", ac->errstr);
	if (ac == r->ac) {
		/* hiredis frees it after this returns. */
		r->ac = NULL;
		r->ready = 0;
		fallback_begin(r, why);
		r->next_connect = mono_ms() + 1000 * backoff_next(&r->backoff);
	} else if (ac == r->sub) {
		r->sub = NULL;
		r->next_sub = mono_ms() + 1000 * backoff_next(&r->sub_backoff);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rstore *r = ac->data;
	char why[160];

	if (r->closing)
		return;
	if (ac == r->ac) {
		snprintf(why, sizeof(why), "connection lost: %s",
			 ac->err ? ac->errstr : "closed by the server");
		r->ac = NULL;
		r->ready = 0;
		r->ping_out = 0;
		sync_drop(r);
		fallback_begin(r, why);
		r->next_connect = mono_ms() + 1000 * backoff_next(&r->backoff);
	} else if (ac == r->sub) {
		r->sub = NULL;
		r->next_sub = mono_ms() + 1000 * backoff_next(&r->sub_backoff);
	}
}

/* hs_check - AUTH or SELECT answered: an error ends the connection (retried later). */
static void hs_check(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rstore *r = privdata;
	redisReply *rep = reply;
	char why[200];

	if (rep == NULL || r->closing || ac != r->ac || rep->type != REDIS_REPLY_ERROR)
		return;
	snprintf(why, sizeof(why), "handshake: %.150s", rep->str);
	fallback_begin(r, why);
	redisAsyncDisconnect(ac);
}

/* pong - the handshake's PING, or a probe of a slow Redis. */
static void pong(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rstore *r = privdata;
	redisReply *rep = reply;

	if (rep == NULL || r->closing || ac != r->ac)
		return;
	r->ping_out = 0;
	if (rep->type == REDIS_REPLY_ERROR)
		return; /* hs_check has already dropped it */
	if (!r->ready) {
		r->ready = 1;
		r->backoff = 0;
		fallback_end(r);
	} else if (!r->up && mono_ms() - r->ping_sent <= r->timeout_ms) {
		fallback_end(r);
	}
}

static redisAsyncContext *connect_one(struct rstore *r)
{
	redisAsyncContext *ac =
	    r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->host, r->port);

	if (ac == NULL)
		return NULL;
	if (ac->err != 0) {
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	redisLibeventAttach(ac, r->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* Commands queue until the connection is made. */
	if (r->pass != NULL) {
		if (r->user != NULL)
			redisAsyncCommand(ac, hs_check, r, "AUTH %s %s", r->user, r->pass);
		else
			redisAsyncCommand(ac, hs_check, r, "AUTH %s", r->pass);
	}
	return ac;
}

static void rconnect(struct rstore *r)
{
	r->ac = connect_one(r);
	r->ready = 0;
	r->ac_started = mono_ms();
	if (r->ac == NULL) {
		fallback_begin(r, "connect failed");
		r->next_connect = mono_ms() + 1000 * backoff_next(&r->backoff);
		return;
	}
	if (r->db != 0)
		redisAsyncCommand(r->ac, hs_check, r, "SELECT %d", r->db);
	r->ping_out = 1;
	r->ping_sent = mono_ms();
	redisAsyncCommand(r->ac, pong, r, "PING");
}

static void rsub_connect(struct rstore *r)
{
	r->sub = connect_one(r);
	if (r->sub == NULL) {
		r->next_sub = mono_ms() + 1000 * backoff_next(&r->sub_backoff);
		return;
	}
	r->sub_backoff = 0;
	redisAsyncCommand(r->sub, sub_cb, r, "SUBSCRIBE " CHANNEL);
}

/* tick - every second: connect, time out a connect or a probe, probe a slow Redis. */
static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct rstore *r = arg;
	int64_t now = mono_ms();

	if (r->ac == NULL && now >= r->next_connect)
		rconnect(r);
	else if (r->ac != NULL && !r->ready && now - r->ac_started > CONNECT_TIMEOUT_MS)
		rdrop(r, "connect timed out");
	else if (r->ac != NULL && r->ready && !r->up) {
		if (r->ping_out && now - r->ping_sent > PING_GIVEUP_MS)
			rdrop(r, "no answer to a probe");
		else if (!r->ping_out) {
			r->ping_out = 1;
			r->ping_sent = now;
			redisAsyncCommand(r->ac, pong, r, "PING");
		}
	}
	if (r->sub == NULL && now >= r->next_sub)
		rsub_connect(r);
	if (r->up && r->nqueue > 0)
		event_active(r->replay, EV_TIMEOUT, 0);
}

/* ---- Open, status, close. ---- */

/*
 * parse_spec - redis://[[user]:password@]host[:port][/db],
 * redis:///path/to/socket[?db=N] or unix:/path/to/socket[?db=N].
 */
static int parse_spec(struct rstore *r, const char *spec, char *err, size_t errsz)
{
	const char *p, *q, *at, *end;
	char *dbs = NULL, *e;
	long v;

	r->port = 6379;
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "redis:///", 9) == 0) {
		p = spec[0] == 'u' ? spec + 5 : spec + 8;
		q = strchr(p, '?');
		r->path = q ? strndup(p, (size_t)(q - p)) : strdup(p);
		if (q != NULL) {
			if (strncmp(q, "?db=", 4) != 0)
				goto bad;
			dbs = strdup(q + 4);
		}
		if (r->path == NULL || r->path[0] != '/' || strlen(r->path) >= 108)
			goto bad;
		snprintf(r->where, sizeof(r->where), "%s", r->path);
	} else {
		p = spec + 8;
		end = p + strcspn(p, "/");
		at = NULL;
		for (q = p; q < end; q++)
			if (*q == '@')
				at = q;
		if (at != NULL) {
			const char *colon = memchr(p, ':', (size_t)(at - p));

			if (colon == NULL)
				goto bad;
			if (colon > p)
				r->user = strndup(p, (size_t)(colon - p));
			r->pass = strndup(colon + 1, (size_t)(at - colon - 1));
			p = at + 1;
		}
		if (*p == '[') {
			if ((q = memchr(p, ']', (size_t)(end - p))) == NULL)
				goto bad;
			r->host = strndup(p + 1, (size_t)(q - p - 1));
			q++;
		} else {
			q = memchr(p, ':', (size_t)(end - p));
			if (q == NULL)
				q = end;
			r->host = strndup(p, (size_t)(q - p));
		}
		if (r->host == NULL || r->host[0] == '\0')
			goto bad;
		if (q < end) {
			if (*q != ':')
				goto bad;
			errno = 0;
			v = strtol(q + 1, &e, 10);
			if (e != end || e == q + 1 || v < 1 || v > 65535)
				goto bad;
			r->port = (int)v;
		}
		if (*end == '/' && end[1] != '\0')
			dbs = strdup(end + 1);
		snprintf(r->where, sizeof(r->where), "%s%s%s:%d", strchr(r->host, ':') ? "[" : "",
			 r->host, strchr(r->host, ':') ? "]" : "", r->port);
	}
	if (dbs != NULL) {
		v = strtol(dbs, &e, 10);
		if (*e != '\0' || e == dbs || v < 0 || v > 1000000) {
			free(dbs);
			goto bad;
		}
		r->db = (int)v;
		free(dbs);
	}
	return 0;
bad:
	snprintf(err, errsz,
		 "store: bad redis address '%.100s' (redis://[:password@]host[:port][/db], "
		 "redis:///socket[?db=N] or unix:/socket[?db=N])",
		 spec);
	return -1;
}

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
	struct rwrite *w;
	struct rreq *q;
	struct centry *ce;
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
	sync_drop(r);
	while ((q = TAILQ_FIRST(&r->reqs)) != NULL) {
		TAILQ_REMOVE(&r->reqs, q, link);
		if (q->delivering)
			continue; /* rreq_fire frees it */
		event_free(q->ev);
		free(q);
	}
	while ((w = TAILQ_FIRST(&r->queue)) != NULL) {
		TAILQ_REMOVE(&r->queue, w, link);
		free(w);
	}
	while ((ce = TAILQ_FIRST(&r->cfifo)) != NULL) {
		TAILQ_REMOVE(&r->cfifo, ce, fifo);
		free(ce);
	}
	free(r->buckets);
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

void *store_redis_open(struct event_base *base, const char *spec, const char *state_dir,
		       int timeout_ms, int cache_size, char *err, size_t errsz)
{
	static const struct timeval second = {1, 0};
	struct rstore *r = calloc(1, sizeof(*r));
	static unsigned instances;
	char host[64] = "";
	unsigned rnd;

	if (r == NULL) {
		snprintf(err, errsz, "store: out of memory");
		return NULL;
	}
	TAILQ_INIT(&r->reqs);
	TAILQ_INIT(&r->queue);
	TAILQ_INIT(&r->cfifo);
	r->base = base;
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : 50;
	r->cache_max = cache_size > 0 ? (size_t)cache_size : 0;
	r->queue_max = r->cache_max > QUEUE_MIN ? r->cache_max : QUEUE_MIN;
	if (parse_spec(r, spec, err, errsz) < 0)
		goto fail;
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
	r->tick = event_new(base, -1, EV_PERSIST, tick, r);
	r->replay = event_new(base, -1, 0, replay_cb, r);
	if (r->tick == NULL || r->replay == NULL || event_add(r->tick, &second) < 0) {
		snprintf(err, errsz, "store: cannot create events");
		goto fail;
	}
	/* Until the first PING comes back, decisions are local (not logged unless it fails). */
	r->fallback = 1;
	r->fallback_since = time(NULL);
	rconnect(r);
	rsub_connect(r);
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
