/*
 * mxguard.h - the daemon context: what the event loop, the listeners, the
 * connections and the control socket share. Passed around explicitly; there
 * are no global variables holding daemon state.
 */
#ifndef MXG_MXGUARD_H
#define MXG_MXGUARD_H

#include <stdint.h>
#include <time.h>

#include "config.h"

struct event_base;
struct listener;
struct conn;
struct probe;
struct control;
struct engine;

/* Counters the control socket reports. */
struct mxg_stats {
	uint64_t accepted;
	uint64_t refused;	  /* max_connections reached */
	uint64_t passed;	  /* reached the relay stage */
	uint64_t backend_fail;
};

struct mxg {
	struct event_base *base;
	struct cfg *cfg;	/* current configuration (one reference) */
	const char *cfg_path;	/* for reload; NULL: embedded defaults */
	int cfg_missing_ok;
	char *const *overrides;
	int noverrides;
	struct listener *listeners;
	int nlisteners;
	struct conn *conns;	/* every live connection */
	int nconns;
	int stopping;		/* SIGTERM received */
	struct probe *probe;	/* backend capabilities for inspect mode */
	struct control *control;
	struct engine *engine;	/* the taRgrey engine (grey.c) */
	struct mxg_stats stats;
	time_t started;
};

/* mxg_reload - re-read the configuration (SIGHUP, control "reload"). */
int mxg_reload(struct mxg *mxg, char *err, size_t errsz);

#endif
