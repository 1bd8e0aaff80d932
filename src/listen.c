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
#include <linux/filter.h>
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

/* listen_socket - one listening socket on sa; reuseport: it joins a group. */
static int listen_socket(const struct listener *l, const struct sockaddr *sa, socklen_t len,
			 int reuseport, char *err, size_t errsz)
{
	int one = 1, fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		snprintf(err, errsz, "%s: socket: %s", l->name, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* [::]:25 should not also take IPv4: that is a listener of its own. */
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		snprintf(err, errsz, "%s: SO_REUSEPORT (workers > 1): %s", l->name,
			 strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, sa, len) < 0) {
		snprintf(err, errsz, "%s: bind: %s", l->name, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, l->backlog) < 0) {
		snprintf(err, errsz, "%s: listen: %s", l->name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * listen_prog - the reuseport program for n sockets of family: the source
 * address, cut to its network (plen bits), hashed, modulo n. The socket
 * index is the order of the listen() calls. The address is read at its
 * offset from the network header (SKF_NET_OFF): by the time the program
 * runs, the packet data starts after the TCP header. Returns the number of
 * instructions in code (at most 24).
 */
static int listen_prog(struct sock_filter *code, int family, int plen, int n)
{
	int k = 0, words = family == AF_INET ? 1 : (plen + 31) / 32;
	uint32_t base = family == AF_INET ? 12 : 8; /* saddr in struct iphdr, ipv6hdr */

	for (int w = 0; w < words; w++) {
		int bits = plen - 32 * w > 32 ? 32 : plen - 32 * w;

		code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
							 (uint32_t)SKF_NET_OFF + base + 4u * (uint32_t)w);
		if (bits < 32)
			code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K,
								 0xffffffffu << (32 - bits));
		if (w > 0) /* A = A + X * golden: every word of the network counts */
			code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0);
		code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1u);
		code[k++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
	}
	code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16);
	code[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)n);
	code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	return k;
}

int listen_worker_of(const struct sockaddr *sa, int n, int prefix_v4, int prefix_v6)
{
	const unsigned char *a;
	int words, plen;
	uint32_t h = 0;

	if (n <= 1)
		return 0;
	if (sa->sa_family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
		words = 1;
		plen = prefix_v4;
	} else {
		a = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		plen = prefix_v6;
		words = (plen + 31) / 32;
	}
	/* The same steps as listen_prog's program, on the address as the kernel loads it. */
	for (int w = 0; w < words; w++) {
		int bits = plen - 32 * w > 32 ? 32 : plen - 32 * w;
		uint32_t v = (uint32_t)a[4 * w] << 24 | (uint32_t)a[4 * w + 1] << 16 |
			     (uint32_t)a[4 * w + 2] << 8 | a[4 * w + 3];

		if (bits < 32)
			v &= 0xffffffffu << (32 - bits);
		if (w > 0)
			v += h;
		h = v * 0x9e3779b1u;
	}
	return (int)((h >> 16) % (uint32_t)n);
}

/*
 * listen_group - l's socket, or with n > 1 workers its n sockets in one
 * reuseport group with the program that keeps a network on one socket.
 */
static int listen_group(struct listener *l, const struct sockaddr *sa, socklen_t len, int n,
			int prefix_v4, int prefix_v6, char *err, size_t errsz)
{
	struct sock_filter code[24];
	struct sock_fprog prog;

	l->fd = -1;
	if (n <= 1) {
		l->fd = listen_socket(l, sa, len, 0, err, errsz);
		return l->fd < 0 ? -1 : 0;
	}
	if ((l->wfd = calloc((size_t)n, sizeof(int))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (int w = 0; w < n; w++) {
		if ((l->wfd[w] = listen_socket(l, sa, len, 1, err, errsz)) < 0)
			return -1;
		l->nwfd = w + 1;
	}
	prog.len = (unsigned short)listen_prog(code, sa->sa_family,
					       sa->sa_family == AF_INET ? prefix_v4 : prefix_v6, n);
	prog.filter = code;
	/* Set on one socket, it serves the whole group. */
	if (setsockopt(l->wfd[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0) {
		snprintf(err, errsz, "%s: SO_ATTACH_REUSEPORT_CBPF (workers > 1): %s", l->name,
			 strerror(errno));
		return -1;
	}
	l->fd = l->wfd[0];
	return 0;
}

void listen_keep(struct mxg *mxg, int w)
{
	for (int i = 0; i < mxg->nlisteners; i++) {
		struct listener *l = &mxg->listeners[i];

		if (l->wfd == NULL)
			continue;
		for (int k = 0; k < l->nwfd; k++)
			if (k != w)
				close(l->wfd[k]);
		l->fd = l->wfd[w];
		free(l->wfd);
		l->wfd = NULL;
		l->nwfd = 0;
	}
}

int listen_open(struct mxg *mxg, char *err, size_t errsz)
{
	const struct cfg *cfg = mxg->cfg;
	int n = cfg->nworkers;
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
		mxg->nlisteners = i + 1;
		if (listen_group(l, sa, na->len, n, cfg->prefix_v4, cfg->prefix_v6, err, errsz) <
		    0)
			return -1;
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
		} else if (l->wfd != NULL) {
			/* The master: every worker's socket (l->fd is the first). */
			for (int k = 0; k < l->nwfd; k++)
				close(l->wfd[k]);
		} else if (l->fd >= 0) {
			close(l->fd);
		}
		free(l->wfd);
		l->wfd = NULL;
		l->nwfd = 0;
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
