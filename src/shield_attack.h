/*
 * shield_attack.h - the shield's attack policy: the detector groups of the
 * listeners, their attack state (seen here by the flood detector, or told
 * by another mxguard sharing the store), the countries an attack comes
 * from, and what a change of state sets off (log, notices, a message to
 * the other instances).
 *
 * The flood detector itself (detect.c) belongs to the shield, which also
 * counts single sources with it; the functions below that read it take it
 * as an argument.
 */
#ifndef MXG_SHIELD_ATTACK_H
#define MXG_SHIELD_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct mxg;
struct detect;
struct evbuffer;
struct attack;

/*
 * attack_new - the groups of mxg's listeners: group 0 is "smtp", services
 * name theirs (cfg group=, default "services"); each listener's group
 * field is set. Returns NULL with a message in err (more than
 * DETECT_MAX_GROUPS groups, out of memory). Free with attack_free.
 */
struct attack *attack_new(struct mxg *mxg, char *err, size_t errsz);

/* attack_ngroups - how many groups attack_new made (what the detector is sized for). */
int attack_ngroups(const struct attack *a);

/*
 * attack_under - is group g under attack, by det's state here or, until a
 * quiet period after its last word, by another MX's?
 */
int attack_under(const struct attack *a, const struct detect *det, int g, int64_t now);

/*
 * attack_country - count an attempt on group g, under attack, from
 * country cc ("DE"; anything else counts as unknown) for the notices.
 */
void attack_country(struct attack *a, int g, const char cc[3]);

/*
 * attack_tick - once a second: advance det's states, and for each group
 * that changed log it, send the start or end notice (its top countries
 * only when geo is set: a country database is loaded) and publish the new
 * state to the other instances; while a group is not normal, publish its
 * state again every ddos_quiet/2 seconds.
 */
void attack_tick(struct attack *a, struct detect *det, int geo, int64_t now, uint64_t now_ms);

/*
 * attack_peer - another mxguard says group (by name) is in state ("normal",
 * "attack", ...): held until it says "normal" or ddos_quiet passes without
 * its word. A name no group here has is ignored.
 */
void attack_peer(struct attack *a, const char *group, const char *state, int64_t now);

/*
 * attack_status - appends one object per listener group (name, state,
 * remote, distinct, threshold, since) to the array groups, for the status.
 */
void attack_status(const struct attack *a, const struct detect *det, json_t *groups, int64_t now);

/* attack_metrics - Prometheus lines: each group's state and distinct sources. */
void attack_metrics(const struct attack *a, const struct detect *det, struct evbuffer *out,
		    int64_t now);

/* attack_free - free *ap (NULL is fine) and set it to NULL. */
void attack_free(struct attack **ap);

#endif
