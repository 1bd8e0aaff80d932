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
 * IMPLEMENTATION
 *	This file parses the options, takes the snapshots and prints them;
 *	tcpstat_diag.c reads the sockets through sock_diag.
 * DIAGNOSTICS
 *	Exit 0 on success, 1 on an error (with a message), 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>

#include "jsonstr.h"
#include "kstat.h"
#include "tcpstat.h"
#include "tcpstat_diag.h"

#define TS_MAX_PORTS 64		/* --port given at most this often */
#define TS_MAX_WATCH 1000	/* iterations of --watch, at most */
#define TS_MAX_INTERVAL 86400	/* seconds between them, at most */

static const char *const ts_state_names[TS_NSTATES] = {
	NULL,	      "ESTABLISHED", "SYN_SENT",   "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE",	     "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING",
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

/* ---- one snapshot ----------------------------------------------------- */

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
	if (tsdiag_dump(s, o, AF_INET, err, sizeof(err)) < 0 ||
	    tsdiag_dump(s, o, AF_INET6, err, sizeof(err)) < 0 ||
	    kstat_counters_read(&s->ctr, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxguardctl: %s\n", err);
		tsdiag_snap_free(s);
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

/* ts_json_pct - ts_share to one decimal, as a jansson real. */
static json_t *ts_json_pct(unsigned long part, unsigned long total)
{
	return json_real((double)(long long)(ts_share(part, total) * 10 + 0.5) / 10);
}

/* ts_json_counters - kstat counters (or their change since prev) as an object. */
static json_t *ts_json_counters(const struct ts_snap *s, const struct ts_snap *prev)
{
	json_t *o = json_object();

	for (size_t i = 0; i < KSTAT_NCOUNTERS; i++) {
		json_t *v;

		if (!s->ctr.have[i] || (prev != NULL && !prev->ctr.have[i]))
			v = json_null();
		else if (prev != NULL)
			v = json_integer((json_int_t)ts_delta(s, prev, i));
		else
			v = json_integer((json_int_t)s->ctr.value[i]);
		json_object_set_new(o, kstat_names[i], v);
	}
	return o;
}

/*
 * ts_print_json - one snapshot as one line of JSON, built with jansson
 * (strings through jsonstr.c). Out of memory, a member is missing; the
 * line still parses.
 */
static void ts_print_json(const struct ts_snap *s, const struct ts_snap *prev)
{
	json_t *r = json_object(), *ports = json_object(), *lst = json_array();
	json_t *sys = json_object(), *advice = json_array(), *ho = json_object();

	for (size_t i = 0; i < s->nports; i++) {
		const struct ts_port *p = &s->ports[i];
		json_t *o = json_object();
		char port[8];

		for (int st = 1; st < TS_NSTATES; st++)
			json_object_set_new(o, ts_state_names[st],
					    json_integer((json_int_t)(p->n[0][st] + p->n[1][st])));
		snprintf(port, sizeof(port), "%u", p->port);
		json_object_set_new(ports, port, o);
	}
	json_object_set_new(r, "ports", ports);
	for (size_t i = 0; i < s->nlst; i++) {
		const struct ts_listener *l = &s->lst[i];
		json_t *o = json_object();

		json_object_set_new(o, "family", json_string(l->family == AF_INET ? "ipv4" : "ipv6"));
		json_object_set_new(o, "address", jsonstr_cstr(l->addr));
		json_object_set_new(o, "port", json_integer(l->port));
		json_object_set_new(o, "queue", json_integer(l->queue));
		json_object_set_new(o, "backlog", json_integer(l->backlog));
		json_array_append_new(lst, o);
	}
	json_object_set_new(r, "listeners", lst);
	json_object_set_new(r, "counters", ts_json_counters(s, NULL));
	if (prev != NULL)
		json_object_set_new(r, "deltas", ts_json_counters(s, prev));
	for (int i = 0; i < KSTAT_NSYSCTLS; i++) {
		const char *a = ts_advice(i, s->sys[i]);

		json_object_set_new(sys, kstat_sysctl_names[i],
				    s->sys[i] >= 0 ? json_integer(s->sys[i]) : json_null());
		if (a != NULL)
			json_array_append_new(advice, jsonstr_cstr(a));
	}
	json_object_set_new(r, "sysctls", sys);
	json_object_set_new(r, "advice", advice);
	json_object_set_new(ho, "total", json_integer((json_int_t)s->ho.total));
	json_object_set_new(ho, "bogus", json_integer((json_int_t)s->ho.bogus));
	json_object_set_new(ho, "bogus_pct", ts_json_pct(s->ho.bogus, s->ho.total));
	json_object_set_new(ho, "dot0_255", json_integer((json_int_t)s->ho.edge));
	json_object_set_new(ho, "dot0_255_pct", ts_json_pct(s->ho.edge, s->ho.total));
	json_object_set_new(r, "half_open", ho);
	if (r == NULL || json_dumpf(r, stdout, JSON_COMPACT | JSON_REAL_PRECISION(15)) < 0)
		fputs("{\"error\":\"out of memory\"}", stdout);
	putchar('\n');
	json_decref(r);
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
			tsdiag_snap_free(&prev);
		prev = cur;
		have_prev = 1;
	}
	if (have_prev)
		tsdiag_snap_free(&prev);
	return rc;
}
