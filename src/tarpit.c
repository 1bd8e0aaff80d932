/*
 * tarpit.c - hold and watch.
 *
 * A held connection is what mxguard has most of under a spam run, so it
 * costs little: the connection struct, one read event in a libevent common
 * timeout queue (all holds share one duration, so adding and expiring is
 * O(1) instead of a heap operation), and no input buffer. Postfix's own
 * "sleep" restriction holds a whole smtpd process per client instead, even
 * after the bot has gone: that is the problem this file solves.
 *
 * The socket is watched while the reply is held: a peer that closes or
 * resets is a drop. A real MTA may pipeline (RFC 2920: the rest of its
 * RCPTs and DATA in the same write): smtp_hold_read keeps those bytes for
 * the backend, up to 16 KiB; only bytes that break the protocol (data
 * before 354, commands that must not be pipelined, garbage) mark a bot.
 *
 * A peer can also vanish without a word: its host is switched off, or a NAT
 * box on the way forgets the connection. No FIN, no RST arrives, and a hold
 * that only waits would hand a dead connection to the backend. So the held
 * socket probes: TCP keepalive, tuned from tarpit_delay (tarpit_probe_times),
 * makes the kernel fail a peer that does not answer well before the hold
 * ends; the error wakes the read event (a drop), and a hold that ends with an
 * error pending on the socket is a drop too. Nothing is sent during the hold
 * (keepalive probes carry no data, so the client sees nothing of them), and
 * the probing is switched off again at the hand-off.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/event.h>

#include "conn.h"
#include "grey.h"
#include "handoff.h"
#include "log.h"
#include "mxguard.h"
#include "smtp.h"
#include "tarpit.h"

/* Keepalive probes sent before an unanswering peer is failed. */
#define TARPIT_PROBES 3

/* The keepalive schedule of a held socket, in seconds. */
struct tarpit_probe {
	int idle;	/* quiet time before the first probe */
	int interval;	/* between probes */
	int count;	/* unanswered probes that fail the peer */
	int fail_after; /* idle + count * interval: a vanished peer is dropped by then */
};

/* tarpit_probe_times - the schedule for a hold of delay seconds (>= 1). */
static void tarpit_probe_times(int delay, struct tarpit_probe *p)
{
	/*
	 * Idle a quarter of the hold, then TARPIT_PROBES probes a tenth of it
	 * apart: a vanished peer is failed after about 55 % of the hold
	 * (125s: 31 + 3 x 12 = 67s), and a live one answers each probe with
	 * an ACK long before that. The kernel counts in whole seconds, at
	 * least 1: holds under about 6s end before a vanished peer is found.
	 */
	p->idle = delay / 4 > 0 ? delay / 4 : 1;
	p->interval = delay / 10 > 0 ? delay / 10 : 1;
	p->count = TARPIT_PROBES;
	p->fail_after = p->idle + p->count * p->interval;
}

/*
 * tarpit_probe - switch keepalive probing of fd on (on = 1, with the times
 * for delay) or off. TCP_USER_TIMEOUT covers the case keepalive cannot: a
 * reply of ours still unacknowledged when the peer vanished (no probes are
 * sent while data is in flight; retransmissions alone take ~15 minutes to
 * give up). Failures are logged and otherwise ignored: the hold still works,
 * it only cannot see a vanished peer.
 */
static void tarpit_probe(int fd, int on, int delay)
{
	struct tarpit_probe p = {0, 0, 0, 0};
	unsigned int user_ms;
	int ok = 1;

	if (on)
		tarpit_probe_times(delay, &p);
	user_ms = (unsigned int)p.fail_after * 1000;
	ok &= setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0;
	if (on) {
		ok &= setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &p.idle, sizeof(p.idle)) == 0;
		ok &= setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &p.interval, sizeof(p.interval)) ==
		      0;
		ok &= setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &p.count, sizeof(p.count)) == 0;
	}
	ok &= setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms)) == 0;
	if (!ok)
		log_warn("tarpit: keepalive setup failed: %s", strerror(errno));
}

/* tarpit_peer_error - the error the kernel holds for fd (0: none). */
static int tarpit_peer_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static void tarpit_drop(struct conn *c)
{
	grey_tarpit_done(c, 0);
	conn_close(c, END_TARPIT_DROP);
}

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	/* Reading SO_ERROR clears it: read it once, for the drop's log line. */
	int err = tarpit_peer_error(c->fd);
	uint32_t end, now;
	int rc;

	if ((what & EV_TIMEOUT) && err == 0) {
		tarpit_probe(c->fd, 0, 0);
		grey_tarpit_done(c, 1);
		c->survivor = c->inlen == 0; /* pipelined: it has spoken */
		handoff_start(c);
		return;
	}
	if (err != 0) {
		/* Keepalive found no peer (ETIMEDOUT), or an ICMP error came back. */
		char ip[NETADDR_STRLEN];

		netaddr_ip((const struct sockaddr *)&c->client.ss, ip, sizeof(ip));
		log_info("tarpit peer lost client=%s error=%s", ip, strerror(err));
		tarpit_drop(c);
		return;
	}
	if ((rc = smtp_hold_read(c)) < 0) {
		tarpit_drop(c);
		return;
	}
	/* Legal pipelining: hold on for what is left of the delay. */
	end = c->held_ms + (uint32_t)c->cfg->tarpit_delay * 1000;
	now = conn_ms(c);
	struct timeval tv = {0, 1000};

	if (end > now) {
		tv.tv_sec = (time_t)((end - now) / 1000);
		tv.tv_usec = (suseconds_t)((end - now) % 1000) * 1000;
	}
	/* Full of legal commands: a timer alone, the kernel keeps the rest. */
	event_add(conn_read_event(c, rc == 1 ? -1 : c->fd, rc == 1 ? 0 : EV_READ, tarpit_cb), &tv);
}

void tarpit_start(struct conn *c)
{
	struct timeval tv = {c->cfg->tarpit_delay, 0};
	const struct timeval *common;
	struct timeval now, d;

	conn_stage(c, STAGE_TARPIT);
	/* The clock of c->start; grey_tarpit_done reads the same one. */
	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	c->held_ms = d.tv_sec < 0 ? 0 : (uint32_t)(d.tv_sec * 1000 + d.tv_usec / 1000);
	if (smtp_hold_start(c) < 0) {
		tarpit_drop(c);
		return;
	}
	tarpit_probe(c->fd, 1, c->cfg->tarpit_delay);
	/* libevent keeps one queue per distinct duration: cheap to ask again. */
	common = event_base_init_common_timeout(c->mxg->base, &tv);
	event_add(conn_read_event(c, c->fd, EV_READ, tarpit_cb), common != NULL ? common : &tv);
}
