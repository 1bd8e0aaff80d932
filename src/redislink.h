/*
 * redislink.h - the Redis store's connections (see store_redis.h): the
 * main asynchronous one, the subscriber, and the blocking one for the
 * control socket; making them, retrying them, probing a slow Redis,
 * deciding when to fall back to the local side and when to trust Redis
 * again, and replaying the writes queued meanwhile.
 */
#ifndef MXG_REDISLINK_H
#define MXG_REDISLINK_H

#include <event2/util.h>

#include "store_redis.h"

/*
 * redislink_connect, redislink_sub_connect - start connecting the main
 * connection (AUTH, SELECT and a PING queued: the PING's answer makes it
 * ready) or the subscriber. A failure is not returned: it starts a
 * fallback (main) and sets the time of the next attempt.
 */
void redislink_connect(struct rstore *r);
void redislink_sub_connect(struct rstore *r);

/*
 * redislink_tick - r->tick's callback (arg: r), every second: connect,
 * time out a connect or a probe, probe a slow Redis, resume the replay.
 * redislink_replay - r->replay's callback (arg: r): send a batch of queued
 * writes, as LMDB holds them now.
 */
void redislink_tick(evutil_socket_t fd, short what, void *arg);
void redislink_replay(evutil_socket_t fd, short what, void *arg);

/*
 * redislink_fallback_begin - decide locally from now on, because of why;
 * logged once per fallback.
 */
void redislink_fallback_begin(struct rstore *r, const char *why);

/*
 * redislink_send_rec - SET kind/key with rec's expiry on the main
 * connection (DEL if it has already expired). Takes w: it is freed when
 * Redis answers, and queued again when it does not. Returns 0, or -1 when
 * the command could not be sent (w is queued).
 */
int redislink_send_rec(struct rstore *r, struct rwrite *w, const struct store_rec *rec);

/*
 * The blocking connection (control socket only). redislink_sync returns
 * it, made when needed (AUTH, SELECT) with a timeout of SYNC_TIMEOUT_MS
 * per round trip, or NULL when Redis is not up or cannot be reached;
 * redislink_sync_cmd runs one command on it (hiredis format; the reply is
 * the caller's to free, NULL on an error); redislink_sync_drop closes it
 * (after an error it may be out of step).
 */
redisContext *redislink_sync(struct rstore *r);
redisReply *redislink_sync_cmd(redisContext *c, const char *fmt, ...);
void redislink_sync_drop(struct rstore *r);

#endif
