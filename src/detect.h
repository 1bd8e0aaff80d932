/*
 * detect.h - the flood detector: per-source attempt rates (one-source
 * floods), distinct sources per listener group (distributed floods) with
 * an attack state machine, and the set of sources known in good standing.
 *
 * Pure data structures: no I/O, no libevent, time is passed in (ms), so
 * the whole module is driven by unit tests and bench/detect with synthetic
 * events. Memory is bounded by the configuration, whatever the input.
 */
#ifndef MXG_DETECT_H
#define MXG_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define DETECT_MAX_GROUPS 8
#define DETECT_TOP 10

struct detect_cfg {
	uint32_t src_window_ms;	 /* one-source sliding window */
	uint32_t max_sources;	 /* bound of the per-source rate table */
	uint32_t ddos_window_ms; /* distinct-source sliding window */
	uint32_t ddos_threshold; /* distinct sources in the window: attack */
	uint32_t ddos_release;	 /* below this (< threshold): converging */
	uint32_t quiet_ms;	 /* converging this long without rising: normal */
	uint32_t exact_max;	 /* sources counted exactly per group, then HyperLogLog */
	uint32_t good_max;	 /* bound of the known-good set */
	int prefix_v4, prefix_v6; /* prefix lengths for the top-prefix report */
};

enum detect_state { DETECT_NORMAL, DETECT_ATTACK, DETECT_CONVERGING };

struct detect_top {
	struct ipkey key;
	uint64_t count;
};

/* What a group saw during its current (or last) attack, for notices. */
struct detect_report {
	enum detect_state state;
	uint64_t since_ms;	   /* when the current state began */
	uint64_t attack_start_ms;  /* start of the current or last attack */
	uint64_t attack_end_ms;	   /* 0 while it lasts */
	uint32_t distinct;	   /* distinct sources in the window now (estimate) */
	uint32_t peak_distinct;	   /* highest estimate during the attack */
	uint64_t attempts;	   /* connection attempts during the attack */
	uint64_t sources;	   /* distinct sources during the attack (estimate) */
	int ntop_sources, ntop_prefixes;
	struct detect_top top_sources[DETECT_TOP];  /* heavy hitters (space-saving) */
	struct detect_top top_prefixes[DETECT_TOP]; /* the same by prefix */
};

struct detect;

/* detect_new - a detector with ngroups (<= DETECT_MAX_GROUPS) groups. NULL: no memory. */
struct detect *detect_new(const struct detect_cfg *cfg, int ngroups);

/* detect_configure - new parameters (reload); counts already made are kept. */
void detect_configure(struct detect *d, const struct detect_cfg *cfg);

/*
 * detect_source - one connection attempt from key at now_ms, on any
 * listener. Returns the attempts from key within src_window_ms before
 * now_ms, this one included. When the table is full, the stalest entry
 * is replaced: memory stays at max_sources entries.
 */
uint32_t detect_source(struct detect *d, const struct ipkey *key, uint64_t now_ms);

/* detect_source_forget - drop key's count (after it was blocked). */
void detect_source_forget(struct detect *d, const struct ipkey *key);

/*
 * detect_group - one attempt from key seen by group g at now_ms. Returns
 * the group's state after the event; the state changes only here and in
 * detect_tick. During an attack the event also feeds the report.
 */
enum detect_state detect_group(struct detect *d, int g, const struct ipkey *key,
			       uint64_t now_ms);

/*
 * detect_tick - advance every group's state machine at now_ms (call about
 * once a second: windows slide and quiet periods end here even when no
 * connection arrives).
 */
void detect_tick(struct detect *d, uint64_t now_ms);

/*
 * detect_set_others - with several workers, the distinct sources of group
 * g that the others count: added to this detector's own count wherever the
 * state machine and the report read it (their sets do not overlap: each
 * network goes to one worker). 0 by default.
 */
void detect_set_others(struct detect *d, int g, uint32_t n);

/* detect_distinct - group g's own distinct sources in the window at now_ms, cheaply. */
uint32_t detect_distinct(const struct detect *d, int g, uint64_t now_ms);

/*
 * detect_changed - groups whose state changed since the last call (bit g
 * set), then clears the mask. Changes made inside detect_group are
 * reported here too, so the caller can send notices in one place.
 */
unsigned detect_changed(struct detect *d);

/* detect_state_of - the state of group g. */
enum detect_state detect_state_of(const struct detect *d, int g);

/* detect_report - fill r for group g at now_ms. */
void detect_report(const struct detect *d, int g, uint64_t now_ms, struct detect_report *r);

/* detect_good_mark - key ended a session in good standing at now_ms. */
void detect_good_mark(struct detect *d, const struct ipkey *key, uint64_t now_ms);

/*
 * detect_good_before - was key marked good before group g's current attack
 * began (any time while the group is normal)? Sources first seen during the
 * attack are not good.
 */
int detect_good_before(const struct detect *d, int g, const struct ipkey *key);

/*
 * detect_good_within - is any source in good standing inside net (a key
 * with the bits after bits clear, counted within its family)? A walk of
 * the whole good set: for rare decisions, never per accept.
 */
int detect_good_within(const struct detect *d, const struct ipkey *net, int bits);

/* detect_memory - bytes held by the detector (tables, sketches). */
size_t detect_memory(const struct detect *d);

/* detect_state_name - "normal", "attack", "converging". */
const char *detect_state_name(enum detect_state s);

void detect_free(struct detect **dp);

#endif
