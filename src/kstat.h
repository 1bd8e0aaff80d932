/*
 * kstat.h - the kernel's TCP listen-queue and SYN-cookie counters, the
 * sysctls that size those queues, and the accept queue of one listening
 * socket. Shared by the daemon (synwatch.c) and "mxguardctl tcpstat", so
 * that there is one reader of /proc/net/netstat.
 *
 * A library module: it never logs and never exits; errors come back as
 * -1 with a message in the caller's buffer.
 */
#ifndef MXG_KSTAT_H
#define MXG_KSTAT_H

#include <stddef.h>
#include <stdint.h>

/* The TcpExt counters read, in the order of kstat_names. */
enum kstat_counter {
	KSTAT_LISTEN_OVERFLOWS,	 /* accept queue full: handshake or SYN dropped */
	KSTAT_LISTEN_DROPS,	 /* any drop at a listener, overflows included */
	KSTAT_REQQ_FULL_COOKIES, /* SYN queue full: answered with a cookie */
	KSTAT_REQQ_FULL_DROP,	 /* SYN queue full and no cookies: SYN dropped */
	KSTAT_COOKIES_SENT,
	KSTAT_COOKIES_RECV,
	KSTAT_COOKIES_FAILED,
	KSTAT_NCOUNTERS
};

/* kstat_names - the counters' names as /proc/net/netstat spells them. */
extern const char *const kstat_names[KSTAT_NCOUNTERS];

struct kstat_counters {
	uint64_t value[KSTAT_NCOUNTERS];
	unsigned char have[KSTAT_NCOUNTERS]; /* 0: this kernel does not show it */
};

/*
 * kstat_counters_read - fill kc from /proc/net/netstat. The counters are
 * those of the caller's network namespace: the whole host, not one
 * program. Returns 0 (a counter the kernel lacks has have[i] == 0), or -1
 * with a message in err.
 */
int kstat_counters_read(struct kstat_counters *kc, char *err, size_t errsz);

/* kstat_counters_read_file - the same from path (tests, other roots). */
int kstat_counters_read_file(const char *path, struct kstat_counters *kc, char *err, size_t errsz);

/* The sysctls that size the listen queues. */
enum kstat_sysctl {
	KSTAT_SOMAXCONN,      /* caps every listen(2) backlog */
	KSTAT_SYN_BACKLOG,    /* caps the SYN (half-open) queue */
	KSTAT_SYNCOOKIES,     /* 1: cookies only when the SYN queue overflows */
	KSTAT_ABORT_OVERFLOW, /* 1: reset a client whose handshake overflows */
	KSTAT_NSYSCTLS
};

/* kstat_sysctl_names - short names: "somaxconn", "tcp_max_syn_backlog", ... */
extern const char *const kstat_sysctl_names[KSTAT_NSYSCTLS];

/* kstat_sysctl_keys - full names: "net.core.somaxconn", ... */
extern const char *const kstat_sysctl_keys[KSTAT_NSYSCTLS];

/* kstat_sysctl - the current value of s, or -1 if unreadable or not a number. */
long kstat_sysctl(enum kstat_sysctl s);

/*
 * kstat_listen_queue - the accept queue of the listening TCP socket fd:
 * completed connections not yet accept()ed (*queue) and the backlog that
 * limits them (*backlog), through TCP_INFO. Linux queues up to backlog + 1
 * connections. Returns 0, or -1 with errno set (EINVAL: fd is not a
 * listening TCP socket).
 */
int kstat_listen_queue(int fd, uint32_t *queue, uint32_t *backlog);

#endif
