/*
 * listen.h - listening sockets: opened before privileges are dropped,
 * served by the event loop afterwards.
 */
#ifndef MXG_LISTEN_H
#define MXG_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "listener.h"

struct mxg;
struct evconnlistener;
struct conn_phase;

/*
 * The accept loop's hooks in the connection layer (conn_phase_add): a
 * closed connection leaves the shield's per-source and per-prefix counts.
 */
extern const struct conn_phase listen_phase;

/* listen_somaxconn - the kernel's net.core.somaxconn (128 if unreadable). */
int listen_somaxconn(void);

/*
 * listen_open - create, bind and listen on every smtp_listen address of
 * mxg->cfg, then every listen= address of its services, into
 * mxg->listeners. The backlog is listen_backlog, or somaxconn
 * when 0; a larger value is clamped with a warning. With workers = N > 1,
 * each address gets N sockets in one SO_REUSEPORT group, and a classic
 * BPF program that sends every connection from one source network
 * (prefix_v4, prefix_v6) to the same socket, so each worker sees all of a
 * network's connections and its limits stay exact. Returns 0, or -1 with a
 * message in err (the caller exits).
 */
int listen_open(struct mxg *mxg, char *err, size_t errsz);

/*
 * listen_keep - in worker w (0 <= w < workers) of a daemon with several,
 * accept on worker w's socket of each listener and close this process's
 * copies of the others (the master keeps them: the kernel's group, and
 * which socket a network is sent to, stay as they are when a worker dies).
 */
void listen_keep(struct mxg *mxg, int w);

/*
 * listen_worker_of - which of n workers the kernel sends a connection from
 * sa to: the reuseport program's own hash, for tests and the status.
 */
int listen_worker_of(const struct sockaddr *sa, int n, int prefix_v4, int prefix_v6);

/* listen_start - serve the opened sockets on mxg->base. Returns 0 or -1. */
int listen_start(struct mxg *mxg);

/*
 * listen_pause - accept() on evl failed, out of descriptors as a rule. The
 * client stays in the queue, so accepting again at once would spin (and
 * log) as fast as the loop turns: disable evl until p->retry (a timer the
 * caller made to re-enable it) fires a second later, and log what, with
 * errno, at most once a minute with the count of errors not logged.
 */
void listen_pause(struct evconnlistener *evl, struct listen_pause *p, const char *what);

/* listen_close - stop accepting and close every listening socket. */
void listen_close(struct mxg *mxg);

#endif
