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
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "conn.h"
#include "grey.h"
#include "handoff.h"
#include "mxguard.h"
#include "smtp.h"
#include "tarpit.h"

static void tarpit_drop(struct conn *c)
{
	grey_tarpit_done(c, 0);
	conn_close(c, END_TARPIT_DROP);
}

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint32_t end, now;
	int rc;

	if (what & EV_TIMEOUT) {
		grey_tarpit_done(c, 1);
		c->survivor = 1;
		handoff_start(c);
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
	event_assign(c->ev, c->mxg->base, rc == 1 ? -1 : c->fd, rc == 1 ? 0 : EV_READ, tarpit_cb,
		     c);
	event_add(c->ev, &tv);
}

void tarpit_start(struct conn *c)
{
	struct timeval tv = {c->cfg->tarpit_delay, 0};
	const struct timeval *common;
	struct timeval now, d;

	c->stage = STAGE_TARPIT;
	/* The clock of c->start; grey_tarpit_done reads the same one. */
	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	c->held_ms = d.tv_sec < 0 ? 0 : (uint32_t)(d.tv_sec * 1000 + d.tv_usec / 1000);
	if (smtp_hold_start(c) < 0) {
		tarpit_drop(c);
		return;
	}
	/* libevent keeps one queue per distinct duration: cheap to ask again. */
	common = event_base_init_common_timeout(c->mxg->base, &tv);
	event_del(c->ev);
	event_assign(c->ev, c->mxg->base, c->fd, EV_READ, tarpit_cb, c);
	event_add(c->ev, common != NULL ? common : &tv);
}
