/*
 * conn.c - the connection layer: a client socket from accept to close, its
 * output queue, the polite close (last reply, half-close, drain) and the
 * one log line every connection leaves behind.
 *
 * It knows no phase by name. The phases above it (the dialogue, the hold,
 * the hand-off, the relay, a guarded service) and the engines that keep
 * per-connection state register a struct conn_phase at start-up: the
 * connection layer calls their hooks when its output queue empties, when
 * the last reply goes out and when the connection is freed. The accept
 * loop (listen.c) makes the connection and starts its first phase.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"

/* How long a closing connection may keep sending before it is cut off. */
#define CONN_DRAIN_SECS 5

static const char *const conn_stage_names[] = {"greet",     "dialogue", "connect", "handshake",
					       "replay",    "relay",    "tarpit"};
static const char *const conn_end_names[] = {
	"none",	       "quit",	  "client_eof", "client_error", "backend_eof", "backend_error",
	"backend_fail", "timeout", "errors",	 "shutdown",	 "tarpit_drop", "silent",
};
static const char *const conn_action_names[] = {"pass", "inspect"};

/* The bit fields of struct conn that hold them. */
_Static_assert(STAGE_TARPIT < 8 && ACT_INSPECT < 2 && END_SILENT < 16,
	       "enum conn_stage, conn_action, conn_end fit in struct conn");

/*
 * The registered phases, in registration order. Set once at start-up,
 * before the first connection, and never changed: a table of code, not
 * daemon state.
 */
#define CONN_PHASES_MAX 8
static const struct conn_phase *conn_phases[CONN_PHASES_MAX];
static int conn_nphases;

void conn_phase_add(const struct conn_phase *p)
{
	for (int i = 0; i < conn_nphases; i++)
		if (conn_phases[i] == p)
			return;
	if (conn_nphases == CONN_PHASES_MAX)
		log_panic("conn_phase_add: more than %d phases", CONN_PHASES_MAX);
	conn_phases[conn_nphases++] = p;
}

const char *conn_stage_name(int stage)
{
	return stage >= 0 && stage <= STAGE_TARPIT ? conn_stage_names[stage] : "?";
}

const char *conn_end_name(int end)
{
	return end >= 0 && end <= END_SILENT ? conn_end_names[end] : "?";
}

static void conn_log(const struct conn *c)
{
	char client[NETADDR_STRLEN];
	struct timeval now, d;

	char helo[80] = "";

	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	netaddr_format((const struct sockaddr *)&c->client.ss, client, sizeof(client));
	if (c->helo != NULL) {
		/* The client's own words (after "EHLO "): escaped, quoted, cut. */
		const char *h = c->helo + 4 + strspn(c->helo + 4, " ");

		memcpy(helo, " helo=\"", 7);
		log_escape(helo + 7, sizeof(helo) - 8, h, strcspn(h, "\r\n"));
		strcat(helo, "\"");
	}
	log_info("close client=%s listener=%s action=%s stage=%s duration=%ld.%03ld in=%llu "
		 "out=%llu end=%s%s",
		 client, c->lst->name, conn_action_names[c->action], conn_stage_name(c->stage),
		 (long)d.tv_sec, (long)(d.tv_usec / 1000), (unsigned long long)c->bytes_in,
		 (unsigned long long)c->bytes_out, conn_end_name(c->end), helo);
}

void conn_close(struct conn *c, enum conn_end end)
{
	struct mxg *mxg = c->mxg;

	if (c->end == END_NONE)
		c->end = (uint8_t)end;
	conn_log(c);
	for (int i = 0; i < conn_nphases; i++)
		if (conn_phases[i]->release != NULL)
			conn_phases[i]->release(c);
	conn_read_event_drop(c);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	conn_lines_free(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		mxg->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	mxg->nconns--;
	mxg->stage_open[c->stage]--;
	if (c->lst != NULL)
		c->lst->open--;
	cfg_unref(&c->cfg);
	free(c);
	conn_maybe_exit(mxg);
}

uint32_t conn_ms(const struct conn *c)
{
	struct timeval now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	return d.tv_sec < 0 ? 0 : (uint32_t)(d.tv_sec * 1000 + d.tv_usec / 1000);
}

/* conn_left - ms from now until at_ms (ms since start); 0 once passed. */
static uint32_t conn_left(uint32_t now, uint32_t at_ms)
{
	return at_ms > now ? at_ms - now : 0;
}

uint32_t conn_dialogue_left(const struct conn *c)
{
	uint32_t now = conn_ms(c);
	uint32_t left = (uint32_t)c->cfg->smtp_timeout * 1000;
	uint32_t total = conn_left(now, (uint32_t)c->cfg->dialogue_timeout * 1000);

	if (total < left)
		left = total;
	/* A partial line: its first byte started the clock, not the last one. */
	if (c->inlen > 0) {
		uint32_t line = conn_left(now, c->line_ms + (uint32_t)c->cfg->smtp_timeout * 1000);

		if (line < left)
			left = line;
	}
	return left;
}

static struct timeval conn_tv(uint32_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	return tv;
}

/*
 * conn_write_arm - wait for the socket to take output again, but not for
 * ever: a client that does not read its replies times out like one that
 * does not send (within what is left of the dialogue, or of the drain).
 */
static void conn_write_arm(struct conn *c)
{
	uint32_t ms;

	if (c->closing)
		ms = conn_left(conn_ms(c), c->line_ms + CONN_DRAIN_SECS * 1000);
	else if (c->stage == STAGE_DIALOGUE || c->stage == STAGE_GREET)
		ms = conn_dialogue_left(c);
	else
		ms = (uint32_t)c->cfg->smtp_timeout * 1000;
	struct timeval tv = conn_tv(ms > 0 ? ms : 1);

	event_add(c->wev, &tv);
}

/* conn_write_cb - the socket takes output again: flush the queue. */
static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (what & EV_TIMEOUT) {
		/* The client does not read: nothing polite can reach it. */
		conn_close(c, END_TIMEOUT);
		return;
	}
	ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	c->bytes_out += (uint64_t)n;
	c->outlen -= (uint32_t)n;
	memmove(c->out, c->out + n, c->outlen);
	if (c->outlen > 0) {
		/* Progress: the idle bound starts again (absolute ones do not). */
		conn_write_arm(c);
		return;
	}
	free(c->out);
	c->out = NULL;
	event_del(c->wev);
	if (c->closing) {
		shutdown(c->fd, SHUT_WR);
		return;
	}
	/* Whoever owns the stage goes on (the dialogue: commands waiting to run). */
	for (int i = 0; i < conn_nphases; i++)
		if (conn_phases[i]->flushed != NULL &&
		    (conn_phases[i]->stages & (1u << c->stage))) {
			conn_phases[i]->flushed(c);
			return;
		}
}

int conn_write(struct conn *c, const char *buf, size_t len)
{
	ssize_t n = 0;

	if (c->outlen == 0) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c, END_CLIENT_ERROR);
			return -1;
		}
		if (n < 0)
			n = 0;
		c->bytes_out += (uint64_t)n;
		if ((size_t)n == len)
			return 0;
	}
	/* Replies are short and reading pauses while this is non-empty: bounded. */
	if (c->outlen + len - (size_t)n > UINT16_MAX) {
		conn_close(c, END_CLIENT_ERROR);
		return -1;
	}
	char *grown = realloc(c->out, c->outlen + len - (size_t)n);

	if (grown == NULL) {
		conn_close(c, END_CLIENT_ERROR);
		return -1;
	}
	c->out = grown;
	memcpy(c->out + c->outlen, buf + n, len - (size_t)n);
	c->outlen += (uint32_t)(len - (size_t)n);
	if (c->wev == NULL)
		c->wev = event_new(c->mxg->base, c->fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	if (c->wev == NULL) {
		conn_close(c, END_CLIENT_ERROR);
		return -1;
	}
	conn_write_arm(c);
	return 0;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	return conn_write(c, buf, (size_t)n);
}

int conn_discard(struct conn *c, int fd)
{
	char buf[4096];

	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n > 0) {
			c->bytes_in += (uint64_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return -1;
	}
	return 0;
}

/*
 * conn_drain_cb - after the last reply: read and drop until EOF or the
 * drain's end. The bound is absolute (from conn_finish): a client that
 * trickles bytes does not make it longer.
 */
static void conn_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint32_t left = conn_left(conn_ms(c), c->line_ms + CONN_DRAIN_SECS * 1000);

	if ((what & EV_TIMEOUT) || left == 0) {
		conn_close(c, END_NONE);
		return;
	}
	if (conn_discard(c, fd) < 0) {
		conn_close(c, END_NONE);
		return;
	}
	struct timeval tv = conn_tv(left);

	event_add(conn_ev(c), &tv);
}

int conn_finish(struct conn *c, const char *reply, enum conn_end end)
{
	struct timeval tv = {CONN_DRAIN_SECS, 0};

	if (c->end == END_NONE)
		c->end = (uint8_t)end;
	c->closing = 1;
	/* The drain's clock: the last reply and what follows share its bound. */
	c->line_ms = conn_ms(c);
	/* A decision still waiting for DNS or the store must not come back. */
	for (int i = 0; i < conn_nphases; i++)
		if (conn_phases[i]->finish != NULL)
			conn_phases[i]->finish(c);
	c->deciding = 0;
	if (reply != NULL && conn_write(c, reply, strlen(reply)) < 0)
		return -1;
	/*
	 * Closing a socket with unread input makes the kernel send RST, and an
	 * RST can destroy the reply before the client reads it. So: half-close
	 * once the reply is out, and read until the client closes too.
	 */
	if (c->outlen == 0)
		shutdown(c->fd, SHUT_WR);
	event_add(conn_read_event(c, c->fd, EV_READ | EV_PERSIST, conn_drain_cb), &tv);
	return 0;
}

struct event *conn_read_event(struct conn *c, evutil_socket_t fd, short what,
			      void (*cb)(evutil_socket_t fd, short what, void *arg))
{
	conn_read_event_drop(c);
	c->ev_set = 1;
	/* Cannot fail: the base and the arguments are valid. */
	event_assign(conn_ev(c), c->mxg->base, fd, what, cb, c);
	return conn_ev(c);
}

void conn_read_event_drop(struct conn *c)
{
	if (c->ev_set)
		event_del(conn_ev(c));
	c->ev_set = 0;
}

void conn_read_pause(struct conn *c)
{
	if (c->ev_set)
		event_del(conn_ev(c));
}

void conn_read_resume(struct conn *c)
{
	uint32_t ms = conn_dialogue_left(c);
	struct timeval tv = conn_tv(ms > 0 ? ms : 1);

	if (c->ev_set)
		event_add(conn_ev(c), &tv);
}

/*
 * conn_lines_base - the allocation holding c's saved lines: they are packed
 * in the order helo, mail, pending, so it starts at the first one set.
 */
static char *conn_lines_base(const struct conn *c)
{
	return c->helo != NULL ? c->helo : c->mail != NULL ? c->mail : c->pending;
}

int conn_line_set(struct conn *c, enum conn_line which, const char *line, size_t len)
{
	char **slot[3] = {&c->helo, &c->mail, &c->pending};
	const char *src[3];
	char *dst[3] = {NULL, NULL, NULL}, *block, *p;
	size_t n[3], total = 0;

	if (line == NULL) {
		/* Forgetting cannot fail: the others move down in place. */
		p = block = conn_lines_base(c);
		*slot[which] = NULL;
		for (int i = 0; i < 3; i++) {
			if (*slot[i] == NULL)
				continue;
			n[i] = strlen(*slot[i]) + 1;
			memmove(p, *slot[i], n[i]);
			*slot[i] = p;
			p += n[i];
		}
		if (conn_lines_base(c) == NULL)
			free(block);
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		src[i] = i == (int)which ? line : *slot[i];
		/* The new line gets its CRLF; the others have theirs. */
		n[i] = src[i] == NULL ? 0 : i == (int)which ? len + 2 : strlen(src[i]);
		total += src[i] != NULL ? n[i] + 1 : 0;
	}
	if ((block = malloc(total)) == NULL)
		return -1;
	p = block;
	for (int i = 0; i < 3; i++) {
		if (src[i] == NULL)
			continue;
		if (i == (int)which) {
			memcpy(p, line, len);
			memcpy(p + len, "\r\n", 2);
		} else {
			memcpy(p, src[i], n[i]);
		}
		p[n[i]] = '\0';
		dst[i] = p;
		p += n[i] + 1;
	}
	free(conn_lines_base(c));
	for (int i = 0; i < 3; i++)
		*slot[i] = dst[i];
	return 0;
}

void conn_lines_free(struct conn *c)
{
	free(conn_lines_base(c));
	c->helo = c->mail = c->pending = NULL;
}

struct conn *conn_new(struct mxg *mxg, struct listener *lst, int fd, const struct sockaddr *sa,
		 int salen)
{
	struct conn *c;

	mxg->stats.accepted++;
	lst->stats.accepted++;
	/* Room for the read event after the struct (conn_read_event). */
	c = calloc(1, sizeof(*c) + event_get_struct_event_size());
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->mxg = mxg;
	c->lst = lst;
	c->fd = fd;
	c->cfg = cfg_ref(mxg->cfg);
	gettimeofday(&c->start, NULL);
	/* Listeners are IPv4 or IPv6: the address always fits. */
	if ((size_t)salen > sizeof(c->client.ss))
		salen = (int)sizeof(c->client.ss);
	memcpy(&c->client.ss, sa, (size_t)salen);
	c->client.len = (socklen_t)salen;
	c->local.len = sizeof(c->local.ss);
	if (getsockname(fd, (struct sockaddr *)&c->local.ss, &c->local.len) < 0)
		c->local = lst->addr;
	netaddr_unmap(&c->client);
	netaddr_unmap(&c->local);
	c->next = mxg->conns;
	if (c->next)
		c->next->prev = c;
	mxg->conns = c;
	mxg->nconns++;
	mxg->stage_open[c->stage]++;
	lst->open++;
	return c;
}

_Static_assert(STAGE_TARPIT < sizeof(((struct mxg *)0)->stage_open) / sizeof(uint32_t),
	       "struct mxg: a count for every stage");

void conn_stage(struct conn *c, int stage)
{
	c->mxg->stage_open[c->stage]--;
	c->stage = (uint8_t)stage;
	c->mxg->stage_open[c->stage]++;
}

void conn_shutdown_all(struct mxg *mxg)
{
	struct conn *c, *next;

	for (c = mxg->conns; c != NULL; c = next) {
		next = c->next;
		/* Held clients too: their reply would come after the deadline. */
		if ((c->stage == STAGE_DIALOGUE || c->stage == STAGE_TARPIT ||
		     c->stage == STAGE_GREET) &&
		    !c->closing) {
			char reply[300];

			snprintf(reply, sizeof(reply),
				 "421 4.3.2 %s Service shutting down, try again later\r\n",
				 c->cfg->myhostname);
			conn_finish(c, reply, END_SHUTDOWN);
		}
	}
}

void conn_maybe_exit(struct mxg *mxg)
{
	if (mxg->stopping && mxg->nconns == 0)
		event_base_loopexit(mxg->base, NULL);
}

void conn_kill_all(struct mxg *mxg)
{
	while (mxg->conns != NULL)
		conn_close(mxg->conns, END_SHUTDOWN);
}
