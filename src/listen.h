/*
 * listen.h - listening sockets: opened before privileges are dropped,
 * served by the event loop afterwards.
 */
#ifndef MXG_LISTEN_H
#define MXG_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "netaddr.h"

struct mxg;
struct evconnlistener;
struct event;

/* An accept pause: the timer that ends it and the log's rate limit. */
struct listen_pause {
	struct event *retry;	/* re-enables the listener a second later */
	time_t warned;		/* last accept warning logged */
	unsigned long quiet;	/* accept errors not logged since then */
};

struct listener {
	struct mxg *mxg;
	struct netaddr addr;
	char name[NETADDR_STRLEN]; /* "127.0.0.1:2525", for logs */
	int fd;
	int backlog;
	struct evconnlistener *evl;
	struct listen_pause pause; /* after EMFILE/ENFILE */
	char service[CFG_NAME_MAX]; /* "smtp", or the name of a guarded service */
	int svc;		    /* index in cfg->services; -1: an SMTP listener */
	int group;		    /* detector group (shield_attack.c) */
	/* Counted per listener for the metrics (verdicts by enum verdict). */
	struct listener_stats {
		uint64_t accepted, refused, passed, verdicts[4];
	} stats;
};

/* listen_somaxconn - the kernel's net.core.somaxconn (128 if unreadable). */
int listen_somaxconn(void);

/*
 * listen_open - create, bind and listen on every smtp_listen address of
 * mxg->cfg, then every listen= address of its services, into
 * mxg->listeners. The backlog is listen_backlog, or somaxconn
 * when 0; a larger value is clamped with a warning. Returns 0, or -1 with a
 * message in err (the caller exits).
 */
int listen_open(struct mxg *mxg, char *err, size_t errsz);

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
