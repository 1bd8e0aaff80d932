/*
 * NAME
 *	kstat - kernel TCP listen-queue counters and sysctls
 * SYNOPSIS
 *	#include "kstat.h"
 * DESCRIPTION
 *	One reader of /proc/net/netstat's TcpExt counters that move when an
 *	accept queue or a SYN queue overflows or SYN cookies are used, of the
 *	sysctls that size those queues, and of a listening socket's own
 *	accept queue (TCP_INFO). synwatch.c polls it inside the daemon and
 *	"mxguardctl tcpstat" shows it to the operator.
 *
 *	Reads are of small procfs files and one getsockopt(): they do not
 *	block, so the daemon may call them from the event loop.
 * DIAGNOSTICS
 *	None: functions return -1 with a message in the caller's buffer (or
 *	errno set), the caller decides what to say.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kstat.h"

#define KSTAT_NETSTAT "/proc/net/netstat"
#define KSTAT_FILE_MAX (256 * 1024) /* /proc/net/netstat is ~5 KiB */
#define KSTAT_LINE 16384

const char *const kstat_names[KSTAT_NCOUNTERS] = {
    "ListenOverflows", "ListenDrops",	 "TCPReqQFullDoCookies", "TCPReqQFullDrop",
    "SyncookiesSent",  "SyncookiesRecv", "SyncookiesFailed",
};

const char *const kstat_sysctl_names[KSTAT_NSYSCTLS] = {"somaxconn", "tcp_max_syn_backlog",
							"tcp_syncookies", "tcp_abort_on_overflow"};

const char *const kstat_sysctl_keys[KSTAT_NSYSCTLS] = {
    "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_abort_on_overflow"};

static const char *const kstat_sysctl_paths[KSTAT_NSYSCTLS] = {
    "/proc/sys/net/core/somaxconn", "/proc/sys/net/ipv4/tcp_max_syn_backlog",
    "/proc/sys/net/ipv4/tcp_syncookies", "/proc/sys/net/ipv4/tcp_abort_on_overflow"};

/* kstat_index - the position of name in kstat_names, or -1. */
static int kstat_index(const char *name)
{
	for (int i = 0; i < KSTAT_NCOUNTERS; i++)
		if (strcmp(kstat_names[i], name) == 0)
			return i;
	return -1;
}

/* kstat_u64 - s as an unsigned decimal, or -1 (sign, junk, overflow). */
static int kstat_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return -1; /* strtoull() would accept "-1" */
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = (uint64_t)x;
	return 0;
}

/*
 * kstat_counters_read_file - the file is pairs of lines, the first naming
 * the fields, the second giving their values, both starting with the same
 * "Prefix:". Fields are matched by name, never by position: their order
 * and number change between kernels.
 */
int kstat_counters_read_file(const char *path, struct kstat_counters *kc, char *err, size_t errsz)
{
	FILE *f = fopen(path, "r");
	char *names = malloc(KSTAT_LINE), *vals = malloc(KSTAT_LINE);
	size_t total = 0;
	int rc = -1;

	memset(kc, 0, sizeof(*kc));
	if (f == NULL || names == NULL || vals == NULL) {
		snprintf(err, errsz, "%s: %s", path, f == NULL ? strerror(errno) : "out of memory");
		goto out;
	}
	while (fgets(names, KSTAT_LINE, f) != NULL) {
		char *sn, *sv, *n, *v;

		if (fgets(vals, KSTAT_LINE, f) == NULL)
			break;
		total += strlen(names) + strlen(vals);
		if (total > KSTAT_FILE_MAX || strchr(names, '\n') == NULL ||
		    strchr(vals, '\n') == NULL) {
			snprintf(err, errsz, "%s: line or file too long", path);
			goto out;
		}
		n = strtok_r(names, " \n", &sn);
		v = strtok_r(vals, " \n", &sv);
		if (n == NULL || v == NULL || strcmp(n, v) != 0) {
			snprintf(err, errsz, "%s: unpaired lines", path);
			goto out;
		}
		if (strcmp(n, "TcpExt:") != 0)
			continue;
		while ((n = strtok_r(NULL, " \n", &sn)) != NULL &&
		       (v = strtok_r(NULL, " \n", &sv)) != NULL) {
			int i = kstat_index(n);

			if (i >= 0 && kstat_u64(v, &kc->value[i]) == 0)
				kc->have[i] = 1;
		}
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	free(names);
	free(vals);
	return rc;
}

int kstat_counters_read(struct kstat_counters *kc, char *err, size_t errsz)
{
	return kstat_counters_read_file(KSTAT_NETSTAT, kc, err, errsz);
}

long kstat_sysctl(enum kstat_sysctl s)
{
	FILE *f;
	char line[64], *end;
	long v = -1;

	if ((unsigned)s >= KSTAT_NSYSCTLS || (f = fopen(kstat_sysctl_paths[s], "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		errno = 0;
		v = strtol(line, &end, 10);
		if (errno != 0 || end == line || *end != '\0' || v < 0)
			v = -1;
	}
	fclose(f);
	return v;
}

int kstat_listen_queue(int fd, uint32_t *queue, uint32_t *backlog)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	/*
	 * For a listener the kernel reuses two fields of tcp_info:
	 * tcpi_unacked is sk_ack_backlog (the accept queue now) and
	 * tcpi_sacked is sk_max_ack_backlog (listen(2)'s backlog as capped).
	 */
	if (len < offsetof(struct tcp_info, tcpi_sacked) + sizeof(ti.tcpi_sacked) ||
	    ti.tcpi_state != TCP_LISTEN) {
		errno = EINVAL;
		return -1;
	}
	*queue = ti.tcpi_unacked;
	*backlog = ti.tcpi_sacked;
	return 0;
}
