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
 * The socket is watched while the reply is held: a peer that closes, resets
 * or sends anything before the reply is a drop (a real MTA waits for the
 * reply; bytes it pipelined before the hold are already read and kept).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "conn.h"
#include "grey.h"
#include "handoff.h"
#include "mxguard.h"
#include "tarpit.h"

static void tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_TIMEOUT) {
		grey_tarpit_done(c, 1);
		handoff_start(c);
		return;
	}
	grey_tarpit_done(c, 0);
	conn_close(c, END_TARPIT_DROP);
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
	if (c->in != NULL && c->inlen == 0) {
		free(c->in);
		c->in = NULL;
	}
	/* libevent keeps one queue per distinct duration: cheap to ask again. */
	common = event_base_init_common_timeout(c->mxg->base, &tv);
	event_del(c->ev);
	event_assign(c->ev, c->mxg->base, c->fd, EV_READ, tarpit_cb, c);
	event_add(c->ev, common != NULL ? common : &tv);
}
