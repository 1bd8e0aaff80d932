/*
 * relay.c - the relay phase.
 *
 * Two bufferevents; input of one is moved (not copied: evbuffer chains
 * change hands) to the output of the other. When an output holds more than
 * RELAY_HIGH bytes, reading from the other side stops until it drains to
 * half: a fast sender cannot make mxguard buffer a 50 MB message.
 *
 * The backend-to-client direction is watched lightly: it carries only SMTP
 * replies, so keeping the code of the last reply line costs nothing. When
 * the backend goes away without having said goodbye (221 or 421) while the
 * session is still plain SMTP, the client is told "421 4.3.2" instead of
 * seeing a bare close: a temporary failure, never a lost message. Once the
 * stream stops looking like SMTP replies (TLS after STARTTLS), nothing is
 * injected any more.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "mxguard.h"
#include "relay.h"

#define RELAY_HIGH (256 * 1024)
/* How long a client gets to read our last bytes before the socket goes. */
#define RELAY_FLUSH_SECS 10

struct relay {
	struct bufferevent *cb; /* client */
	struct bufferevent *bb; /* backend */
	time_t last;		/* last byte either way, for the idle timeout */
	int last_code;		/* code of the last reply line from the backend */
	uint8_t line_pos;	/* bytes into the current reply line, capped at 4 */
	uint8_t code_acc[3];
	uint8_t not_smtp : 1;	/* TLS or something else: stop watching */
	uint8_t closing : 1;	/* flushing the last bytes to one side */
};

void relay_free(struct conn *c)
{
	struct relay *r = c->relay;

	if (r == NULL)
		return;
	if (r->cb)
		bufferevent_free(r->cb);
	if (r->bb)
		bufferevent_free(r->bb);
	free(r);
	c->relay = NULL;
}

/* relay_watch - follow reply lines in bytes going to the client. */
static void relay_watch(struct relay *r, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n && !r->not_smtp; i++) {
		unsigned char ch = p[i];

		if (ch == '\n') {
			r->line_pos = 0;
			continue;
		}
		if (r->line_pos < 3) {
			if (ch < '0' || ch > '9') {
				r->not_smtp = 1;
				break;
			}
			r->code_acc[r->line_pos++] = ch;
			if (r->line_pos == 3)
				r->last_code = (r->code_acc[0] - '0') * 100 +
					       (r->code_acc[1] - '0') * 10 + (r->code_acc[2] - '0');
		} else if (r->line_pos == 3) {
			r->line_pos = 4;
		}
	}
}

static void relay_watch_buffer(struct relay *r, struct evbuffer *buf)
{
	struct evbuffer_iovec vec[8];
	int n = evbuffer_peek(buf, -1, NULL, vec, 8);

	if (n > 8) {
		/* Many small chains: replies are short, the first 8 tell enough. */
		n = 8;
	}
	for (int i = 0; i < n; i++)
		relay_watch(r, vec[i].iov_base, vec[i].iov_len);
}

static void relay_event_cb(struct bufferevent *bev, short what, void *arg);

/* relay_drained_cb - output is down to half: resume the other side. */
static void relay_drained_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->relay;
	struct bufferevent *other = bev == r->cb ? r->bb : r->cb;

	if (r->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_close(c, END_NONE);
		return;
	}
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(other, EV_READ);
}

static void relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->relay;
	struct bufferevent *other = bev == r->cb ? r->bb : r->cb;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(other);
	size_t n = evbuffer_get_length(in);

	if (r->closing) {
		evbuffer_drain(in, n);
		return;
	}
	if (bev == r->cb) {
		c->bytes_in += n;
	} else {
		c->bytes_out += n;
		if (!r->not_smtp)
			relay_watch_buffer(r, in);
	}
	r->last = time(NULL);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(other, EV_WRITE, RELAY_HIGH / 2, 0);
	}
}

/*
 * relay_close_towards - the other side is gone: flush what is queued for
 * dest (plus an optional last line), then close the connection.
 */
static void relay_close_towards(struct conn *c, struct bufferevent *dest, const char *line,
				enum conn_end end)
{
	struct relay *r = c->relay;
	struct timeval tv = {RELAY_FLUSH_SECS, 0};

	c->end = (uint8_t)end;
	r->closing = 1;
	bufferevent_disable(r->cb, EV_READ);
	bufferevent_disable(r->bb, EV_READ);
	if (line != NULL) {
		bufferevent_write(dest, line, strlen(line));
		c->bytes_out += strlen(line);
	}
	if (evbuffer_get_length(bufferevent_get_output(dest)) == 0) {
		conn_close(c, end);
		return;
	}
	bufferevent_setwatermark(dest, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(dest, NULL, &tv);
	bufferevent_enable(dest, EV_WRITE);
}

static void relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->relay;
	int from_client = bev == r->cb;

	if (r->closing) {
		/* The side we were flushing to failed or timed out: give up. */
		conn_close(c, END_NONE);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		time_t idle = time(NULL) - r->last;

		/* Quiet on this side only: the other one is busy (e.g. DATA). */
		if (idle < c->cfg->relay_timeout) {
			bufferevent_enable(bev, EV_READ);
			return;
		}
		conn_close(c, END_TIMEOUT);
		return;
	}
	if (from_client) {
		/* The client went away: deliver what it sent, then close. */
		relay_close_towards(c, r->bb, NULL,
				    (what & BEV_EVENT_EOF) ? END_CLIENT_EOF : END_CLIENT_ERROR);
		return;
	}
	/* The backend went away. */
	enum conn_end end = (what & BEV_EVENT_EOF) ? END_BACKEND_EOF : END_BACKEND_ERROR;
	const char *line = NULL;
	char buf[300];

	if (r->last_code == 221) {
		end = END_QUIT;
	} else if (!r->not_smtp && r->last_code != 421) {
		snprintf(buf, sizeof(buf), "%s421 4.3.2 %s Service not available, closing channel\r\n",
			 r->line_pos ? "\r\n" : "", c->cfg->myhostname);
		line = buf;
	}
	relay_close_towards(c, r->cb, line, end);
}

void relay_start(struct conn *c, struct bufferevent *bev, const char *left, size_t leftlen)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct timeval tv = {c->cfg->relay_timeout, 0};

	if (r == NULL) {
		bufferevent_free(bev);
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	c->relay = r;
	r->bb = bev;
	r->cb = bufferevent_socket_new(c->mxg->base, c->fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->cb == NULL) {
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	/* The relay owns the client socket now; the dialogue's events go. */
	c->fd = -1;
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->wev != NULL) {
		event_free(c->wev);
		c->wev = NULL;
	}
	c->stage = STAGE_RELAY;
	c->mxg->stats.passed++;
	r->last = time(NULL);
	if (c->outlen > 0) {
		bufferevent_write(r->cb, c->out, c->outlen);
		c->bytes_out += c->outlen;
		free(c->out);
		c->out = NULL;
		c->outlen = 0;
	}
	if (leftlen > 0)
		bufferevent_write(r->bb, left, leftlen);
	free(c->in);
	c->in = NULL;
	c->inlen = 0;
	bufferevent_setcb(r->cb, relay_read_cb, relay_drained_cb, relay_event_cb, c);
	bufferevent_setcb(r->bb, relay_read_cb, relay_drained_cb, relay_event_cb, c);
	bufferevent_set_timeouts(r->cb, &tv, NULL);
	bufferevent_set_timeouts(r->bb, &tv, NULL);
	bufferevent_enable(r->cb, EV_READ | EV_WRITE);
	bufferevent_enable(r->bb, EV_READ | EV_WRITE);
	/* Replies the backend sent together with the last one are relayed now. */
	if (evbuffer_get_length(bufferevent_get_input(r->bb)) > 0)
		relay_read_cb(r->bb, c);
}
