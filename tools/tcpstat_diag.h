/*
 * tcpstat_diag.h - the sock_diag reader of "mxguardctl tcpstat"
 * (tools/tcpstat_diag.c): the kernel's dump of TCP sockets accounted
 * into a snapshot by local port and state, with the listeners' queues
 * and the peers of half-open sockets. The view (tcpstat.c) and the fuzz
 * target read the snapshot.
 *
 * The types keep the tool's own ts_ prefix; the module's functions are
 * tsdiag_*.
 */
#ifndef MXG_TCPSTAT_DIAG_H
#define MXG_TCPSTAT_DIAG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "kstat.h"

#define TS_SEQ 0x6d786721 /* nlmsg_seq of our dump request */

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

/*
 * One look at the system: the sockets (filled here) and the kernel's
 * counters and sysctls (kstat.c, read by tcpstat.c).
 */
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

/* The command's options; the walk reads want and nwant (--port). */
struct ts_opts {
	uint8_t want[65536 / 8]; /* ports asked for with --port */
	int nwant, json;
	unsigned watch, count;
};

/*
 * tsdiag_dump - ask the kernel (NETLINK_SOCK_DIAG) for every TCP socket
 * of family (AF_INET or AF_INET6) and account them into s with
 * tsdiag_walk(); s->slot must be a zeroed array of 65536 entries. A
 * kernel that does not end the dump within 5s of silence is an error.
 * Returns 0, or -1 with a message in err.
 */
int tsdiag_dump(struct ts_snap *s, const struct ts_opts *o, int family, char *err, size_t errsz);

/*
 * tsdiag_walk - account into s the TCP sockets of one sock_diag datagram
 * (buf, len bytes, 4-byte aligned, as recvmsg() filled it) of the dump of
 * family that o asked for: the SOCK_DIAG_BY_FAMILY records whose
 * nlmsg_seq is seq (others are skipped), each one's inet_diag_msg counted
 * by local port and state (o's --port filter applies), a listener's
 * queue kept, a half-open socket's peer classified. s->slot must be an
 * array of 65536 entries (zeroed before the first datagram). *msgs
 * counts the records across the datagrams of one dump. Returns 1 at
 * NLMSG_DONE (the dump is complete), 0 when the datagram ended and more
 * must be read, -1 with a message in err on NLMSG_ERROR, a record
 * shorter than an inet_diag_msg, over 10 million records, bytes left
 * over that do not make a record, or no memory. The buffer is only read
 * (non-const for the NLMSG_* macros), never past len.
 */
int tsdiag_walk(struct ts_snap *s, const struct ts_opts *o, int family, uint32_t seq, void *buf,
		size_t len, long *msgs, char *err, size_t errsz);

/*
 * tsdiag_snap_free - free what s holds (slot, ports, listeners) and
 * zero it.
 */
void tsdiag_snap_free(struct ts_snap *s);

#endif
