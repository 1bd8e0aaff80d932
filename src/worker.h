/*
 * worker.h - workers = N: the master process that binds and supervises,
 * and the worker processes that serve (worker.c).
 */
#ifndef MXG_WORKER_H
#define MXG_WORKER_H

#include <stddef.h>

struct mxg;

/*
 * worker_fork - with mxg->wshm sized for N > 1 workers, fork them after
 * everything is bound (and before privileges are dropped): each returns
 * here with its index, ready to drop privileges and run the daemon; the
 * calling process becomes their master and never returns (it exits when
 * they have all stopped, 1 when one could not start). notify gets the
 * master's systemd states. With N = 1, returns 0 at once.
 */
int worker_fork(struct mxg *mxg, void (*notify)(const char *state));

/*
 * worker_started - in a worker whose daemon is up (event loop, store,
 * shield): join the others (the ring, the store's messages to its
 * siblings, the detector's shared counts) and tell the master it is
 * ready. Returns 0, or -1 when its timer cannot be made.
 */
int worker_started(struct mxg *mxg);

/*
 * worker_reload - the control socket's "reload": this process reloads,
 * then the other workers (mxg_reload's contract).
 */
int worker_reload(struct mxg *mxg, char *err, size_t errsz);

/* worker_stop - at the end of a worker (or of the one process): leave the ring. */
void worker_stop(struct mxg *mxg);

#endif
