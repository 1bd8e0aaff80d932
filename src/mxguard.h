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
#include "hist.h"

struct event_base;
struct listener;
struct conn;
struct probe;
struct control;
struct engine;
struct shield;
struct store;
struct notify;
struct fw;
struct synwatch;
struct metrics;
struct policy;
struct wshm;
struct worker;

/* Why a connection was refused at accept (shield.c); counted per reason. */
enum refuse_reason {
	REFUSE_OVERLOAD,     /* max_connections reached */
	REFUSE_BLOCKED,	     /* dynamic block (flood detector, shared store) */
	REFUSE_STATIC,	     /* block_clients */
	REFUSE_BOGUS,	     /* RFC 6890 special-purpose source */
	REFUSE_COUNTRY,	     /* country filter of the listener */
	REFUSE_CONN_SOURCE,  /* conn_per_source */
	REFUSE_CONN_PREFIX,  /* conn_per_prefix */
	REFUSE_RATE_SOURCE,  /* rate_per_source */
	REFUSE_RATE_PREFIX,  /* rate_per_prefix */
	REFUSE_ATTACK,	     /* attack policy: not known before the attack */
	REFUSE_NREASONS
};

/* Counters the control socket and the metrics endpoint report. */
/* Sources that cannot be real hosts (counted at accept, never refused on that alone). */
#define MXG_SPOOF_NETBCAST 0 /* the network or broadcast address of its /24 */
#define MXG_SPOOF_SPECIAL 1  /* RFC 6890 special-purpose, on a listener that admits them */

struct mxg_stats {
	uint64_t accepted;
	uint64_t refused;	  /* all refusals at accept */
	uint64_t passed;	  /* reached the relay stage */
	uint64_t backend_fail;
	uint64_t refusals[REFUSE_NREASONS];
	uint64_t verdicts[4];	  /* by enum verdict (rules.h) */
	uint64_t tarpit_drops;	  /* clients that gave up while held */
	uint64_t tarpit_survivals; /* clients that waited the delay out */
	uint64_t grey_defer;	  /* 450: first try or too early */
	uint64_t grey_pass;	  /* a retry passed the greylist */
	uint64_t grey_awl;	  /* passed on the auto-whitelist */
	uint64_t blocks;	  /* dynamic blocks made here or received */
	uint64_t blocks_released;
	uint64_t netblocks;	  /* of blocks: networks (made here or received) */
	uint64_t spoofed[2];	  /* attempts from sources no real host has (MXG_SPOOF_*) */
	uint64_t relay_bytes;	  /* queued in all relays now (gauge) */
	uint64_t relay_mem_pauses; /* reads paused: relay_memory_limit reached */
	uint64_t relay_timeouts;  /* relays ended by a bound (idle, blocked, total) */
	uint64_t survivors_released; /* survivors silent after the hand-off */
	struct hist tarpit_drop_time; /* seconds a dropped client waited */
	struct hist dns_latency;      /* seconds per DNS query */
	struct hist backend_latency;  /* seconds from connect to the backend's greeting */
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
	uint32_t stage_open[8]; /* connections by enum conn_stage (conn_stage keeps them) */
	int conn_cap;		/* clients the descriptor limit carries (main.c); 0: no cap */
	int stopping;		/* SIGTERM received */
	struct probe *probe;	/* backend capabilities for inspect mode */
	struct control *control;
	struct engine *engine;	/* the taRgrey engine (grey.c) */
	struct store *store;	/* durable state (store.c): opened here, lent to the modules */
	struct shield *shield;	/* admission, limits, blocks, detector (shield.c) */
	struct notify *notify;	/* notices to the admin (notify.c) */
	struct fw *fw;		/* nftables helper (fw_nft.c), NULL when off */
	struct synwatch *synwatch; /* kernel listen-queue counters (synwatch.c) */
	struct metrics *metrics; /* Prometheus endpoint (metrics.c), NULL when off */
	struct policy *policy;	/* Postfix policy service (policy.c), NULL when off */
	struct mxg_stats stats;
	time_t started;
	struct wshm *wshm;	/* what the workers share (wshm.c); one slot with workers = 1 */
	int worker;		/* this process's index among them */
	struct worker *wk;	/* a worker's own part (worker.c); NULL with workers = 1 */
};

/* mxg_reload - re-read the configuration (SIGHUP, control "reload"). */
int mxg_reload(struct mxg *mxg, char *err, size_t errsz);

#endif
