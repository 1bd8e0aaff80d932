/*
 * tcpstat.h - "mxguardctl tcpstat": TCP socket states, listen queues,
 * kernel overflow counters and the related sysctls, without root.
 */
#ifndef MXG_TCPSTAT_H
#define MXG_TCPSTAT_H

#include <stddef.h>
#include <stdint.h>

/*
 * tcpstat_main - run the tcpstat command. argv[0] is "tcpstat", the rest
 * are its options. Prints to stdout, diagnostics to stderr. Returns the
 * exit status: 0 on success, 1 on an error (with a message), 2 on bad
 * usage.
 */
int tcpstat_main(int argc, char **argv);

struct ts_snap; /* one look at the system (tcpstat.c) */
struct ts_opts; /* the command's options (tcpstat.c) */

/*
 * tcpstat_walk - account into s the TCP sockets of one sock_diag datagram
 * (buf, len bytes, 4-byte aligned, as recvmsg() filled it) of the dump of
 * family that o asked for: the SOCK_DIAG_BY_FAMILY records whose
 * nlmsg_seq is seq (others are skipped), each one's inet_diag_msg counted
 * by local port and state (o's --port filter applies), a listener's
 * queue kept, a half-open socket's peer classified. *msgs counts the
 * records across the datagrams of one dump. Returns 1 at NLMSG_DONE (the
 * dump is complete), 0 when the datagram ended and more must be read, -1
 * with a message in err on NLMSG_ERROR, a record shorter than an
 * inet_diag_msg, over 10 million records, bytes left over that do
 * not make a record, or no memory. The buffer is only read (non-const
 * for the NLMSG_* macros), never past len.
 */
int tcpstat_walk(struct ts_snap *s, const struct ts_opts *o, int family, uint32_t seq, void *buf,
		 size_t len, long *msgs, char *err, size_t errsz);

#endif
