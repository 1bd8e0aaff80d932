/*
 * handoff.c - from mxguard's side of the SMTP dialogue to the backend's.
 *
 * The sequence, one reply awaited at a time (the backend need not support
 * PIPELINING for this to work):
 *
 *   connect, PROXY header (proxy2/proxy1)     connect (xclient)
 *   greeting                                  greeting, EHLO, XCLIENT -> 220
 *   pass:    forward the backend's greeting as the client's last
 *            greeting line; relay.
 *   inspect: replay HELO/EHLO and MAIL, their replies swallowed (the client
 *            had them from mxguard); send the pending RCPT/STARTTLS/AUTH and
 *            relay: its reply reaches the client through the relay.
 *
 * If a replayed command is refused, the refusal is the backend's answer to
 * the pending command: it is forwarded as such and the relay starts, so the
 * client hears the backend's decision, never one invented by mxguard.
 * If the backend cannot be reached or does not answer in time, the client
 * gets 421 (greeting) or 451 (pending command) and the session ends: a
 * temporary failure never loses mail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "backend.h"
#include "conn.h"
#include "grey.h"
#include "handoff.h"
#include "log.h"
#include "mxguard.h"
#include "probe.h"
#include "proxy.h"
#include "relay.h"
#include "xclient.h"

enum ho_step { HO_GREETING, HO_EHLO, HO_NAME, HO_XCLIENT, HO_HELO, HO_MAIL };

/*
 * How long an XCLIENT hand-off waits for the client's verified name when
 * the lookup is still running (pass mode starts it at accept, alongside the
 * backend connect and EHLO, so it is usually done). Postfix itself waits
 * for its own lookup; a bound keeps a slow resolver from delaying every
 * client by dns_timeout: after it, NAME=[TEMPUNAVAIL], as Postfix says for
 * a lookup that did not finish.
 */
#define HANDOFF_NAME_WAIT_MS 1500

struct handoff {
	struct backend *b;
	struct timespec t0;	 /* connect started (monotonic): backend latency */
	struct event *name_wait; /* HO_NAME: the bound on the name lookup */
	uint8_t step;
	uint8_t xclient_left; /* XCLIENT replies still due */
};

void handoff_free(struct conn *c)
{
	if (c->ho == NULL)
		return;
	backend_free(&c->ho->b);
	if (c->ho->name_wait != NULL)
		event_free(c->ho->name_wait);
	free(c->ho);
	c->ho = NULL;
}

/* handoff_fail - the backend is not usable for this client: 4xx and close. */
static void handoff_fail(struct conn *c, const char *why)
{
	char client[NETADDR_STRLEN], be[NETADDR_STRLEN], reply[300];

	c->mxg->stats.backend_fail++;
	netaddr_format((struct sockaddr *)&c->client.ss, client, sizeof(client));
	netaddr_format((struct sockaddr *)&c->cfg->backend.ss, be, sizeof(be));
	log_warn("backend %s: %s (client %s, stage %s)", be, why, client,
		 conn_stage_name(c->stage));
	handoff_free(c);
	if (c->action == ACT_PASS)
		snprintf(reply, sizeof(reply),
			 "421 4.3.2 %s Service not available, try again later\r\n",
			 c->cfg->myhostname);
	else if (c->pending_verb == SMTP_STARTTLS)
		snprintf(reply, sizeof(reply), "454 4.3.2 TLS not available, try again later\r\n");
	else
		snprintf(reply, sizeof(reply), "451 4.3.2 Service not available, try again later\r\n");
	conn_finish(c, reply, END_BACKEND_FAIL);
}

/*
 * handoff_relay - done talking to the backend: bytes flow both ways now.
 * With send_pending, the pending client command goes to the backend first
 * (its reply then reaches the client through the relay).
 */
static void handoff_relay(struct conn *c, int send_pending)
{
	struct evbuffer *to_client = evbuffer_new();
	struct evbuffer *to_backend = evbuffer_new();
	int bfd;

	if (to_client == NULL || to_backend == NULL) {
		if (to_client)
			evbuffer_free(to_client);
		if (to_backend)
			evbuffer_free(to_backend);
		handoff_fail(c, "out of memory");
		return;
	}
	/* What the backend sent after the reply just handled goes to the client. */
	bfd = backend_detach(c->ho->b, to_client);
	c->ho->b = NULL;
	handoff_free(c);
	/*
	 * Client bytes pipelined behind the hand-off command follow it. Not
	 * after STARTTLS: the next bytes must be the client's TLS handshake,
	 * and plaintext pipelined behind STARTTLS would be read by the backend
	 * as if it came through TLS (the CVE-2011-0411 class): drop it.
	 */
	if (send_pending)
		evbuffer_add(to_backend, c->pending, strlen(c->pending));
	if (c->inlen > 0 && c->pending_verb == SMTP_STARTTLS) {
		char client[NETADDR_STRLEN];

		log_warn("client %s: %u bytes pipelined after STARTTLS discarded",
			 netaddr_format((struct sockaddr *)&c->client.ss, client, sizeof(client)),
			 (unsigned)c->inlen);
	} else if (c->inlen > 0) {
		evbuffer_add(to_backend, c->in, c->inlen);
	}
	free(c->in);
	c->in = NULL;
	c->inlen = 0;
	relay_start(c, bfd, to_client, to_backend);
	evbuffer_free(to_client);
	evbuffer_free(to_backend);
}

/* handoff_replay - inspect mode: say again what the client said to mxguard. */
static void handoff_replay(struct conn *c)
{
	conn_stage(c, STAGE_REPLAY);
	c->ho->step = HO_HELO;
	backend_send(c->ho->b, c->helo, strlen(c->helo));
}

/* handoff_forward - a backend reply goes to the client as it is. */
static int handoff_forward(struct conn *c, const char *text, size_t len)
{
	return conn_write(c, text, len);
}

static void handoff_xclient(struct conn *c)
{
	struct xclient_attrs xa;
	char cmds[2048];
	int n;

	memset(&xa, 0, sizeof(xa));
	/* Still unknown after the wait: temporarily unavailable, as Postfix says. */
	xa.name = grey_xclient_name(c);
	if (xa.name == NULL)
		xa.name = "[TEMPUNAVAIL]";
	xa.client = (struct sockaddr *)&c->client.ss;
	xa.local = (struct sockaddr *)&c->local.ss;
	if (c->helo != NULL) {
		/* The argument of "EHLO name\r\n": after the verb and spaces. */
		const char *h = c->helo + 4;
		size_t hl;

		while (*h == ' ')
			h++;
		hl = strcspn(h, "\r\n");
		xa.helo = h;
		xa.helolen = hl;
		xa.proto = c->esmtp ? "ESMTP" : "SMTP";
	} else {
		xa.helo = "[UNAVAILABLE]";
		xa.helolen = strlen(xa.helo);
		xa.proto = "SMTP";
	}
	n = xclient_build(&xa, cmds, sizeof(cmds));
	if (n <= 0) {
		handoff_fail(c, "cannot build the XCLIENT command");
		return;
	}
	c->ho->step = HO_XCLIENT;
	c->ho->xclient_left = (uint8_t)n;
	backend_send(c->ho->b, cmds, strlen(cmds));
}

static void handoff_name_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	handoff_xclient(c);
}

/*
 * handoff_xclient_named - send XCLIENT once the client's name is settled,
 * or after HANDOFF_NAME_WAIT_MS.
 */
static void handoff_xclient_named(struct conn *c)
{
	struct timeval tv = {HANDOFF_NAME_WAIT_MS / 1000, (HANDOFF_NAME_WAIT_MS % 1000) * 1000};

	if (grey_xclient_name(c) != NULL) {
		handoff_xclient(c);
		return;
	}
	c->ho->step = HO_NAME;
	c->ho->name_wait = evtimer_new(c->mxg->base, handoff_name_timeout, c);
	if (c->ho->name_wait == NULL || evtimer_add(c->ho->name_wait, &tv) < 0)
		handoff_xclient(c);
}

void handoff_name_known(struct conn *c)
{
	if (c->ho == NULL || c->ho->step != HO_NAME)
		return;
	evtimer_del(c->ho->name_wait);
	handoff_xclient(c);
}

/* handoff_ready - the backend knows the client: pass on, or replay. */
static void handoff_ready(struct conn *c, const struct reply *r, const char *text)
{
	if (c->action == ACT_PASS) {
		if (handoff_forward(c, text, r->len) < 0)
			return;
		handoff_relay(c, 0);
		return;
	}
	if (r->code / 100 != 2) {
		/* Refused already at the greeting: that is the answer to the client. */
		if (handoff_forward(c, text, r->len) < 0)
			return;
		handoff_relay(c, 0);
		return;
	}
	handoff_replay(c);
}

/* handoff_latency - the backend greeted: connect to greeting, for the metrics. */
static void handoff_latency(struct conn *c)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	hist_observe(&c->mxg->stats.backend_latency,
		     (double)(now.tv_sec - c->ho->t0.tv_sec) +
			 (double)(now.tv_nsec - c->ho->t0.tv_nsec) / 1e9);
}

static void handoff_cb(struct backend *b, enum backend_event ev, const struct reply *r,
		       const char *text, void *arg)
{
	struct conn *c = arg;
	char why[200];

	if (ev == BACKEND_FAIL) {
		handoff_fail(c, text);
		return;
	}
	if (c->stage == STAGE_CONNECT)
		conn_stage(c, STAGE_HANDSHAKE);
	switch (c->ho->step) {
	case HO_GREETING:
		handoff_latency(c);
		if (c->cfg->backend_protocol != BACKEND_XCLIENT) {
			handoff_ready(c, r, text);
			return;
		}
		if (r->code != 220) {
			snprintf(why, sizeof(why), "greeting %d before XCLIENT", r->code);
			handoff_fail(c, why);
			return;
		}
		c->ho->step = HO_EHLO;
		snprintf(why, sizeof(why), "EHLO %s\r\n", c->cfg->myhostname);
		backend_send(b, why, strlen(why));
		return;
	case HO_EHLO:
		if (r->code != 250 || !reply_has_ext(text, r->len, "XCLIENT")) {
			handoff_fail(c, "XCLIENT not offered to mxguard"
					" (check smtpd_authorized_xclient_hosts)");
			return;
		}
		probe_learn(c->mxg->probe, text, r->len);
		handoff_xclient_named(c);
		return;
	case HO_NAME:
		/* The backend speaks while nothing was asked: not an SMTP server. */
		snprintf(why, sizeof(why), "unexpected reply %d before XCLIENT", r->code);
		handoff_fail(c, why);
		return;
	case HO_XCLIENT:
		if (r->code != 220) {
			snprintf(why, sizeof(why), "XCLIENT refused with %d", r->code);
			handoff_fail(c, why);
			return;
		}
		if (--c->ho->xclient_left > 0)
			return;
		handoff_ready(c, r, text);
		return;
	case HO_HELO:
		if (r->code / 100 != 2)
			break;
		if (c->esmtp)
			probe_learn(c->mxg->probe, text, r->len);
		if (c->pending_verb == SMTP_RCPT && c->mail != NULL) {
			c->ho->step = HO_MAIL;
			backend_send(b, c->mail, strlen(c->mail));
			return;
		}
		handoff_relay(c, 1);
		return;
	case HO_MAIL:
		if (r->code / 100 != 2)
			break;
		handoff_relay(c, 1);
		return;
	}
	/* A replayed command was refused: the refusal answers the pending one. */
	if (handoff_forward(c, text, r->len) < 0)
		return;
	handoff_relay(c, 0);
}

void handoff_start(struct conn *c)
{
	const struct cfg *cfg = c->cfg;
	char hdr[PROXY_HDR_MAX];
	int hlen = 0;
	const struct sockaddr *src = (struct sockaddr *)&c->client.ss;
	const struct sockaddr *dst = (struct sockaddr *)&c->local.ss;

	conn_stage(c, STAGE_CONNECT);
	/*
	 * XCLIENT NAME is the verified name: in pass mode nothing looked it up
	 * yet, so the lookup runs alongside the backend connect and EHLO.
	 */
	if (cfg->backend_protocol == BACKEND_XCLIENT)
		grey_name_lookup(c);
	if (cfg->backend_protocol == BACKEND_PROXY2)
		hlen = proxy_v2(hdr, sizeof(hdr), src, dst);
	else if (cfg->backend_protocol == BACKEND_PROXY1)
		hlen = proxy_v1(hdr, sizeof(hdr), src, dst);
	c->ho = calloc(1, sizeof(*c->ho));
	if (c->ho != NULL)
		clock_gettime(CLOCK_MONOTONIC, &c->ho->t0);
	if (c->ho != NULL)
		c->ho->b = backend_connect(c->mxg->base, &cfg->backend, cfg->backend_timeout, hdr,
					   hlen > 0 ? (size_t)hlen : 0, handoff_cb, c);
	if (c->ho == NULL || c->ho->b == NULL) {
		free(c->ho);
		c->ho = NULL;
		conn_finish(c, c->action == ACT_PASS
				       ? "421 4.3.2 Service not available, try again later\r\n"
				       : "451 4.3.2 Service not available, try again later\r\n",
			    END_BACKEND_FAIL);
		return;
	}
	c->ho->step = HO_GREETING;
}

const struct conn_phase handoff_phase = {
	.name = "handoff",
	.release = handoff_free,
};
