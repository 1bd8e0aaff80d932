/*
 * synwatch.h - SYN-flood and accept-queue awareness.
 *
 * Every synwatch_interval seconds: read the kernel's TcpExt counters
 * (ListenOverflows, ListenDrops, TCPReqQFullDoCookies, TCPReqQFullDrop,
 * SyncookiesSent/Recv/Failed) and each of mxguard's own listeners' accept
 * queue (current length and backlog), and log one warning with the numbers
 * and the advice when the counters moved. The kernel counters are read by
 * kstat.c, which mxguardctl tcpstat shares.
 */
#ifndef MXG_SYNWATCH_H
#define MXG_SYNWATCH_H

#include <stdint.h>

struct mxg;

/* The last reading, for the metrics endpoint and mxguardctl status. */
struct synwatch_view {
	uint64_t counters[7];	 /* totals, in the order of kstat_names */
	uint64_t deltas[7];	 /* moves since the previous reading */
	uint32_t queue_max;	 /* the fullest accept queue of ours */
	uint32_t warnings;	 /* warnings logged so far */
};

struct synwatch;

/* synwatch_start - begin reading (no-op when synwatch_interval is 0). NULL on error. */
struct synwatch *synwatch_start(struct mxg *mxg);

/* synwatch_view - the last reading. */
const struct synwatch_view *synwatch_view(const struct synwatch *sw);

void synwatch_stop(struct synwatch **swp);

#endif
