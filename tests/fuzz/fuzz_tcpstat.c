/*
 * fuzz_tcpstat.c - libFuzzer target: a sock_diag datagram as
 * "mxguardctl tcpstat" walks it (tsdiag_walk).
 *
 * The walk is the module tools/tcpstat_diag.c, linked in; its header
 * declares the snapshot and options the walk accounts into, so that the
 * target can build them and then look inside them.
 *
 * The first byte picks the dump (bit 0: IPv6, else IPv4) and whether
 * --port 25 was given (bit 1); the rest is one datagram, copied to a heap
 * block of its exact size (malloc's alignment, as recvmsg() gets it) so
 * that a read past its end is caught.
 *
 * Properties: the walk returns -1 (with a message), 0 or 1; it counts at
 * most as many records as fit in the datagram; each port seen is found
 * through its slot; the sockets of a known state add up to no more than
 * the records; with --port 25 no other port is counted; half-open peers
 * add up to the SYN_RECV sockets; listeners to the LISTEN sockets, each
 * with a NUL-terminated address.
 */
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tools/tcpstat_diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct ts_snap *s, const struct ts_opts *o, long msgs, size_t len)
{
	unsigned long total = 0, syn = 0, listen = 0;

	if (msgs < 0 || (size_t)msgs > len / NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		__builtin_trap();
	for (size_t i = 0; i < s->nports; i++) {
		const struct ts_port *p = &s->ports[i];

		if (s->slot[p->port] != i + 1 || (o->nwant > 0 && p->port != 25))
			__builtin_trap();
		for (int f = 0; f < 2; f++) {
			if (p->n[f][0] != 0)
				__builtin_trap();
			for (int st = 1; st < TS_NSTATES; st++)
				total += p->n[f][st];
			syn += p->n[f][TS_SYN_RECV];
			listen += p->n[f][TS_LISTEN];
		}
	}
	if (total > (unsigned long)msgs || s->ho.total != syn || s->ho.bogus > s->ho.total ||
	    s->ho.edge > s->ho.total || s->nlst != listen)
		__builtin_trap();
	for (size_t i = 0; i < s->nlst; i++)
		if (memchr(s->lst[i].addr, '\0', sizeof(s->lst[i].addr)) == NULL)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_opts opts;
	struct ts_snap snap;
	char err[256];
	long msgs = 0;
	void *buf;
	int family, rc;

	if (size < 1)
		return 0;
	family = data[0] & 1 ? AF_INET6 : AF_INET;
	memset(&opts, 0, sizeof(opts));
	if (data[0] & 2) {
		opts.want[25 / 8] |= 1u << (25 % 8);
		opts.nwant = 1;
	}
	memset(&snap, 0, sizeof(snap));
	if ((snap.slot = calloc(65536, sizeof(*snap.slot))) == NULL ||
	    (buf = malloc(size - 1 ? size - 1 : 1)) == NULL)
		abort();
	memcpy(buf, data + 1, size - 1);
	err[0] = '\0';
	rc = tsdiag_walk(&snap, &opts, family, TS_SEQ, buf, size - 1, &msgs, err, sizeof(err));
	if (rc < -1 || rc > 1 || (rc == -1 && err[0] == '\0'))
		__builtin_trap();
	check(&snap, &opts, msgs, size - 1);
	free(buf);
	tsdiag_snap_free(&snap);
	return 0;
}
