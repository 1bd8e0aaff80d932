/*
 * listen.h - listening sockets: opened before privileges are dropped,
 * served by the event loop afterwards.
 */
#ifndef MXG_LISTEN_H
#define MXG_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "netaddr.h"

struct mxg;
struct evconnlistener;
struct event;

struct listener {
	struct mxg *mxg;
	struct netaddr addr;
	char name[NETADDR_STRLEN]; /* "127.0.0.1:2525", for logs */
	int fd;
	int backlog;
	struct evconnlistener *evl;
	struct event *retry; /* re-enable after EMFILE/ENFILE */
	char service[CFG_NAME_MAX]; /* "smtp", or the name of a guarded service */
	int svc;		    /* index in cfg->services; -1: an SMTP listener */
	int group;		    /* detector group (shield.c) */
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

/* listen_close - stop accepting and close every listening socket. */
void listen_close(struct mxg *mxg);

#endif
