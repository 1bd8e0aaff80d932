/*
 * relay.c - the relay phase.
 *
 * Each side is a socket with a read event, a write event and an evbuffer of
 * bytes queued *for* it. Bytes read from one side are appended to the
 * other's queue and written at once; only what the socket does not take
 * makes the write event pending. This keeps the common case (a short SMTP
 * command or reply) at one read and one write, with no event changes: the
 * relay is what every accepted message goes through, so its system calls
 * are counted (see bench/passthrough). When a queue holds more than
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "grey.h"
#include "listen.h"
#include "log.h"
#include "mxguard.h"
#include "relay.h"

#define RELAY_HIGH (256 * 1024)
#define RELAY_READ (64 * 1024)
/* How long a peer gets to take our last bytes before its socket goes. */
#define RELAY_FLUSH_SECS 10

struct relay_side {
	int fd;
	struct event *rev, *wev;
	struct evbuffer *out; /* bytes queued for this side */
	uint8_t paused : 1;   /* reading stopped: the other side's queue is full */
};

struct relay {
	struct relay_side cl, be; /* client, backend */
	time_t last;		  /* last byte either way, for the idle timeout */
	int last_code;		  /* code of the last reply line from the backend */
	uint8_t line_pos;	  /* bytes into the current reply line, capped at 4 */
	uint8_t code_acc[3];
	uint8_t not_smtp : 1;	  /* TLS or something else: stop watching */
	uint8_t in_data : 1;	  /* a 354 went by: the next final reply ends the data */
	uint8_t delivered : 1;	  /* a message was accepted (counted once) */
	uint8_t closing : 1;	  /* flushing the last bytes to one side */
};

/* relay_idle - seconds without a byte either way before the relay ends. */
static int relay_idle(const struct conn *c)
{
	return c->lst->svc >= 0 ? c->cfg->services[c->lst->svc].timeout : c->cfg->relay_timeout;
}

static void relay_side_free(struct relay_side *s)
{
	if (s->rev)
		event_free(s->rev);
	if (s->wev)
		event_free(s->wev);
	if (s->out)
		evbuffer_free(s->out);
	if (s->fd >= 0)
		close(s->fd);
}

void relay_free(struct conn *c)
{
	struct relay *r = c->relay;

	if (r == NULL)
		return;
	relay_side_free(&r->cl);
	relay_side_free(&r->be);
	free(r);
	c->relay = NULL;
}

/*
 * relay_final - a final reply line ("NNN " or "NNN\r") began. After a 354
 * the next final reply answers the end of data: a 2xx is a message the
 * backend accepted, which is what earns a suspect's network the
 * auto-whitelist (grey_delivered), once per connection. BDAT ... LAST is
 * not followed (it would need parsing the client's chunks); nor is
 * anything after STARTTLS, where the replies are encrypted.
 */
static void relay_final(struct conn *c, struct relay *r)
{
	if (r->last_code == 354) {
		r->in_data = 1;
		return;
	}
	if (!r->in_data)
		return;
	r->in_data = 0;
	if (r->last_code / 100 == 2 && !r->delivered) {
		r->delivered = 1;
		grey_delivered(c);
	}
}

/* relay_watch - follow reply lines in bytes going to the client. */
static void relay_watch(struct conn *c, struct relay *r, const unsigned char *p, size_t n)
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
			if (ch != '-')
				relay_final(c, r);
		}
	}
}

static void relay_lost(struct conn *c, struct relay_side *gone, enum conn_end end);

/*
 * relay_flush - write what is queued for s. Returns 0, or -1 when s failed
 * (the caller treats it as that side being gone).
 */
static int relay_flush(struct conn *c, struct relay_side *s)
{
	struct relay *r = c->relay;
	struct relay_side *other = s == &r->cl ? &r->be : &r->cl;
	size_t len = evbuffer_get_length(s->out);

	if (len > 0) {
		int n = evbuffer_write(s->out, s->fd);

		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		len = evbuffer_get_length(s->out);
	}
	if (len == 0) {
		event_del(s->wev);
		if (r->closing) {
			conn_close(c, END_NONE);
			return 1;
		}
	} else if (r->closing) {
		struct timeval tv = {RELAY_FLUSH_SECS, 0};

		event_add(s->wev, &tv);
	} else {
		event_add(s->wev, NULL);
	}
	if (!r->closing && other->paused && len < RELAY_HIGH / 2) {
		struct timeval tv = {relay_idle(c), 0};

		other->paused = 0;
		event_add(other->rev, &tv);
	}
	return 0;
}

static void relay_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->relay;
	struct relay_side *s = fd == r->cl.fd ? &r->cl : &r->be;

	if (what & EV_TIMEOUT) {
		/* Only armed while closing: the peer does not take our last bytes. */
		conn_close(c, END_NONE);
		return;
	}
	if (relay_flush(c, s) < 0)
		relay_lost(c, s, s == &r->cl ? END_CLIENT_ERROR : END_BACKEND_ERROR);
}

static void relay_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->relay;
	struct relay_side *from = fd == r->cl.fd ? &r->cl : &r->be;
	struct relay_side *to = from == &r->cl ? &r->be : &r->cl;
	struct evbuffer_iovec v[2];
	ssize_t n;
	int nv;

	if (what & EV_TIMEOUT) {
		/* Quiet on this side only: the other one may be busy (e.g. DATA). */
		if (time(NULL) - r->last < relay_idle(c))
			return;
		conn_close(c, END_TIMEOUT);
		return;
	}
	nv = evbuffer_reserve_space(to->out, RELAY_READ, v, 2);
	if (nv < 0) {
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	n = readv(fd, (struct iovec *)v, nv);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		evbuffer_commit_space(to->out, v, 0);
		if (from == &r->cl)
			relay_lost(c, from, n == 0 ? END_CLIENT_EOF : END_CLIENT_ERROR);
		else
			relay_lost(c, from, n == 0 ? END_BACKEND_EOF : END_BACKEND_ERROR);
		return;
	}
	/* Trim the vectors to what was read, as evbuffer_commit_space wants. */
	size_t left = (size_t)n;

	for (int i = 0; i < nv; i++) {
		if (v[i].iov_len > left)
			v[i].iov_len = left;
		left -= v[i].iov_len;
		if (from == &r->be && !r->not_smtp)
			relay_watch(c, r, v[i].iov_base, v[i].iov_len);
	}
	evbuffer_commit_space(to->out, v, nv);
	if (from == &r->cl)
		c->bytes_in += (uint64_t)n;
	else
		c->bytes_out += (uint64_t)n;
	r->last = time(NULL);
	if (evbuffer_get_length(to->out) >= RELAY_HIGH) {
		from->paused = 1;
		event_del(from->rev);
	}
	if (relay_flush(c, to) < 0)
		relay_lost(c, to, to == &r->cl ? END_CLIENT_ERROR : END_BACKEND_ERROR);
}

/*
 * relay_lost - one side is gone (EOF, error). Deliver what is queued for
 * the other side, with a last 421 line for a client whose backend vanished
 * mid-session, then close.
 */
static void relay_lost(struct conn *c, struct relay_side *gone, enum conn_end end)
{
	struct relay *r = c->relay;
	struct relay_side *dest = gone == &r->cl ? &r->be : &r->cl;

	if (r->closing) {
		conn_close(c, END_NONE);
		return;
	}
	c->end = (uint8_t)end;
	r->closing = 1;
	event_del(r->cl.rev);
	event_del(r->be.rev);
	event_del(gone->wev);
	if (gone == &r->be) {
		if (r->last_code == 221) {
			c->end = END_QUIT;
		} else if (!r->not_smtp && r->last_code != 421) {
			evbuffer_add_printf(dest->out,
					    "%s421 4.3.2 %s Service not available, closing channel\r\n",
					    r->line_pos ? "\r\n" : "", c->cfg->myhostname);
		}
	}
	if (relay_flush(c, dest) < 0)
		conn_close(c, END_NONE);
}

static int relay_side_init(struct conn *c, struct relay_side *s, int fd)
{
	struct event_base *base = c->mxg->base;

	s->fd = fd;
	s->out = evbuffer_new();
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, relay_read_cb, c);
	s->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, relay_write_cb, c);
	return s->out && s->rev && s->wev ? 0 : -1;
}

void relay_start(struct conn *c, int bfd, struct evbuffer *to_client,
		 struct evbuffer *to_backend)
{
	struct relay *r = calloc(1, sizeof(*r));
	struct timeval tv = {relay_idle(c), 0};

	if (r == NULL) {
		close(bfd);
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	r->cl.fd = r->be.fd = -1;
	/* Other services are not SMTP: nothing to watch, nothing to inject. */
	r->not_smtp = c->lst->svc >= 0;
	c->relay = r;
	/* The relay owns the client socket now; the dialogue's events go. */
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->wev != NULL) {
		event_free(c->wev);
		c->wev = NULL;
	}
	int cfd = c->fd;

	c->fd = -1;
	if (relay_side_init(c, &r->cl, cfd) < 0 || relay_side_init(c, &r->be, bfd) < 0) {
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	c->stage = STAGE_RELAY;
	c->mxg->stats.passed++;
	c->lst->stats.passed++;
	r->last = time(NULL);
	if (c->outlen > 0) {
		/* Counted as sent when relay_flush writes it: count it here once. */
		evbuffer_add(r->cl.out, c->out, c->outlen);
		c->bytes_out += c->outlen;
		free(c->out);
		c->out = NULL;
		c->outlen = 0;
	}
	if (evbuffer_get_length(to_client) > 0) {
		struct evbuffer_iovec v[4];
		int n = evbuffer_peek(to_client, -1, NULL, v, 4);

		for (int i = 0; i < n && i < 4; i++)
			relay_watch(c, r, v[i].iov_base, v[i].iov_len);
		c->bytes_out += evbuffer_get_length(to_client);
		evbuffer_add_buffer(r->cl.out, to_client);
	}
	evbuffer_add_buffer(r->be.out, to_backend);
	event_add(r->cl.rev, &tv);
	event_add(r->be.rev, &tv);
	if (relay_flush(c, &r->be) < 0) {
		relay_lost(c, &r->be, END_BACKEND_ERROR);
		return;
	}
	if (relay_flush(c, &r->cl) < 0)
		relay_lost(c, &r->cl, END_CLIENT_ERROR);
}
