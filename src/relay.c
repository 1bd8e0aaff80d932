/*
 * relay.c - the relay phase.
 *
 * Each side is a socket with a read event, a write event and an evbuffer of
 * bytes queued *for* it. Bytes read from one side (into one static buffer)
 * are sent to the other at once when nothing waits for it; only what the
 * socket does not take is queued and makes the write event pending. This keeps the common case (a short SMTP
 * command or reply) at one read and one write, with no event changes: the
 * relay is what every accepted message goes through, so its system calls
 * are counted (see bench/passthrough). When a queue holds more than
 * RELAY_HIGH bytes, reading from the other side stops until it drains to
 * half: a fast sender cannot make mxguard buffer a 50 MB message. When all
 * relays together hold relay_memory_limit bytes, the mark drops to
 * RELAY_HIGH_TIGHT for everyone until they drain: the total stays bounded.
 *
 * Every wait has a bound: a side that sends nothing (relay_timeout, or the
 * service's timeout=), a side that takes nothing while bytes wait for it
 * (the same), and for SMTP the whole relay (relay_max_time), so neither a
 * client that floods without reading nor one that trickles a byte at a time
 * keeps a backend session for ever. A client that survived the tarpit and
 * then says nothing at all is released after survivor_timeout: a bot that
 * gave up but left its socket open must not hold an smtpd process.
 *
 * A half-close is passed on: when the client shuts down its sending side
 * (after QUIT, as scripts do), the backend's socket is shut down for
 * writing once everything queued for it is out, and its replies still reach
 * the client until the backend closes. When the backend closes first, the
 * client gets what is queued, a FIN, and a few seconds to close in turn
 * (its unread input would otherwise turn our close into an RST that can
 * destroy the last reply).
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
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "grey.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"
#include "relay.h"

#define RELAY_HIGH (256 * 1024)
#define RELAY_HIGH_TIGHT (16 * 1024)
#define RELAY_READ (64 * 1024)
/* How long a peer gets to take our last bytes, or to close after our FIN. */
#define RELAY_FLUSH_SECS 10

struct relay_side {
	int fd;
	struct event *rev, *wev;
	struct evbuffer *out; /* bytes queued for this side */
	uint8_t paused : 1;   /* reading stopped: the other side's queue is full */
	uint8_t eof : 1;      /* this side sent FIN: nothing more to read */
	uint8_t shut : 1;     /* we sent FIN to this side */
};

struct relay {
	struct relay_side cl, be; /* client, backend */
	time_t start;		  /* for relay_max_time */
	time_t last;		  /* last byte either way, for the idle timeout */
	time_t drain_until;	  /* draining: the client's last moment */
	size_t queued;		  /* bytes in both queues, as counted globally */
	int last_code;		  /* code of the last reply line from the backend */
	uint8_t line_pos;	  /* bytes into the current reply line, capped at 4 */
	uint8_t code_acc[3];
	uint8_t not_smtp : 1;	  /* TLS or something else: stop watching */
	uint8_t in_data : 1;	  /* a 354 went by: the next final reply ends the data */
	uint8_t delivered : 1;	  /* a message was accepted (counted once) */
	uint8_t closing : 1;	  /* flushing the last bytes to one side */
	uint8_t draining : 1;	  /* backend gone, client had its FIN: read and drop */
	uint8_t await_client : 1; /* a tarpit survivor that has not spoken yet */
};

/* relay_idle - seconds without a byte either way before the relay ends. */
static int relay_idle(const struct conn *c)
{
	return c->lst->svc >= 0 ? c->cfg->services[c->lst->svc].timeout : c->cfg->relay_timeout;
}

/* relay_account - keep the global count of queued bytes true. */
static void relay_account(struct conn *c)
{
	struct relay *r = c->relay;
	size_t now = evbuffer_get_length(r->cl.out) + evbuffer_get_length(r->be.out);

	c->mxg->stats.relay_bytes += now;
	c->mxg->stats.relay_bytes -= r->queued;
	r->queued = now;
}

/* relay_high - the queue length at which reading from the other side stops. */
static size_t relay_high(const struct conn *c)
{
	return c->mxg->stats.relay_bytes >= (uint64_t)c->cfg->relay_memory_limit
		       ? RELAY_HIGH_TIGHT
		       : RELAY_HIGH;
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
	c->mxg->stats.relay_bytes -= r->queued;
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

/* relay_timed_out - a bound ended the relay: count it, close. */
static void relay_timed_out(struct conn *c)
{
	c->mxg->stats.relay_timeouts++;
	conn_close(c, END_TIMEOUT);
}

/* relay_over_time - has the relay outlived relay_max_time (SMTP only)? */
static int relay_over_time(const struct conn *c, time_t now)
{
	const struct relay *r = c->relay;

	return c->lst->svc < 0 && c->cfg->relay_max_time > 0 &&
	       now - r->start >= c->cfg->relay_max_time;
}

/* relay_drain - the backend is gone and the client had its FIN: drop its bytes. */
static void relay_drain(struct conn *c)
{
	struct relay *r = c->relay;
	struct timeval tv = {RELAY_FLUSH_SECS, 0};

	if (r->cl.eof) {
		conn_close(c, END_NONE);
		return;
	}
	/* A client that closed already (it had our last reply) needs no FIN, no wait. */
	if (conn_discard(c, r->cl.fd) < 0) {
		conn_close(c, END_NONE);
		return;
	}
	r->draining = 1;
	r->drain_until = time(NULL) + RELAY_FLUSH_SECS;
	shutdown(r->cl.fd, SHUT_WR);
	/* Still registered (relay_lost kept it): only the bound changes. */
	event_add(r->cl.rev, &tv);
}

/*
 * relay_flush - write what is queued for s. Returns 0, 1 when the
 * connection was closed (c is gone), or -1 when s failed (the caller treats
 * it as that side being gone).
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
		relay_account(c);
	}
	if (len == 0) {
		event_del(s->wev);
		if (r->closing) {
			/* The last bytes are out. */
			if (s == &r->cl)
				relay_drain(c);
			else
				conn_close(c, END_NONE);
			return 1;
		}
		/* The client's FIN follows everything it sent. */
		if (s == &r->be && r->cl.eof && !s->shut) {
			shutdown(s->fd, SHUT_WR);
			s->shut = 1;
		}
	} else {
		/* A side that takes nothing while bytes wait for it times out. */
		struct timeval tv = {r->closing ? RELAY_FLUSH_SECS : relay_idle(c), 0};

		event_add(s->wev, &tv);
	}
	if (!r->closing && other->paused && len < relay_high(c) / 2) {
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
		/* The peer took nothing for the whole bound. */
		if (r->closing)
			conn_close(c, END_NONE);
		else
			relay_timed_out(c);
		return;
	}
	if (!r->closing && relay_over_time(c, time(NULL))) {
		relay_timed_out(c);
		return;
	}
	if (relay_flush(c, s) < 0)
		relay_lost(c, s, s == &r->cl ? END_CLIENT_ERROR : END_BACKEND_ERROR);
}

/*
 * relay_release_silent - a tarpit survivor said nothing after the hand-off:
 * end the backend session politely (QUIT) and tell the client, once, that
 * it timed out. Both writes are best effort: the connection closes now.
 */
static void relay_release_silent(struct conn *c)
{
	struct relay *r = c->relay;

	evbuffer_add(r->be.out, "QUIT\r\n", 6);
	evbuffer_add_printf(r->cl.out, "421 4.4.2 %.255s Error: timeout exceeded\r\n",
			    c->cfg->myhostname);
	(void)evbuffer_write(r->be.out, r->be.fd);
	(void)evbuffer_write(r->cl.out, r->cl.fd);
	c->mxg->stats.survivors_released++;
	conn_close(c, END_SILENT);
}

/* relay_client_eof - the client half-closed: pass it on, keep the replies coming. */
static void relay_client_eof(struct conn *c)
{
	struct relay *r = c->relay;

	r->cl.eof = 1;
	event_del(r->cl.rev);
	if (evbuffer_get_length(r->be.out) == 0 && !r->be.shut) {
		shutdown(r->be.fd, SHUT_WR);
		r->be.shut = 1;
	}
}

static void relay_drain_read(struct conn *c)
{
	struct relay *r = c->relay;

	if (conn_discard(c, r->cl.fd) < 0 || time(NULL) >= r->drain_until)
		conn_close(c, END_NONE);
}

/*
 * relay_send - bytes just read for side s: written at once when nothing
 * waits before them (the common case: no queue, no event change), queued
 * behind what waits otherwise; only a socket that does not take them all
 * makes the write event pending. Returns 0, or -1 when s failed.
 */
static int relay_send(struct conn *c, struct relay_side *s, const unsigned char *p, size_t n)
{
	size_t queued = evbuffer_get_length(s->out);

	if (queued == 0) {
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w < 0)
			w = 0;
		if ((size_t)w == n)
			return 0;
		p += w;
		n -= (size_t)w;
	}
	if (evbuffer_add(s->out, p, n) < 0)
		return -1;
	relay_account(c);
	if (queued == 0) {
		/* A side that takes nothing while bytes wait for it times out. */
		struct timeval tv = {relay_idle(c), 0};

		event_add(s->wev, &tv);
	}
	return 0;
}

/*
 * relay_closing_read - the client talks while its last bytes go out (the
 * backend is gone): nothing can carry them any more, so they are read and
 * dropped, which keeps our close from turning into an RST. At its EOF (or
 * an error) reading stops; the flush then ends the connection at once.
 */
static void relay_closing_read(struct conn *c)
{
	struct relay *r = c->relay;

	if (conn_discard(c, r->cl.fd) < 0) {
		r->cl.eof = 1;
		event_del(r->cl.rev);
	}
}

/*
 * One buffer serves every read: the event loop is single-threaded and a
 * read is written (or queued) before the callback returns. A buffer taken
 * from the evbuffer per read cost an mmap and a munmap per chunk (64 KiB
 * rounds to a 128 KiB chain, at the malloc mmap threshold).
 */
static unsigned char relay_buf[RELAY_READ];

static void relay_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct relay *r = c->relay;
	struct relay_side *from = fd == r->cl.fd ? &r->cl : &r->be;
	struct relay_side *to = from == &r->cl ? &r->be : &r->cl;
	time_t now = time(NULL);
	ssize_t n;

	if (r->draining) {
		if (what & EV_TIMEOUT)
			conn_close(c, END_NONE);
		else
			relay_drain_read(c);
		return;
	}
	if (r->closing) {
		/* The flush has its own bound (the write event's). */
		if (!(what & EV_TIMEOUT) && from == &r->cl)
			relay_closing_read(c);
		return;
	}
	if (what & EV_TIMEOUT) {
		if (from == &r->cl && r->await_client) {
			relay_release_silent(c);
			return;
		}
		/* Quiet on this side only: the other one may be busy (e.g. DATA). */
		if (now - r->last < relay_idle(c) && !relay_over_time(c, now))
			return;
		relay_timed_out(c);
		return;
	}
	if (relay_over_time(c, now)) {
		relay_timed_out(c);
		return;
	}
	n = recv(fd, relay_buf, sizeof(relay_buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (from == &r->cl && n == 0)
			relay_client_eof(c);
		else if (from == &r->cl)
			relay_lost(c, from, END_CLIENT_ERROR);
		else
			relay_lost(c, from, n == 0 ? END_BACKEND_EOF : END_BACKEND_ERROR);
		return;
	}
	if (from == &r->be && !r->not_smtp)
		relay_watch(c, r, relay_buf, (size_t)n);
	if (from == &r->cl) {
		c->bytes_in += (uint64_t)n;
		if (r->await_client) {
			/* It spoke: an ordinary client from now on. */
			struct timeval tv = {relay_idle(c), 0};

			r->await_client = 0;
			event_add(r->cl.rev, &tv);
		}
	} else {
		c->bytes_out += (uint64_t)n;
	}
	r->last = now;
	if (relay_send(c, to, relay_buf, (size_t)n) < 0) {
		relay_lost(c, to, to == &r->cl ? END_CLIENT_ERROR : END_BACKEND_ERROR);
		return;
	}
	if (evbuffer_get_length(to->out) >= relay_high(c)) {
		if (c->mxg->stats.relay_bytes >= (uint64_t)c->cfg->relay_memory_limit)
			c->mxg->stats.relay_mem_pauses++;
		from->paused = 1;
		event_del(from->rev);
	}
}

/*
 * relay_lost - one side is gone (EOF from the backend, an error on
 * either). Deliver what is queued for the other side, with a last 421 line
 * for a client whose backend vanished mid-session, then close (after a
 * short drain when that side is the client).
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
	/*
	 * Nothing more is read from the backend. The client's read event stays
	 * when it is the side still served: its input is dropped meanwhile
	 * (relay_closing_read) and the drain reuses the registration.
	 */
	event_del(r->be.rev);
	if (gone == &r->cl)
		event_del(r->cl.rev);
	event_del(gone->wev);
	if (gone == &r->be) {
		if (r->last_code == 221) {
			c->end = END_QUIT;
		} else if (!r->not_smtp && r->last_code != 421) {
			evbuffer_add_printf(
			    dest->out,
			    "%s421 4.3.2 %.255s Service not available, closing channel\r\n",
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
	struct timeval silent = {c->cfg->survivor_timeout, 0};

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
	conn_read_event_drop(c);
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
	conn_stage(c, STAGE_RELAY);
	c->mxg->stats.passed++;
	c->lst->stats.passed++;
	r->start = r->last = time(NULL);
	/*
	 * A survivor that pipelined nothing must speak within survivor_timeout
	 * (its RCPT reply is on its way now); one that pipelined is talking.
	 */
	r->await_client = c->survivor && c->cfg->survivor_timeout > 0 && !r->not_smtp;
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
	relay_account(c);
	event_add(r->cl.rev, r->await_client ? &silent : &tv);
	event_add(r->be.rev, &tv);
	int rc = relay_flush(c, &r->be);

	if (rc < 0) {
		relay_lost(c, &r->be, END_BACKEND_ERROR);
		return;
	}
	if (rc > 0)
		return;
	if (relay_flush(c, &r->cl) < 0)
		relay_lost(c, &r->cl, END_CLIENT_ERROR);
}

const struct conn_phase relay_phase = {
	.name = "relay",
	.release = relay_free,
};
