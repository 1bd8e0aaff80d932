/*
 * listener.h - what a listening socket is, as the layers below the accept
 * loop see it: its address and name for logs, which service it serves, its
 * detector group, and its counters. A type header only: the functions that
 * open and serve listeners are in listen.h, above the connections.
 */
#ifndef MXG_LISTENER_H
#define MXG_LISTENER_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "netaddr.h"

struct mxg;
struct evconnlistener;
struct event;

/* An accept pause: the timer that ends it and the log's rate limit. */
struct listen_pause {
	struct event *retry; /* re-enables the listener a second later */
	time_t warned;	     /* last accept warning logged */
	unsigned long quiet; /* accept errors not logged since then */
};

struct listener {
	struct mxg *mxg;
	struct netaddr addr;
	char name[NETADDR_STRLEN]; /* "127.0.0.1:2525", for logs */
	int fd;			    /* the socket this process accepts on */
	int *wfd;		    /* workers > 1: one socket per worker (SO_REUSEPORT) */
	int nwfd;		    /* workers whose sockets this process still holds */
	int backlog;
	struct evconnlistener *evl;
	struct listen_pause pause;  /* after EMFILE/ENFILE */
	uint32_t open;		    /* its connections open now (conn.c) */
	char service[CFG_NAME_MAX]; /* "smtp", or the name of a guarded service */
	int svc;		    /* index in cfg->services; -1: an SMTP listener */
	int group;		    /* detector group (shield_attack.c) */
	/* Counted per listener for the metrics (verdicts by enum verdict). */
	struct listener_stats {
		uint64_t accepted, refused, passed, verdicts[4];
	} stats;
};

#endif
