/*
 * NAME
 *	tcpstat - TCP states, listen queues and SYN-flood indicators
 * SYNOPSIS
 *	mxguardctl tcpstat [--port N ...] [--json] [--watch SECONDS [--count N]]
 * DESCRIPTION
 *	Shows, without root and without the daemon, what a mail server's
 *	operator needs when clients complain of refused or slow connections:
 *
 *	- per local TCP port (all, or only those given with --port), the
 *	  number of IPv4 and IPv6 sockets in each state, read through the
 *	  sock_diag netlink interface (the same one ss(8) uses; /proc/net/tcp
 *	  is slower and does not show the accept queue of a listener);
 *	- for each listener, its accept queue: connections the kernel has
 *	  completed but the program has not accept()ed yet, and the backlog
 *	  they are limited by;
 *	- the TcpExt counters of /proc/net/netstat that move when a queue
 *	  overflows or SYN cookies are used, and with --watch their change
 *	  per interval;
 *	- the sysctls that size these queues, with one line of advice for
 *	  each that is off (counters and sysctls are read by src/kstat.c,
 *	  which the daemon's synwatch shares);
 *	- of the half-open (SYN_RECV) sockets, the share whose peer is a
 *	  special-purpose address (RFC 6890) or ends in .0 or .255: such
 *	  sources cannot answer a SYN-ACK, so many of them point to spoofed
 *	  SYNs rather than to slow clients.
 *
 *	--watch repeats every SECONDS until SIGINT, at most --count times
 *	(default and maximum 1000).
 * DIAGNOSTICS
 *	Exit 0 on success, 1 on an error (with a message), 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kstat.h"
#include "tcpstat.h"

#define TS_MAX_PORTS 64		/* --port given at most this often */
#define TS_MAX_WATCH 1000	/* iterations of --watch, at most */
#define TS_MAX_INTERVAL 86400	/* seconds between them, at most */
#define TS_RECV_BUF (32 * 1024) /* one netlink read */
#define TS_MAX_MSGS 10000000L	/* sockets in one dump: a runaway guard */
#define TS_SEQ 0x6d786721	/* nlmsg_seq of our dump request */

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
enum ts_state {
	TS_ESTABLISHED = 1,
	TS_SYN_SENT,
	TS_SYN_RECV,
	TS_FIN_WAIT1,
	TS_FIN_WAIT2,
	TS_TIME_WAIT,
	TS_CLOSE,
	TS_CLOSE_WAIT,
	TS_LAST_ACK,
	TS_LISTEN,
	TS_CLOSING,
	TS_NSTATES,
	TS_NEW_SYN_RECV = 12, /* a request socket; reported as SYN_RECV */
};

static const char *const ts_state_names[TS_NSTATES] = {
	NULL,	      "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE",	     "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING",
};

struct ts_port {
	uint16_t port;
	unsigned long n[2][TS_NSTATES]; /* [0] IPv4, [1] IPv6, by state */
};

struct ts_listener {
	int family;
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;
	unsigned queue, backlog; /* idiag_rqueue, idiag_wqueue */
};

struct ts_halfopen {
	unsigned long total, bogus, edge; /* edge: IPv4 peer ending in .0 or .255 */
};

/* One look at the system. */
struct ts_snap {
	uint32_t *slot; /* port -> 1 + index into ports, 0: not seen */
	struct ts_port *ports;
	size_t nports, portcap;
	struct ts_listener *lst;
	size_t nlst, lstcap;
	struct ts_halfopen ho;
	struct kstat_counters ctr;
	long sys[KSTAT_NSYSCTLS]; /* -1: unreadable */
};

struct ts_opts {
	uint8_t want[65536 / 8]; /* ports asked for with --port */
	int nwant, json;
	unsigned watch, count;
};

static volatile sig_atomic_t ts_stop;

static void ts_on_sigint(int sig)
{
	(void)sig;
	ts_stop = 1;
}

static void ts_usage(void)
{
	fprintf(stderr, "usage: mxguardctl tcpstat [--port N ...] [--json] "
			"[--watch SECONDS [--count N]]\n");
}

/* ts_number - s as an integer in [min, max], or -1 if it is not one. */
static long ts_number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

/* ---- sockets ---------------------------------------------------------- */

static struct ts_port *ts_port_get(struct ts_snap *s, uint16_t port)
{
	if (s->slot[port] == 0) {
		if (s->nports == s->portcap) {
			size_t cap = s->portcap ? s->portcap * 2 : 64;
			struct ts_port *p = realloc(s->ports, cap * sizeof(*p));

			if (p == NULL)
				return NULL;
			s->ports = p;
			s->portcap = cap;
		}
		memset(&s->ports[s->nports], 0, sizeof(s->ports[0]));
		s->ports[s->nports].port = port;
		s->slot[port] = (uint32_t)++s->nports;
	}
	return &s->ports[s->slot[port] - 1];
}

struct ts_range {
	uint32_t base;
	int len;
};

/* RFC 6890 special-purpose IPv4 blocks, plus multicast and class E. */
static const struct ts_range ts_bogus4[] = {
	{0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},
	{0xa9fe0000, 16}, {0xac100000, 12}, {0xc0000000, 24}, {0xc0000200, 24},
	{0xc0a80000, 16}, {0xc6120000, 15}, {0xc6336400, 24}, {0xcb007100, 24},
	{0xf0000000, 4},  {0xe0000000, 4},
};

static int ts_is_bogus4(uint32_t a)
{
	for (size_t i = 0; i < sizeof(ts_bogus4) / sizeof(ts_bogus4[0]); i++) {
		uint32_t mask = 0xffffffffu << (32 - ts_bogus4[i].len);

		if ((a & mask) == ts_bogus4[i].base)
			return 1;
	}
	return 0;
}

static int ts_is_bogus6(const struct in6_addr *a)
{
	static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8};
	const uint8_t *b = a->s6_addr;

	if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a))
		return 1;
	if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff)
		return 1;
	return memcmp(b, doc, sizeof(doc)) == 0;
}

/* ts_halfopen_add - classify the peer of one SYN_RECV socket. */
static void ts_halfopen_add(struct ts_halfopen *ho, int family, const uint32_t *dst)
{
	uint32_t v4;
	int is_v4 = family == AF_INET;

	ho->total++;
	if (family == AF_INET6) {
		struct in6_addr a;

		memcpy(&a, dst, sizeof(a));
		/* A mapped address is an IPv4 peer of a dual-stack listener. */
		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			is_v4 = 1;
			memcpy(&v4, &a.s6_addr[12], sizeof(v4));
		} else if (ts_is_bogus6(&a)) {
			ho->bogus++;
		}
	} else {
		v4 = dst[0];
	}
	if (is_v4) {
		uint32_t h = ntohl(v4);

		if (ts_is_bogus4(h))
			ho->bogus++;
		if ((h & 0xff) == 0 || (h & 0xff) == 0xff)
			ho->edge++;
	}
}

/* ts_add_msg - account one inet_diag_msg; -1 when out of memory. */
static int ts_add_msg(struct ts_snap *s, const struct ts_opts *o, const struct inet_diag_msg *m)
{
	uint16_t port = ntohs(m->id.idiag_sport);
	int state = m->idiag_state, fam = m->idiag_family == AF_INET6;
	struct ts_port *p;

	if (o->nwant > 0 && !(o->want[port / 8] & (1u << (port % 8))))
		return 0;
	if (state == TS_NEW_SYN_RECV)
		state = TS_SYN_RECV;
	if (state <= 0 || state >= TS_NSTATES)
		return 0; /* a state this tool does not know: newer kernel */
	p = ts_port_get(s, port);
	if (p == NULL)
		return -1;
	p->n[fam][state]++;
	if (state == TS_SYN_RECV)
		ts_halfopen_add(&s->ho, m->idiag_family, m->id.idiag_dst);
	if (state == TS_LISTEN) {
		struct ts_listener *l;

		if (s->nlst == s->lstcap) {
			size_t cap = s->lstcap ? s->lstcap * 2 : 16;

			l = realloc(s->lst, cap * sizeof(*l));
			if (l == NULL)
				return -1;
			s->lst = l;
			s->lstcap = cap;
		}
		l = &s->lst[s->nlst++];
		l->family = m->idiag_family;
		l->port = port;
		l->queue = m->idiag_rqueue;
		l->backlog = m->idiag_wqueue;
		if (inet_ntop(l->family, m->id.idiag_src, l->addr, sizeof(l->addr)) == NULL)
			snprintf(l->addr, sizeof(l->addr), "?");
	}
	return 0;
}

/*
 * ts_nlmsg_next - NLMSG_NEXT for a size_t len. NLMSG_OK checks a record's
 * nlmsg_len against len but not its padding: when the last record ends
 * the datagram unpadded, NLMSG_NEXT would take more than len and wrap it
 * around, and the walk would go on past the buffer (the macros assume an
 * int len). That record is whole: the datagram ends after it, as with
 * libmnl's mnl_nlmsg_next.
 */
static struct nlmsghdr *ts_nlmsg_next(struct nlmsghdr *h, size_t *len)
{
	size_t step = NLMSG_ALIGN(h->nlmsg_len);

	if (step > *len)
		step = *len;
	*len -= step;
	return (struct nlmsghdr *)((char *)h + step);
}

/*
 * tcpstat_walk - see tcpstat.h. Every record is checked against len
 * before it is read: the walk trusts nothing in the buffer.
 */
int tcpstat_walk(struct ts_snap *s, const struct ts_opts *o, int family, uint32_t seq, void *buf,
		 size_t len, long *msgs, char *err, size_t errsz)
{
	for (struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = ts_nlmsg_next(h, &len)) {
		if (h->nlmsg_seq != seq)
			continue; /* not ours */
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			int code = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? -e->error : EPROTO;

			snprintf(err, errsz, "sock_diag %s: %s",
				 family == AF_INET ? "IPv4" : "IPv6", strerror(code));
			return -1;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			continue;
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			snprintf(err, errsz, "sock_diag: short message (%u bytes)", h->nlmsg_len);
			return -1;
		}
		if (++*msgs > TS_MAX_MSGS) {
			snprintf(err, errsz, "sock_diag: more than %ld sockets", TS_MAX_MSGS);
			return -1;
		}
		if (ts_add_msg(s, o, NLMSG_DATA(h)) < 0) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
	}
	if (len != 0) {
		snprintf(err, errsz, "sock_diag: %zu stray bytes", len);
		return -1;
	}
	return 0;
}

/*
 * ts_dump - ask the kernel for every TCP socket of family and account
 * them. Returns 0, or -1 with a message in err.
 */
static int ts_dump(struct ts_snap *s, const struct ts_opts *o, int family, char *err,
		   size_t errsz)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 req;
	} q;
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = 5};
	const uint32_t seq = TS_SEQ;
	long msgs = 0;
	char *buf;
	int fd, rc = -1;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0) {
		snprintf(err, errsz, "sock_diag socket: %s", strerror(errno));
		return -1;
	}
	/* A kernel that never ends the dump must not hang the operator. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	buf = malloc(TS_RECV_BUF);
	if (buf == NULL) {
		snprintf(err, errsz, "out of memory");
		close(fd);
		return -1;
	}
	memset(&q, 0, sizeof(q));
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.nh.nlmsg_seq = seq;
	q.req.sdiag_family = (uint8_t)family;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0u; /* every state, request sockets included */
	if (sendto(fd, &q, sizeof(q), 0, (struct sockaddr *)&nl, sizeof(nl)) != sizeof(q)) {
		snprintf(err, errsz, "sock_diag request: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		struct iovec iov = {buf, TS_RECV_BUF};
		struct msghdr mh = {.msg_name = &nl, .msg_namelen = sizeof(nl), .msg_iov = &iov,
				    .msg_iovlen = 1};
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errsz, "sock_diag: %s", strerror(errno));
			goto out;
		}
		if (n == 0 || (mh.msg_flags & MSG_TRUNC)) {
			snprintf(err, errsz, "sock_diag: %s answer",
				 n == 0 ? "empty" : "truncated");
			goto out;
		}
		switch (tcpstat_walk(s, o, family, seq, buf, (size_t)n, &msgs, err, errsz)) {
		case 1:
			rc = 0;
			goto out;
		case -1:
			goto out;
		}
	}
out:
	free(buf);
	close(fd);
	return rc;
}

/* ---- one snapshot ----------------------------------------------------- */

static void ts_snap_free(struct ts_snap *s)
{
	free(s->slot);
	free(s->ports);
	free(s->lst);
	memset(s, 0, sizeof(*s));
}

static int ts_port_cmp(const void *a, const void *b)
{
	const struct ts_port *x = a, *y = b;

	return (int)x->port - (int)y->port;
}

static int ts_lst_cmp(const void *a, const void *b)
{
	const struct ts_listener *x = a, *y = b;

	if (x->port != y->port)
		return (int)x->port - (int)y->port;
	if (x->family != y->family)
		return x->family - y->family;
	return strcmp(x->addr, y->addr);
}

static int ts_snap_take(struct ts_snap *s, const struct ts_opts *o)
{
	char err[256];

	memset(s, 0, sizeof(*s));
	s->slot = calloc(65536, sizeof(*s->slot));
	if (s->slot == NULL) {
		fprintf(stderr, "mxguardctl: out of memory\n");
		return -1;
	}
	if (ts_dump(s, o, AF_INET, err, sizeof(err)) < 0 ||
	    ts_dump(s, o, AF_INET6, err, sizeof(err)) < 0 ||
	    kstat_counters_read(&s->ctr, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxguardctl: %s\n", err);
		ts_snap_free(s);
		return -1;
	}
	for (int i = 0; i < KSTAT_NSYSCTLS; i++)
		s->sys[i] = kstat_sysctl((enum kstat_sysctl)i);
	/* Sorted output; slot[] is stale from here on and not used again. */
	if (s->nports > 1)
		qsort(s->ports, s->nports, sizeof(s->ports[0]), ts_port_cmp);
	if (s->nlst > 1)
		qsort(s->lst, s->nlst, sizeof(s->lst[0]), ts_lst_cmp);
	return 0;
}

/*
 * ts_advice - the advice for sysctl i, or NULL when its value is fine.
 * The queues are a chain: listen(2)'s backlog is capped by somaxconn,
 * and half-open connections by tcp_max_syn_backlog, so raising one alone
 * changes nothing.
 */
static const char *ts_advice(int i, long v)
{
	if (v < 0)
		return NULL;
	switch (i) {
	case KSTAT_SOMAXCONN:
		return v < 1024 ? "somaxconn caps every listen backlog: raise it (e.g. 4096) "
				  "together with tcp_max_syn_backlog and the listener's backlog"
				: NULL;
	case KSTAT_SYN_BACKLOG:
		return v < 1024 ? "tcp_max_syn_backlog is low: raise it together with "
				  "somaxconn and the listener's backlog"
				: NULL;
	case KSTAT_SYNCOOKIES:
		return v != 1 ? "tcp_syncookies should be 1: cookies only when the SYN queue "
				"overflows, so a SYN flood cannot lock clients out"
			      : NULL;
	case KSTAT_ABORT_OVERFLOW:
		return v != 0 ? "tcp_abort_on_overflow should be 0 for a mail server: a client "
				"whose handshake overflows the queue then retries instead of "
				"getting a reset"
			      : NULL;
	}
	return NULL;
}

static double ts_share(unsigned long part, unsigned long total)
{
	return total ? 100.0 * (double)part / (double)total : 0.0;
}

/*
 * ts_delta - how far counter i moved between two snapshots. Signed: a
 * namespace's counters never go back, but if one did the operator should
 * see a negative number rather than a wrapped one.
 */
static long long ts_delta(const struct ts_snap *s, const struct ts_snap *prev, size_t i)
{
	return (long long)(s->ctr.value[i] - prev->ctr.value[i]);
}

/* ---- output ----------------------------------------------------------- */

static void ts_print_json(const struct ts_snap *s, const struct ts_snap *prev)
{
	const char *sep = "";

	printf("{\"ports\":{");
	for (size_t i = 0; i < s->nports; i++) {
		const struct ts_port *p = &s->ports[i];

		printf("%s\"%u\":{", i ? "," : "", p->port);
		for (int st = 1; st < TS_NSTATES; st++)
			printf("%s\"%s\":%lu", st > 1 ? "," : "", ts_state_names[st],
			       p->n[0][st] + p->n[1][st]);
		printf("}");
	}
	printf("},\"listeners\":[");
	for (size_t i = 0; i < s->nlst; i++) {
		const struct ts_listener *l = &s->lst[i];

		/* An inet_ntop() result needs no JSON escaping. */
		printf("%s{\"family\":\"%s\",\"address\":\"%s\",\"port\":%u,\"queue\":%u,"
		       "\"backlog\":%u}",
		       i ? "," : "", l->family == AF_INET ? "ipv4" : "ipv6", l->addr, l->port,
		       l->queue, l->backlog);
	}
	printf("],\"counters\":{");
	for (size_t i = 0; i < KSTAT_NCOUNTERS; i++) {
		if (s->ctr.have[i])
			printf("%s\"%s\":%" PRIu64, sep, kstat_names[i], s->ctr.value[i]);
		else
			printf("%s\"%s\":null", sep, kstat_names[i]);
		sep = ",";
	}
	printf("}");
	if (prev != NULL) {
		sep = "";
		printf(",\"deltas\":{");
		for (size_t i = 0; i < KSTAT_NCOUNTERS; i++) {
			if (s->ctr.have[i] && prev->ctr.have[i])
				printf("%s\"%s\":%lld", sep, kstat_names[i],
				       ts_delta(s, prev, i));
			else
				printf("%s\"%s\":null", sep, kstat_names[i]);
			sep = ",";
		}
		printf("}");
	}
	printf(",\"sysctls\":{");
	for (int i = 0; i < KSTAT_NSYSCTLS; i++) {
		if (s->sys[i] >= 0)
			printf("%s\"%s\":%ld", i ? "," : "", kstat_sysctl_names[i], s->sys[i]);
		else
			printf("%s\"%s\":null", i ? "," : "", kstat_sysctl_names[i]);
	}
	printf("},\"advice\":[");
	sep = "";
	for (int i = 0; i < KSTAT_NSYSCTLS; i++) {
		const char *a = ts_advice(i, s->sys[i]);

		if (a != NULL) {
			/* The advice texts are ours and hold no quote or backslash. */
			printf("%s\"%s\"", sep, a);
			sep = ",";
		}
	}
	printf("],\"half_open\":{\"total\":%lu,\"bogus\":%lu,\"bogus_pct\":%.1f,"
	       "\"dot0_255\":%lu,\"dot0_255_pct\":%.1f}}\n",
	       s->ho.total, s->ho.bogus, ts_share(s->ho.bogus, s->ho.total), s->ho.edge,
	       ts_share(s->ho.edge, s->ho.total));
}

static void ts_print_human(const struct ts_snap *s, const struct ts_snap *prev)
{
	if (s->nports == 0)
		printf("no TCP sockets on the selected ports\n");
	for (size_t i = 0; i < s->nports; i++) {
		const struct ts_port *p = &s->ports[i];

		printf("port %u\n  %-12s %8s %8s\n", p->port, "STATE", "IPV4", "IPV6");
		for (int st = 1; st < TS_NSTATES; st++)
			if (p->n[0][st] + p->n[1][st] > 0)
				printf("  %-12s %8lu %8lu\n", ts_state_names[st], p->n[0][st],
				       p->n[1][st]);
	}
	if (s->nlst > 0)
		printf("\n%-40s %6s %8s %8s\n", "LISTENER", "PORT", "QUEUE", "BACKLOG");
	for (size_t i = 0; i < s->nlst; i++) {
		const struct ts_listener *l = &s->lst[i];

		printf("%-40s %6u %8u %8u%s\n", l->addr, l->port, l->queue, l->backlog,
		       l->queue > l->backlog ? "  FULL" : "");
	}
	printf("\n%-22s %14s%s\n", "COUNTER", "VALUE", prev ? "          DELTA" : "");
	for (size_t i = 0; i < KSTAT_NCOUNTERS; i++) {
		if (!s->ctr.have[i]) {
			printf("%-22s %14s\n", kstat_names[i], "-");
			continue;
		}
		printf("%-22s %14" PRIu64, kstat_names[i], s->ctr.value[i]);
		if (prev != NULL && prev->ctr.have[i])
			printf(" %14lld", ts_delta(s, prev, i));
		printf("\n");
	}
	printf("\n%-22s %14s\n", "SYSCTL", "VALUE");
	for (int i = 0; i < KSTAT_NSYSCTLS; i++) {
		const char *a = ts_advice(i, s->sys[i]);

		if (s->sys[i] >= 0)
			printf("%-22s %14ld\n", kstat_sysctl_names[i], s->sys[i]);
		else
			printf("%-22s %14s\n", kstat_sysctl_names[i], "-");
		if (a != NULL)
			printf("  advice: %s\n", a);
	}
	printf("\nhalf-open (SYN_RECV): %lu, bogus source %lu (%.1f%%), "
	       "ending in .0/.255 %lu (%.1f%%)\n",
	       s->ho.total, s->ho.bogus, ts_share(s->ho.bogus, s->ho.total), s->ho.edge,
	       ts_share(s->ho.edge, s->ho.total));
}

/* ---- command ---------------------------------------------------------- */

static int ts_parse(struct ts_opts *o, int argc, char **argv)
{
	int count_given = 0;

	memset(o, 0, sizeof(*o));
	o->count = TS_MAX_WATCH;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v;

		if (strcmp(a, "--json") == 0) {
			o->json = 1;
			continue;
		}
		if (strcmp(a, "--port") != 0 && strcmp(a, "--watch") != 0 &&
		    strcmp(a, "--count") != 0) {
			fprintf(stderr, "mxguardctl tcpstat: unknown option %s\n", a);
			return -1;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "mxguardctl tcpstat: %s needs a value\n", a);
			return -1;
		}
		if (strcmp(a, "--port") == 0) {
			v = ts_number(argv[++i], 1, 65535);
			if (v < 0 || o->nwant >= TS_MAX_PORTS) {
				fprintf(stderr, "mxguardctl tcpstat: bad port %s (1-65535, at "
						"most %d)\n",
					argv[i], TS_MAX_PORTS);
				return -1;
			}
			o->want[v / 8] |= (uint8_t)(1u << (v % 8));
			o->nwant++;
		} else if (strcmp(a, "--watch") == 0) {
			v = ts_number(argv[++i], 1, TS_MAX_INTERVAL);
			if (v < 0) {
				fprintf(stderr, "mxguardctl tcpstat: bad interval %s\n", argv[i]);
				return -1;
			}
			o->watch = (unsigned)v;
		} else {
			v = ts_number(argv[++i], 1, TS_MAX_WATCH);
			if (v < 0) {
				fprintf(stderr, "mxguardctl tcpstat: bad count %s (1-%d)\n",
					argv[i], TS_MAX_WATCH);
				return -1;
			}
			o->count = (unsigned)v;
			count_given = 1;
		}
	}
	if (count_given && o->watch == 0) {
		fprintf(stderr, "mxguardctl tcpstat: --count needs --watch\n");
		return -1;
	}
	return 0;
}

int tcpstat_main(int argc, char **argv)
{
	struct ts_opts o;
	struct ts_snap cur, prev;
	int have_prev = 0, rc = 0;

	if (ts_parse(&o, argc, argv) < 0) {
		ts_usage();
		return 2;
	}
	if (o.watch > 0) {
		struct sigaction sa;

		/* No SA_RESTART: SIGINT must cut the sleep short. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = ts_on_sigint;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	for (unsigned iter = 0; iter < (o.watch ? o.count : 1) && !ts_stop; iter++) {
		if (iter > 0) {
			struct timespec ts = {.tv_sec = o.watch};

			while (!ts_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			if (ts_stop)
				break;
		}
		if (ts_snap_take(&cur, &o) < 0) {
			rc = 1;
			break;
		}
		if (o.json) {
			ts_print_json(&cur, have_prev ? &prev : NULL);
		} else {
			if (o.watch > 0)
				printf("%s--- %ld\n", iter ? "\n" : "", (long)time(NULL));
			ts_print_human(&cur, have_prev ? &prev : NULL);
		}
		fflush(stdout);
		if (have_prev)
			ts_snap_free(&prev);
		prev = cur;
		have_prev = 1;
	}
	if (have_prev)
		ts_snap_free(&prev);
	return rc;
}
