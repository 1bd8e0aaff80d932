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

/*
 * synwatch_start - begin reading (no-op when synwatch_interval is 0). NULL on error.
 * Call after listen_start(). The interval is re-read on every tick: while
 * it is 0 nothing is read, and a reload that sets it takes effect within
 * 5 seconds. The caller frees the result with synwatch_stop().
 */
struct synwatch *synwatch_start(struct mxg *mxg);

/*
 * synwatch_view - the last reading (all zero before the first one); NULL
 * when sw is NULL (synwatch_start() failed). Valid until synwatch_stop().
 */
const struct synwatch_view *synwatch_view(const struct synwatch *sw);

/* synwatch_stop - stop the timer, free *swp and set it to NULL. NULL is fine. */
void synwatch_stop(struct synwatch **swp);

#endif
