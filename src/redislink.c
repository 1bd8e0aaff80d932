/*
 * redislink.c - the Redis store's connections (redislink.h), on hiredis
 * 0.14's async API and the daemon's libevent loop:
 * - the main one: GET, SET, DEL, PUBLISH, PING;
 * - the subscriber: SUBSCRIBE mxguard:events (a subscribed connection can
 *   do nothing else). Messages are "INSTANCEID MSG"; our own are ignored.
 * - a blocking one, opened on demand, for store_list and store_del (see
 *   store_redis.c), used only while the main connection is healthy, so a
 *   dead Redis never costs the loop a wait.
 *
 * Fallback. When the connection is lost or cannot be made, when three
 * lookups in a row time out, or when too many commands are in flight, the
 * store decides locally (redislocal.c). The start and the end of each
 * fallback are logged once. A connection is retried no more often than
 * every second, backing off to every RECONNECT_MAX seconds; a slow but
 * connected Redis is probed with a PING each second and trusted again when
 * one comes back within store_timeout. Replay goes in batches between
 * other events.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "log.h"
#include "redisfmt.h"
#include "redislink.h"
#include "redislocal.h"
#include "store_ops.h"
#include "store_redis.h"

#define CONNECT_TIMEOUT_MS 1000 /* connect plus handshake */
#define PING_GIVEUP_MS 5000	/* a probe unanswered this long: reconnect */
#define RECONNECT_MAX 5		/* seconds between attempts at most */
#define REPLAY_BATCH 500	/* queued writes sent per round */
#define SYNC_TIMEOUT_MS 250	/* the blocking connection, per round trip */

static void rdrop(struct rstore *r, const char *why);

/* ---- Fallback bookkeeping. ---- */

void redislink_fallback_begin(struct rstore *r, const char *why)
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

/* write_done - Redis answered a write; without an answer it goes back to the queue. */
static void write_done(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rwrite *w = privdata;
	struct rstore *r = w->r;
	redisReply *rep = reply;

	r->inflight--;
	if (rep == NULL && !r->closing) {
		redislocal_enqueue(r, w);
		return;
	}
	free(w);
}

/* redislink_send_rec - SET with the record's expiry (DEL if it has already expired). Takes w. */
int redislink_send_rec(struct rstore *r, struct rwrite *w, const struct store_rec *rec)
{
	const char *kn = store_kind_name(w->kind);
	int64_t ms = rec->expires > INT64_MAX / 1000 ? INT64_MAX : rec->expires * 1000 - wall_ms();
	char val[128];
	int rc;

	redisfmt_rec_format(val, sizeof(val), rec);
	/* A few years ahead (white entries: forever) is kept without a Redis expiry. */
	if (ms > (int64_t)10 * 365 * 86400 * 1000)
		rc = redisAsyncCommand(r->ac, write_done, w, "SET mxg:%s:%s %s", kn, w->key, val);
	else if (ms > 0)
		rc = redisAsyncCommand(r->ac, write_done, w, "SET mxg:%s:%s %s PX %lld", kn, w->key,
				       val, (long long)ms);
	else
		rc = redisAsyncCommand(r->ac, write_done, w, "DEL mxg:%s:%s", kn, w->key);
	if (rc != REDIS_OK) {
		redislocal_enqueue(r, w);
		return -1;
	}
	r->inflight++;
	return 0;
}

static int send_del(struct rstore *r, struct rwrite *w)
{
	if (redisAsyncCommand(r->ac, write_done, w, "DEL mxg:%s:%s", store_kind_name(w->kind),
			      w->key) != REDIS_OK) {
		redislocal_enqueue(r, w);
		return -1;
	}
	r->inflight++;
	return 0;
}

/*
 * redislink_replay - send a batch of queued writes, as LMDB holds them now; go on
 * in the next round while Redis keeps up.
 */
void redislink_replay(evutil_socket_t fd, short what, void *arg)
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
			redislink_send_rec(r, w, &rec);
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

/* ---- Messages. ---- */

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
	    redisfmt_msg_parse(r->id, m->str, m->len, buf, sizeof(buf)) < 0)
		return;
	if (r->msg_cb != NULL)
		r->msg_cb(buf, r->msg_arg);
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
	redislink_fallback_begin(r, why);
	r->next_connect = mono_ms() + 1000 * backoff_next(&r->backoff);
	redislink_sync_drop(r);
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
		redislink_fallback_begin(r, why);
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
		redislink_sync_drop(r);
		redislink_fallback_begin(r, why);
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
	redislink_fallback_begin(r, why);
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

void redislink_connect(struct rstore *r)
{
	r->ac = connect_one(r);
	r->ready = 0;
	r->ac_started = mono_ms();
	if (r->ac == NULL) {
		redislink_fallback_begin(r, "connect failed");
		r->next_connect = mono_ms() + 1000 * backoff_next(&r->backoff);
		return;
	}
	if (r->db != 0)
		redisAsyncCommand(r->ac, hs_check, r, "SELECT %d", r->db);
	r->ping_out = 1;
	r->ping_sent = mono_ms();
	redisAsyncCommand(r->ac, pong, r, "PING");
}

void redislink_sub_connect(struct rstore *r)
{
	r->sub = connect_one(r);
	if (r->sub == NULL) {
		r->next_sub = mono_ms() + 1000 * backoff_next(&r->sub_backoff);
		return;
	}
	r->sub_backoff = 0;
	redisAsyncCommand(r->sub, sub_cb, r, "SUBSCRIBE " CHANNEL);
}

/* redislink_tick - every second: connect, time out a connect or a probe, probe a slow Redis. */
void redislink_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rstore *r = arg;
	int64_t now = mono_ms();

	if (r->ac == NULL && now >= r->next_connect)
		redislink_connect(r);
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
		redislink_sub_connect(r);
	if (r->up && r->nqueue > 0)
		event_active(r->replay, EV_TIMEOUT, 0);
}

/* ---- The blocking connection (control socket only). ---- */

redisReply *redislink_sync_cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	void *rep;

	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	return rep;
}

void redislink_sync_drop(struct rstore *r)
{
	if (r->sync != NULL)
		redisFree(r->sync);
	r->sync = NULL;
}

/* redislink_sync - the blocking connection, made when needed; NULL if Redis is not up. */
redisContext *redislink_sync(struct rstore *r)
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
	redislink_sync_drop(r);
	c = r->path ? redisConnectUnixWithTimeout(r->path, tv)
		    : redisConnectWithTimeout(r->host, r->port, tv);
	if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	r->sync = c;
	if (r->pass != NULL) {
		rep = r->user ? redislink_sync_cmd(c, "AUTH %s %s", r->user, r->pass)
			      : redislink_sync_cmd(c, "AUTH %s", r->pass);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(rep);
	}
	if (r->db != 0) {
		rep = redislink_sync_cmd(c, "SELECT %d", r->db);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(rep);
	}
	return c;
fail:
	if (rep != NULL)
		freeReplyObject(rep);
	redislink_sync_drop(r);
	return NULL;
}
