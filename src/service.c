/*
 * service.c - from an admitted client to its service backend.
 *
 * The backend connection is made without blocking; once it is writable
 * the relay (relay.c) takes both sockets with the PROXY header queued as
 * the first bytes for the backend. Bytes the client sends meanwhile wait
 * in its socket buffer and follow the header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"
#include "proxy.h"
#include "relay.h"
#include "service.h"

struct svconn {
	int fd;
	struct event *ev;
};

void service_free(struct conn *c)
{
	if (c->svc == NULL)
		return;
	if (c->svc->ev != NULL)
		event_free(c->svc->ev);
	if (c->svc->fd >= 0)
		close(c->svc->fd);
	free(c->svc);
	c->svc = NULL;
}

static void service_fail(struct conn *c, const char *why, int err)
{
	char client[NETADDR_STRLEN], be[NETADDR_STRLEN];
	const struct cfg_service *sv = &c->cfg->services[c->lst->svc];

	c->mxg->stats.backend_fail++;
	netaddr_format((const struct sockaddr *)&sv->backend.ss, be, sizeof(be));
	netaddr_format((const struct sockaddr *)&c->client.ss, client, sizeof(client));
	log_warn("service %s: backend %s: %s%s%s (client %s)", sv->name, be, why, err ? ": " : "",
		 err ? strerror(err) : "", client);
	conn_close(c, END_BACKEND_FAIL);
}

/* service_connected_cb - the backend connection is made, or failed, or timed out. */
static void service_connected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct cfg_service *sv = &c->cfg->services[c->lst->svc];
	struct evbuffer *to_client, *to_backend;
	char hdr[PROXY_HDR_MAX];
	int err = 0, n = 0, bfd;
	socklen_t len = sizeof(err);

	if (what & EV_TIMEOUT) {
		service_fail(c, "connect timed out", 0);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		service_fail(c, "connect", err);
		return;
	}
	if (sv->proxy == BACKEND_PROXY2)
		n = proxy_v2(hdr, sizeof(hdr), (const struct sockaddr *)&c->client.ss,
			     (const struct sockaddr *)&c->local.ss);
	else if (sv->proxy == BACKEND_PROXY1)
		n = proxy_v1(hdr, sizeof(hdr), (const struct sockaddr *)&c->client.ss,
			     (const struct sockaddr *)&c->local.ss);
	to_client = evbuffer_new();
	to_backend = evbuffer_new();
	if (to_client == NULL || to_backend == NULL || n < 0) {
		if (to_client)
			evbuffer_free(to_client);
		if (to_backend)
			evbuffer_free(to_backend);
		service_fail(c, "out of memory", 0);
		return;
	}
	if (n > 0)
		evbuffer_add(to_backend, hdr, (size_t)n);
	bfd = c->svc->fd;
	c->svc->fd = -1;
	service_free(c);
	relay_start(c, bfd, to_client, to_backend);
	evbuffer_free(to_client);
	evbuffer_free(to_backend);
}

void service_start(struct conn *c)
{
	const struct cfg_service *sv = &c->cfg->services[c->lst->svc];
	const struct sockaddr *be = (const struct sockaddr *)&sv->backend.ss;
	struct timeval tv = {c->cfg->backend_timeout, 0};

	conn_stage(c, STAGE_CONNECT);
	c->svc = calloc(1, sizeof(*c->svc));
	if (c->svc == NULL) {
		conn_close(c, END_CLIENT_ERROR);
		return;
	}
	c->svc->fd = socket(be->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->svc->fd < 0) {
		service_fail(c, "socket", errno);
		return;
	}
	if (connect(c->svc->fd, be, sv->backend.len) < 0 && errno != EINPROGRESS) {
		service_fail(c, "connect", errno);
		return;
	}
	c->svc->ev = event_new(c->mxg->base, c->svc->fd, EV_WRITE, service_connected_cb, c);
	if (c->svc->ev == NULL || event_add(c->svc->ev, &tv) < 0) {
		service_fail(c, "out of memory", 0);
		return;
	}
}

const struct conn_phase service_phase = {
    .name = "service",
    .release = service_free,
};
