/*
 * NAME
 *	synwatch - SYN-flood and accept-queue awareness
 * SYNOPSIS
 *	#include "synwatch.h"
 * DESCRIPTION
 *	A client whose handshake overflows the kernel's queues never reaches
 *	mxguard: it is dropped (or answered with a SYN cookie) before
 *	accept(), and nothing in mxguard's own logs shows it. Every
 *	synwatch_interval seconds this module reads the kernel's TcpExt
 *	counters (kstat.c) and the accept queue of each of mxguard's
 *	listeners, and when the counters moved since the previous reading it
 *	logs one warning with the moves, the fullest queue of ours, the
 *	sysctls that size the queues and what to do about them.
 *
 *	The counters belong to the network namespace, not to mxguard: every
 *	listener on the host moves them, and the log line says "host-wide".
 *	The queue numbers are mxguard's own (TCP_INFO on our sockets).
 *
 *	The interval is re-read from the running configuration on every tick,
 *	so a reload applies from the next one. While it is 0 nothing is read;
 *	the timer only looks again every SW_OFF_RECHECK seconds whether a
 *	reload turned it on, and the first reading after that is a baseline.
 * DIAGNOSTICS
 *	One warning per interval at most when the counters moved; an info
 *	line when a queue of ours is over half full but no counter moved; a
 *	warning when /proc/net/netstat cannot be read (once, until it can
 *	again).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "kstat.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"
#include "synwatch.h"

#define SW_OFF_RECHECK 5 /* seconds between looks at a 0 interval */
#define SW_LINE 1024	 /* one log line's text, at most */

_Static_assert(KSTAT_NCOUNTERS == sizeof(((struct synwatch_view *)0)->counters) / sizeof(uint64_t),
	       "synwatch_view.counters must hold every kstat counter");

struct synwatch {
	struct mxg *mxg;
	struct event *tick;
	struct kstat_counters prev; /* the previous reading */
	int have_prev;		    /* 0: next reading is a baseline */
	int read_failing;	    /* the failure is logged already */
	struct timespec prev_at;    /* CLOCK_MONOTONIC of prev */
	int interval;		    /* as last logged; -1: not yet */
	struct synwatch_view view;
};

/* The fullest of our accept queues, by share of its backlog. */
struct sw_queue {
	const char *name; /* NULL: no listener could be read */
	uint32_t queue, backlog;
};

/* sw_arm - schedule the next tick from the running configuration. */
static void sw_arm(struct synwatch *sw)
{
	int secs = sw->mxg->cfg->synwatch_interval;
	struct timeval tv = {secs > 0 ? secs : SW_OFF_RECHECK, 0};

	evtimer_add(sw->tick, &tv);
}

/*
 * sw_queues - read each of our listeners' accept queue. The fullest
 * (largest queue/backlog share) goes to *fullest, the longest queue to
 * the view. A closed listener (fd -1 during shutdown) is skipped.
 */
static void sw_queues(struct synwatch *sw, struct sw_queue *fullest)
{
	struct mxg *mxg = sw->mxg;
	uint32_t longest = 0;

	memset(fullest, 0, sizeof(*fullest));
	for (int i = 0; i < mxg->nlisteners; i++) {
		const struct listener *l = &mxg->listeners[i];
		uint32_t q, b;

		if (l->fd < 0 || kstat_listen_queue(l->fd, &q, &b) < 0)
			continue;
		if (q > longest)
			longest = q;
		/* q/b > fq/fb, without division; b is 0 for listen(fd, 0). */
		if (fullest->name == NULL ||
		    (uint64_t)q * (fullest->backlog ? fullest->backlog : 1) >
			(uint64_t)fullest->queue * (b ? b : 1)) {
			fullest->name = l->name;
			fullest->queue = q;
			fullest->backlog = b;
		}
	}
	sw->view.queue_max = longest;
}

/* sw_append - printf to the end of buf (size sz), cutting what does not fit. */
static void sw_append(char *buf, size_t sz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sw_append(char *buf, size_t sz, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= sz)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, sz - len, fmt, ap);
	va_end(ap);
}

/* sw_queue_text - "127.0.0.1:25 queue 5/4" into buf, or "none readable". */
static void sw_queue_text(char *buf, size_t sz, const struct sw_queue *fq)
{
	if (fq->name == NULL)
		snprintf(buf, sz, "none readable");
	else
		snprintf(buf, sz, "%s queue %" PRIu32 "/%" PRIu32 " now", fq->name, fq->queue,
			 fq->backlog);
}

/*
 * sw_warn - the counters moved: one line with the moves, our fullest
 * queue, the sysctls as they are now and the advice. The advice is the
 * same every time on purpose: the queues are a chain (listen(2)'s backlog
 * is capped by somaxconn, half-open connections by tcp_max_syn_backlog),
 * so raising one alone changes nothing, and cookies are what keeps a SYN
 * flood from locking real clients out.
 */
static void sw_warn(struct synwatch *sw, long elapsed, const struct sw_queue *fq)
{
	char line[SW_LINE], q[128];

	snprintf(line, sizeof(line),
		 "synwatch: host-wide TCP listen counters moved in %lds:", elapsed);
	for (int i = 0; i < KSTAT_NCOUNTERS; i++)
		if (sw->view.deltas[i] > 0)
			sw_append(line, sizeof(line), " %s +%" PRIu64, kstat_names[i],
				  sw->view.deltas[i]);
	sw_queue_text(q, sizeof(q), fq);
	sw_append(line, sizeof(line), "; fullest listener of ours: %s", q);
	sw_append(line, sizeof(line),
		  "; raise listen_backlog, net.core.somaxconn and "
		  "net.ipv4.tcp_max_syn_backlog together; keep net.ipv4.tcp_syncookies = 1 "
		  "(now:");
	for (int i = 0; i < KSTAT_NSYSCTLS; i++) {
		long v = kstat_sysctl((enum kstat_sysctl)i);

		if (i == KSTAT_ABORT_OVERFLOW)
			continue; /* not part of this advice */
		if (v >= 0)
			sw_append(line, sizeof(line), " %s = %ld", kstat_sysctl_keys[i], v);
		else
			sw_append(line, sizeof(line), " %s unreadable", kstat_sysctl_keys[i]);
	}
	sw_append(line, sizeof(line), ")");
	log_warn("%s", line);
	sw->view.warnings++;
}

/* sw_read - one reading: counters, deltas, queues, and at most one line. */
static void sw_read(struct synwatch *sw)
{
	struct kstat_counters cur;
	struct sw_queue fq;
	struct timespec now;
	char err[256];
	int moved = 0;
	long elapsed;

	clock_gettime(CLOCK_MONOTONIC, &now);
	sw_queues(sw, &fq);
	if (kstat_counters_read(&cur, err, sizeof(err)) < 0) {
		if (!sw->read_failing)
			log_warn("synwatch: %s; SYN-flood counters unavailable until it can "
				 "be read",
				 err);
		sw->read_failing = 1;
		sw->have_prev = 0;
		memset(sw->view.deltas, 0, sizeof(sw->view.deltas));
		return;
	}
	if (sw->read_failing)
		log_info("synwatch: kernel TCP counters readable again");
	sw->read_failing = 0;
	for (int i = 0; i < KSTAT_NCOUNTERS; i++) {
		uint64_t d = 0;

		/*
		 * A counter that went back (it cannot, short of a kernel
		 * change) or that one of the two readings lacks is no move.
		 */
		if (sw->have_prev && cur.have[i] && sw->prev.have[i] &&
		    cur.value[i] > sw->prev.value[i])
			d = cur.value[i] - sw->prev.value[i];
		sw->view.counters[i] = cur.have[i] ? cur.value[i] : 0;
		sw->view.deltas[i] = d;
		if (d > 0)
			moved = 1;
	}
	elapsed = sw->have_prev ? (long)(now.tv_sec - sw->prev_at.tv_sec) : 0;
	sw->prev = cur;
	sw->prev_at = now;
	sw->have_prev = 1;
	if (moved) {
		sw_warn(sw, elapsed, &fq);
	} else if (fq.name != NULL && fq.backlog > 0 && (uint64_t)fq.queue * 2 > fq.backlog) {
		char q[128];

		sw_queue_text(q, sizeof(q), &fq);
		log_info("synwatch: accept queue over half full: %s (mxguard is slow to "
			 "accept; no host-wide overflow since the last reading)",
			 q);
	}
}

/*
 * sw_run - one tick: say when the interval changed (start, reload), then
 * read, or forget the previous reading while off so that the first one
 * after a reload is a fresh baseline rather than a move over the whole
 * time it was off.
 */
static void sw_run(struct synwatch *sw)
{
	int secs = sw->mxg->cfg->synwatch_interval;

	if (secs != sw->interval) {
		if (secs > 0)
			log_info("synwatch: reading host-wide TCP listen counters every %ds", secs);
		else
			log_info("synwatch: off (synwatch_interval = 0)");
		sw->interval = secs;
	}
	if (secs > 0)
		sw_read(sw);
	else
		sw->have_prev = 0;
	sw_arm(sw);
}

static void sw_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct synwatch *sw = arg;

	/* Shutting down: the listeners are closed, nothing left to watch. */
	if (!sw->mxg->stopping)
		sw_run(sw);
}

struct synwatch *synwatch_start(struct mxg *mxg)
{
	struct synwatch *sw = calloc(1, sizeof(*sw));

	if (sw == NULL || (sw->tick = evtimer_new(mxg->base, sw_tick_cb, sw)) == NULL) {
		log_warn("synwatch: out of memory: SYN-flood counters not watched");
		free(sw);
		return NULL;
	}
	sw->mxg = mxg;
	sw->interval = -1;
	/* The baseline now, so that the first tick can already tell a move. */
	sw_run(sw);
	return sw;
}

const struct synwatch_view *synwatch_view(const struct synwatch *sw)
{
	return sw != NULL ? &sw->view : NULL;
}

void synwatch_stop(struct synwatch **swp)
{
	struct synwatch *sw = *swp;

	if (sw == NULL)
		return;
	event_free(sw->tick);
	free(sw);
	*swp = NULL;
}
