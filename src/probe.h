/*
 * probe.h - what the backend offers in its EHLO reply, learnt ahead of
 * time so that mxguard can answer a client's EHLO itself (inspect mode)
 * with the capabilities the client will meet after the hand-off.
 */
#ifndef MXG_PROBE_H
#define MXG_PROBE_H

#include <stddef.h>

struct mxg;
struct probe;

/* probe_new - create the cache; starts probing when default_action = inspect. */
struct probe *probe_new(struct mxg *mxg);

/* probe_kick - probe again now (after a reload). */
void probe_kick(struct probe *p);

/*
 * probe_caps - the capabilities to offer, "KEYWORD params\n" lines. Before
 * the first successful probe: a conservative set (PIPELINING, 8BITMIME,
 * ENHANCEDSTATUSCODES) that every backend mxguard supports handles.
 */
const char *probe_caps(const struct probe *p);

/* probe_learn - update the cache from an EHLO reply seen during a hand-off. */
void probe_learn(struct probe *p, const char *text, size_t len);

void probe_free(struct probe **pp);

#endif
