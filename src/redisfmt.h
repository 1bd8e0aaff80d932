/*
 * redisfmt.h - the bytes mxguard keeps in Redis and sends through it: a
 * record as a string value, and a pub/sub message between the instances
 * sharing the store. Pure functions (libc and store_kind.c only), fuzzed by
 * tests/fuzz/fuzz_redis.c: what they read was written by another farm
 * member, or by whoever else can write to Redis.
 */
#ifndef MXG_REDISFMT_H
#define MXG_REDISFMT_H

#include <stddef.h>

#include "store_kind.h"

/* The longest pub/sub message (store_publish). */
#define REDISFMT_MSG_MAX 512

/*
 * A record as Redis holds it: "1 FIRST LAST EXPIRES COUNT" in decimal.
 * redisfmt_rec_format writes rec into buf (truncated to bufsz, which 96
 * bytes always hold); redisfmt_rec_parse reads s[0..len), any bytes
 * another farm member or an attacker put there: 0 and rec filled in when
 * it is exactly that form with COUNT within 32 bits and plausible times
 * (store_kind_rec_valid), else -1 (treated as absent).
 */
void redisfmt_rec_format(char *buf, size_t bufsz, const struct store_rec *rec);
int redisfmt_rec_parse(const char *s, size_t len, struct store_rec *rec);

/*
 * redisfmt_msg_parse - a pub/sub message s[0..len), "SENDER MSG", as
 * another instance (or whoever can write to the channel) published it.
 * Returns the length of MSG copied NUL-terminated into buf, or -1 when it
 * is to be ignored: sent by id (ourselves), no space, MSG empty, over
 * REDISFMT_MSG_MAX bytes or not fitting bufsz, or holding a NUL, CR or LF.
 */
int redisfmt_msg_parse(const char *id, const char *s, size_t len, char *buf, size_t bufsz);

#endif
