/*
 * wshm.h - what the worker processes share (workers = N): one slot per
 * worker, with its pid, its counters and the distinct sources its flood
 * detector counts per listener group, and a ring of short messages from
 * one worker to the others (blocks, attack states, operator commands).
 *
 * One anonymous shared mapping, made before the workers are forked, so it
 * needs no file and no name. Each worker writes only its own slot (about
 * every quarter second, and before it answers a status or a scrape) and
 * reads the others': counters are 64-bit words, read as a snapshot that
 * may be a tick old, which is what a status or a scrape needs. The ring
 * has a process-shared lock that survives a worker killed holding it.
 *
 * With workers = 1 the same code runs with one slot: the status and the
 * metrics read a daemon the same way whatever its number of workers.
 */
#ifndef MXG_WSHM_H
#define MXG_WSHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "detect.h"
#include "listener.h"
#include "mxguard.h"

struct wshm;

/* A message in the ring: a line without CR or LF. */
#define WSHM_MSG_MAX 1088

/* The engine's status of a worker, as JSON (worker.c writes it). */
#define WSHM_ENGINE_MAX 2048

/* Connection stages counted per worker (conn.h's, up to the tarpit). */
#define WSHM_STAGES 8

/* One worker's slot. */
struct wshm_slot {
	pid_t pid;			      /* 0: not running */
	int ready;			      /* past start-up (the master waits for it at start) */
	int64_t started;		      /* unix time of its current start */
	uint32_t restarts;		      /* times the master started it again */
	int32_t nconns;			      /* open connections */
	uint32_t distinct[DETECT_MAX_GROUPS]; /* its detector's own distinct sources */
	uint32_t stages[WSHM_STAGES];	      /* open connections by stage (conn.h) */
	struct mxg_stats stats;
	uint32_t engine_gen;	      /* odd while engine is being written */
	char engine[WSHM_ENGINE_MAX]; /* its engine's status object ("" before the first) */
				      /* followed by one struct wshm_listener per listener */
};

/* A listener as one worker serves it: its counters and its open connections. */
struct wshm_listener {
	struct listener_stats stats;
	uint64_t open;
};

/*
 * wshm_new - the shared mapping for nworkers slots, each with counters for
 * nlisteners listeners. Returns NULL with a message in err.
 */
struct wshm *wshm_new(int nworkers, int nlisteners, char *err, size_t errsz);

/* wshm_nworkers - the number of slots. */
int wshm_nworkers(const struct wshm *w);

/* wshm_set_master, wshm_master - the daemon's pid: the master's, or the one process's. */
void wshm_set_master(struct wshm *w, pid_t pid);
pid_t wshm_master(const struct wshm *w);

/* wshm_slot - worker i's slot (0 <= i < wshm_nworkers). */
struct wshm_slot *wshm_slot(struct wshm *w, int i);

/*
 * wshm_update - write worker self's slot from mxg: connections (by stage),
 * counters, its listeners' counters; and, when distinct is not NULL, its detector's
 * distinct sources per group (ngroups of them).
 */
void wshm_update(struct wshm *w, int self, const struct mxg *mxg, const uint32_t *distinct,
		 int ngroups);

/* wshm_update_distinct - only the distinct sources of self's slot (between updates). */
void wshm_update_distinct(struct wshm *w, int self, const uint32_t *distinct, int ngroups);

/*
 * wshm_restore - a worker started again takes its predecessor's counters
 * from slot self into mxg (its listeners' too): the sums never go down.
 */
void wshm_restore(struct wshm *w, int self, struct mxg *mxg);

/* wshm_clear_open - worker i is gone: none of its connections is open any more. */
void wshm_clear_open(struct wshm *w, int i);

/*
 * wshm_total - the sums over every worker's slot: counters into *st (a
 * dead worker's stay in: counters never go down), open connections of the
 * running ones into *nconns and stages[0..WSHM_STAGES), listener i's into
 * lst[i] (lst may be NULL; else it has mxg->nlisteners entries).
 * Histograms keep the bounds of mxg's own.
 */
void wshm_total(const struct wshm *w, const struct mxg *mxg, struct mxg_stats *st, int *nconns,
		uint32_t *stages, struct wshm_listener *lst);

/*
 * wshm_set_engine - worker self's engine status (JSON text, shorter than
 * WSHM_ENGINE_MAX). wshm_engine copies worker i's into buf (size bytes),
 * never half-written: returns 0, or -1 when there is none or the writer
 * kept it busy.
 */
void wshm_set_engine(struct wshm *w, int self, const char *text);
int wshm_engine(const struct wshm *w, int i, char *buf, size_t size);

/* wshm_distinct_others - group g's distinct sources in every worker but self. */
uint32_t wshm_distinct_others(const struct wshm *w, int self, int g);

/*
 * wshm_post - put msg (at most WSHM_MSG_MAX - 1 bytes) in the ring for
 * every worker but from. Returns 0, or -1 when it is too long.
 */
int wshm_post(struct wshm *w, int from, const char *msg);

/*
 * wshm_poll - call fn for every message posted since *next by a worker
 * other than self, in order, and advance *next. A worker that fell more
 * than the ring behind loses the oldest: the count lost is returned.
 * wshm_head gives the *next a worker starts from (messages before it are
 * in the store it reads at start).
 */
uint64_t wshm_poll(struct wshm *w, int self, uint64_t *next, void (*fn)(const char *msg, void *arg),
		   void *arg);
uint64_t wshm_head(struct wshm *w);

/* wshm_free - unmap *wp (NULL is fine) and set it to NULL. */
void wshm_free(struct wshm **wp);

#endif
