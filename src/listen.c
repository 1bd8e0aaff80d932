/*
 * listen.c - listening sockets.
 *
 * Sockets are opened while mxguard may still be root (port 25), then served
 * by libevent's connection listener once privileges are gone. The accept
 * queue is as long as the kernel allows by default: a short queue drops
 * clients under load before mxguard ever sees them (ListenOverflows).
 *
 * The accept loop is the top of a connection's path: the shield admits or
 * refuses the client, the connection layer makes the connection, and the
 * first phase starts here: the dialogue (smtp.c) on an SMTP listener, the
 * relay to the service's backend (service.c) on a guarded service.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "listen.h"
#include "log.h"
#include "mxguard.h"
#include "service.h"
#include "shield.h"
#include "smtp.h"

int listen_somaxconn(void)
{
	FILE *fp = fopen("/proc/sys/net/core/somaxconn", "r");
	int v = 128;

	if (fp != NULL) {
		if (fscanf(fp, "%d", &v) != 1 || v <= 0)
			v = 128;
		fclose(fp);
	}
	return v;
}

int listen_open(struct mxg *mxg, char *err, size_t errsz)
{
	const struct cfg *cfg = mxg->cfg;
	int somax = listen_somaxconn();
	int backlog = cfg->listen_backlog ? cfg->listen_backlog : somax;

	if (backlog > somax) {
		log_warn("listen_backlog = %d is clamped by the kernel to net.core.somaxconn = %d;"
			 " raise net.core.somaxconn to use it",
			 backlog, somax);
		backlog = somax;
	}
	int total = cfg->smtp_listen_n;

	for (int s = 0; s < cfg->nservices; s++)
		total += cfg->services[s].nlisten;
	mxg->listeners = calloc((size_t)total, sizeof(struct listener));
	if (mxg->listeners == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (int i = 0; i < total; i++) {
		struct listener *l = &mxg->listeners[i];
		const struct netaddr *na;
		const struct sockaddr *sa;
		int one = 1;

		/* SMTP listeners first, then each service's addresses in order. */
		if (i < cfg->smtp_listen_n) {
			na = &cfg->smtp_listen[i];
			l->svc = -1;
			snprintf(l->service, sizeof(l->service), "smtp");
		} else {
			int k = i - cfg->smtp_listen_n, s = 0;

			while (k >= cfg->services[s].nlisten)
				k -= cfg->services[s++].nlisten;
			na = &cfg->services[s].listen[k];
			l->svc = s;
			snprintf(l->service, sizeof(l->service), "%s", cfg->services[s].name);
		}
		sa = (const struct sockaddr *)&na->ss;
		l->mxg = mxg;
		l->addr = *na;
		l->backlog = backlog;
		netaddr_format(sa, l->name, sizeof(l->name));
		l->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (l->fd < 0) {
			snprintf(err, errsz, "%s: socket: %s", l->name, strerror(errno));
			return -1;
		}
		mxg->nlisteners = i + 1;
		setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* [::]:25 should not also take IPv4: that is a listener of its own. */
		if (sa->sa_family == AF_INET6)
			setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(l->fd, sa, na->len) < 0) {
			snprintf(err, errsz, "%s: bind: %s", l->name, strerror(errno));
			return -1;
		}
		if (listen(l->fd, backlog) < 0) {
			snprintf(err, errsz, "%s: listen: %s", l->name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * listen_accept_cb - admission comes first: a refused client costs the
 * accept, a few table lookups and the close, and nothing is allocated.
 */
static void listen_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			     int salen, void *arg)
{
	struct listener *l = arg;
	int why = shield_admit(l->mxg, l, sa);

	if (why >= 0) {
		shield_refuse(l->mxg, l, fd, sa, why);
		return;
	}
	struct conn *c = conn_new(l->mxg, l, fd, sa, salen);

	if (c == NULL)
		return;
	c->shield_lim =
	    shield_conn_open(l->mxg->shield, c->cfg, (const struct sockaddr *)&c->client.ss);
	if (l->svc >= 0) {
		c->action = ACT_PASS;
		service_start(c);
		return;
	}
	c->attack_suspect =
	    shield_smtp_suspect(l->mxg->shield, c->cfg, l, (const struct sockaddr *)&c->client.ss);
	smtp_accept(c);
}

static void listen_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	if (l->evl != NULL)
		evconnlistener_enable(l->evl);
}

void listen_pause(struct evconnlistener *evl, struct listen_pause *p, const char *what)
{
	struct timeval tv = {1, 0};
	time_t now = time(NULL);
	int err = errno;

	evconnlistener_disable(evl);
	evtimer_add(p->retry, &tv);
	if (p->warned != 0 && now - p->warned < 60) {
		p->quiet++;
		return;
	}
	errno = err;
	log_warn_errno("%s: accept (paused 1s; %lu more errors in the last minute)", what,
		       p->quiet);
	p->warned = now;
	p->quiet = 0;
}

/* listen_error_cb - accept() failed on an SMTP or service listener. */
static void listen_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;

	listen_pause(evl, &l->pause, l->name);
}

int listen_start(struct mxg *mxg)
{
	for (int i = 0; i < mxg->nlisteners; i++) {
		struct listener *l = &mxg->listeners[i];

		l->pause.retry = evtimer_new(mxg->base, listen_retry_cb, l);
		/*
		 * Backlog 0: the socket already listens with the backlog chosen
		 * in listen_open(); any other value makes libevent call
		 * listen() again, and -1 means 128.
		 */
		l->evl =
		    evconnlistener_new(mxg->base, listen_accept_cb, l,
				       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, l->fd);
		if (l->pause.retry == NULL || l->evl == NULL) {
			log_warn("%s: cannot serve the listening socket", l->name);
			return -1;
		}
		evconnlistener_set_error_cb(l->evl, listen_error_cb);
		log_info("listening on %s backlog=%d service=%s", l->name, l->backlog, l->service);
	}
	return 0;
}

void listen_close(struct mxg *mxg)
{
	for (int i = 0; i < mxg->nlisteners; i++) {
		struct listener *l = &mxg->listeners[i];

		if (l->evl != NULL) {
			evconnlistener_free(l->evl); /* closes l->fd */
			l->evl = NULL;
		} else if (l->fd >= 0) {
			close(l->fd);
		}
		l->fd = -1;
		if (l->pause.retry != NULL) {
			event_free(l->pause.retry);
			l->pause.retry = NULL;
		}
	}
}

/* listen_release - a connection the shield counted is closed. */
static void listen_release(struct conn *c)
{
	/*
	 * Good standing: the client reached its backend and said something
	 * there. Flood bots that connect and go, or hang in the dialogue,
	 * never get here; they are what the attack policy keeps out.
	 */
	shield_conn_close(c->mxg->shield, c->cfg, (const struct sockaddr *)&c->client.ss,
			  c->shield_lim,
			  c->stage == STAGE_RELAY && c->bytes_in > 0 && c->end != END_BACKEND_FAIL);
}

const struct conn_phase listen_phase = {
    .name = "admission",
    .release = listen_release,
};
