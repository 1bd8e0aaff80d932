/*
 * backend.c - talking SMTP to the backend MTA during a hand-off or probe.
 *
 * The reply reader is bounded like everything that reads a socket: a reply
 * may have REPLY_LINES_MAX lines of REPLY_LINE_MAX bytes, and reading stops
 * at BACKEND_INBUF buffered bytes. A reply is delivered to the owner, then
 * consumed, unless the owner detached or freed the connection meanwhile:
 * the callback sets b->gone and the loop here leaves without touching b.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"

#define BACKEND_INBUF (REPLY_LINE_MAX * REPLY_LINES_MAX)

struct backend {
	struct bufferevent *bev;
	backend_cb cb;
	void *arg;
	int *gone;	  /* set by detach/free while a callback runs */
	size_t delivered; /* length of the reply the callback is looking at */
};

static void backend_fail(struct backend *b, const char *why)
{
	b->cb(b, BACKEND_FAIL, NULL, why, b->arg);
}

static void backend_read_cb(struct bufferevent *bev, void *arg)
{
	struct backend *b = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t len = evbuffer_get_length(in);
		size_t want = len < BACKEND_INBUF ? len : BACKEND_INBUF;
		struct reply r;
		int gone = 0;

		if (len == 0)
			return;
		const char *text = (const char *)evbuffer_pullup(in, (ssize_t)want);

		switch (reply_parse(text, want, &r)) {
		case REPLY_MORE:
			return;
		case REPLY_BAD:
			backend_fail(b, "malformed reply");
			return;
		case REPLY_DONE:
			break;
		}
		b->gone = &gone;
		b->delivered = r.len;
		b->cb(b, BACKEND_REPLY, &r, text, b->arg);
		if (gone)
			return;
		b->gone = NULL;
		evbuffer_drain(in, r.len);
	}
}

static void backend_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct backend *b = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT)
		backend_fail(b, (what & BEV_EVENT_WRITING) ? "connect/write timeout"
							   : "reply timeout");
	else if (what & BEV_EVENT_EOF)
		backend_fail(b, "connection closed");
	else
		backend_fail(b, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

struct backend *backend_connect(struct event_base *base, const struct netaddr *addr,
				int timeout_secs, const char *header, size_t hlen, backend_cb cb,
				void *arg)
{
	struct backend *b = calloc(1, sizeof(*b));
	struct timeval tv = {timeout_secs, 0};

	if (b == NULL)
		return NULL;
	b->cb = cb;
	b->arg = arg;
	b->bev = bufferevent_socket_new(base, -1, 0);
	if (b->bev == NULL) {
		free(b);
		return NULL;
	}
	bufferevent_setcb(b->bev, backend_read_cb, NULL, backend_event_cb, b);
	bufferevent_set_timeouts(b->bev, &tv, &tv);
	bufferevent_setwatermark(b->bev, EV_READ, 0, BACKEND_INBUF);
	/* The header is queued before the connect: it leaves first, in one piece. */
	if (hlen > 0)
		bufferevent_write(b->bev, header, hlen);
	bufferevent_enable(b->bev, EV_READ | EV_WRITE);
	/*
	 * A refused connect on loopback is reported at once, from inside
	 * bufferevent_socket_connect(); libevent then defers the error event
	 * to the loop, so our caller never sees a callback before we return.
	 */
	if (bufferevent_socket_connect(b->bev, (const struct sockaddr *)&addr->ss, (int)addr->len) < 0) {
		backend_free(&b);
		return NULL;
	}
	return b;
}

int backend_send(struct backend *b, const void *data, size_t len)
{
	return bufferevent_write(b->bev, data, len);
}

int backend_detach(struct backend *b, struct evbuffer *in)
{
	struct evbuffer *bin = bufferevent_get_input(b->bev);
	int fd = (int)bufferevent_getfd(b->bev);

	/* The reply being delivered is consumed: it must not be relayed again. */
	if (b->gone) {
		*b->gone = 1;
		evbuffer_drain(bin, b->delivered);
	}
	evbuffer_add_buffer(in, bin);
	/* Created without BEV_OPT_CLOSE_ON_FREE: the socket outlives it. */
	bufferevent_free(b->bev);
	free(b);
	return fd;
}

void backend_free(struct backend **bp)
{
	struct backend *b = *bp;

	*bp = NULL;
	if (b == NULL)
		return;
	if (b->gone)
		*b->gone = 1;
	evutil_socket_t fd = bufferevent_getfd(b->bev);

	bufferevent_free(b->bev);
	if (fd >= 0)
		evutil_closesocket(fd);
	free(b);
}
