/*
 * probe.c - the backend's EHLO capabilities.
 *
 * A probe is one short SMTP session from mxguard to the backend: PROXY
 * LOCAL (or "PROXY UNKNOWN") when the backend expects a header, greeting,
 * EHLO, QUIT. It runs at start, every PROBE_INTERVAL and after a reload,
 * and only in inspect mode: in pass mode the client talks to the backend
 * directly. Hand-offs refresh the cache for free with the EHLO replies they
 * see anyway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "mxguard.h"
#include "probe.h"
#include "proxy.h"

#define PROBE_INTERVAL 300
#define PROBE_CAPS_MAX 1024

static const char probe_default[] = "PIPELINING\n8BITMIME\nENHANCEDSTATUSCODES\n";

struct probe {
	struct mxg *mxg;
	struct backend *b;
	struct event *timer;
	int step; /* 0 greeting, 1 EHLO reply, 2 QUIT reply */
	int have;
	int failing; /* last probe failed: log the next success */
	char caps[PROBE_CAPS_MAX];
};

const char *probe_caps(const struct probe *p)
{
	return p != NULL && p->have ? p->caps : probe_default;
}

void probe_learn(struct probe *p, const char *text, size_t len)
{
	char caps[PROBE_CAPS_MAX];

	if (p == NULL)
		return;
	reply_ehlo_caps(text, len, caps, sizeof(caps));
	memcpy(p->caps, caps, sizeof(caps));
	p->have = 1;
}

static void probe_arm(struct probe *p, int secs)
{
	struct timeval tv = {secs, 0};

	evtimer_add(p->timer, &tv);
}

static void probe_cb(struct backend *b, enum backend_event ev, const struct reply *r,
		     const char *text, void *arg)
{
	struct probe *p = arg;
	char buf[300];

	if (ev == BACKEND_FAIL && p->step >= 2) {
		/* Closed right after QUIT: the probe is complete. */
		backend_free(&p->b);
		return;
	}
	if (ev == BACKEND_FAIL || (p->step < 2 && r->code / 100 != 2)) {
		if (!p->failing)
			log_warn("backend capability probe failed: %s%s",
				 ev == BACKEND_FAIL ? text : "refused",
				 p->have ? "" : "; offering a minimal EHLO until it succeeds");
		p->failing = 1;
		backend_free(&p->b);
		/* Retry sooner than the normal interval while it fails. */
		probe_arm(p, 30);
		return;
	}
	switch (p->step++) {
	case 0:
		snprintf(buf, sizeof(buf), "EHLO %s\r\n", p->mxg->cfg->myhostname);
		backend_send(b, buf, strlen(buf));
		return;
	case 1:
		probe_learn(p, text, r->len);
		if (p->failing)
			log_info("backend capability probe succeeded");
		p->failing = 0;
		backend_send(b, "QUIT\r\n", 6);
		return;
	default:
		backend_free(&p->b);
		return;
	}
}

static void probe_run(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	const struct cfg *cfg = p->mxg->cfg;
	char hdr[PROXY_HDR_MAX];
	int hlen = 0;

	if (cfg->default_action != ACTION_INSPECT || p->b != NULL)
		return;
	if (cfg->backend_protocol == BACKEND_PROXY2)
		hlen = proxy_v2_local(hdr, sizeof(hdr));
	else if (cfg->backend_protocol == BACKEND_PROXY1)
		hlen = proxy_v1_unknown(hdr, sizeof(hdr));
	p->step = 0;
	p->b = backend_connect(p->mxg->base, &cfg->backend, cfg->backend_timeout, hdr,
			       hlen > 0 ? (size_t)hlen : 0, probe_cb, p);
	probe_arm(p, PROBE_INTERVAL);
}

struct probe *probe_new(struct mxg *mxg)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->mxg = mxg;
	p->timer = evtimer_new(mxg->base, probe_run, p);
	if (p->timer == NULL) {
		free(p);
		return NULL;
	}
	probe_kick(p);
	return p;
}

void probe_kick(struct probe *p)
{
	if (p == NULL)
		return;
	backend_free(&p->b);
	probe_arm(p, 0);
}

void probe_free(struct probe **pp)
{
	struct probe *p = *pp;

	*pp = NULL;
	if (p == NULL)
		return;
	backend_free(&p->b);
	event_free(p->timer);
	free(p);
}
