/*
 * tcpstat_diag.c - the sock_diag reader of "mxguardctl tcpstat" (the
 * command and its view are tcpstat.c).
 *
 * One dump request per address family over a NETLINK_SOCK_DIAG socket
 * (the interface ss(8) uses), every TCP state asked for; each answer
 * datagram is walked record by record and each socket is counted by
 * local port and state. A listener's accept queue and backlog are kept;
 * a half-open (SYN_RECV) socket's peer is classified: a special-purpose
 * address (RFC 6890) or an IPv4 address ending in .0 or .255 cannot
 * answer a SYN-ACK.
 *
 * The datagrams come from the kernel, but the walk trusts nothing in
 * them (tsdiag_walk is fuzzed): each record is checked against the bytes
 * received before it is read, and a dump is bounded in records.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tcpstat_diag.h"

#define TS_RECV_BUF (32 * 1024) /* one netlink read */
#define TS_MAX_MSGS 10000000L	/* sockets in one dump: a runaway guard */

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
 * tsdiag_walk - see tcpstat_diag.h. Every record is checked against len
 * before it is read: the walk trusts nothing in the buffer.
 */
int tsdiag_walk(struct ts_snap *s, const struct ts_opts *o, int family, uint32_t seq, void *buf,
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

/* tsdiag_dump - see tcpstat_diag.h. */
int tsdiag_dump(struct ts_snap *s, const struct ts_opts *o, int family, char *err, size_t errsz)
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
		switch (tsdiag_walk(s, o, family, seq, buf, (size_t)n, &msgs, err, errsz)) {
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

void tsdiag_snap_free(struct ts_snap *s)
{
	free(s->slot);
	free(s->ports);
	free(s->lst);
	memset(s, 0, sizeof(*s));
}
