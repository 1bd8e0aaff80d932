/*
 * fw.h - kernel-level blocking with nftables (firewall = nftables).
 *
 * mxguard owns one table (firewall_table, family inet) holding four sets,
 * block4 (ipv4_addr) and block6 (ipv6_addr) with "flags timeout" for
 * blocked addresses, net4 and net6 with "flags interval, timeout" for
 * blocked networks (apart: an interval set refuses overlapping elements,
 * and a blocked address lies inside its blocked network), and an input
 * chain that drops TCP to the guarded ports from those sets: the kernel
 * releases each element by itself when its timeout runs out.
 *
 * The work is done by a small helper process forked before privileges are
 * dropped: it keeps only CAP_NET_ADMIN, holds one libnftables context, and
 * reads requests from a socketpair, applying everything that is queued in
 * one batched transaction. The network process never runs nft.
 */
#ifndef MXG_FW_H
#define MXG_FW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct fw;

/*
 * fw_start - fork the helper (as root, before the privilege drop) and have
 * it (re)create the table for the TCP ports[0..nports): any previous table
 * of that name is replaced, so blocks are re-applied from mxguard's store
 * after a start. run_as is the user the helper switches to (keeping
 * CAP_NET_ADMIN). Returns NULL with a clear message in err, e.g. when
 * nftables is not permitted here.
 */
struct fw *fw_start(const char *table, const uint16_t *ports, int nports, const char *run_as,
		    char *err, size_t errsz);

/*
 * fw_block - ask for addr to be dropped for seconds (>= 1; longer than 366
 * days is cut to that). An IPv4-mapped IPv6 address is blocked as IPv4.
 * Never blocks: when the helper is behind, the request is counted as lost
 * and logged once per run of losses. Returns 0 or -1.
 */
int fw_block(struct fw *fw, const struct sockaddr *sa, uint32_t seconds);

/* fw_unblock - remove addr from the set now. Returns 0 or -1. */
int fw_unblock(struct fw *fw, const struct sockaddr *sa);

/*
 * fw_block_net / fw_unblock_net - the same for the network sa/plen (plen
 * counted within sa's family, host bits clear: the caller checked them;
 * the family's full length means the address alone, as fw_block).
 * Returns 0, or -1 (also for a plen out of range).
 */
int fw_block_net(struct fw *fw, const struct sockaddr *sa, int plen, uint32_t seconds);
int fw_unblock_net(struct fw *fw, const struct sockaddr *sa, int plen);

/* fw_lost - requests that could not be handed to the helper. */
unsigned long fw_lost(const struct fw *fw);

/*
 * fw_fd - the descriptor that becomes readable when the helper reports a
 * failed batch or dies; fw_poll - log those reports now, without waiting.
 * Optional: fw_block and fw_unblock poll too, so without an event on
 * fw_fd a report is only logged at the next request. After the helper's
 * death fw_fd is -1 and every request counts as lost.
 */
int fw_fd(const struct fw *fw);
void fw_poll(struct fw *fw);

/*
 * fw_stop - end the helper; the table and its elements stay (they expire
 * by themselves, and the next start replaces them).
 */
void fw_stop(struct fw **fwp);

#endif
