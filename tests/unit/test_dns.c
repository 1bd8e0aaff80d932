/*
 * test_dns.c - the DNS module against a real dnsmasq on loopback: verified
 * names (confirmed, forged, missing, IPv6, IPv4-mapped, several PTRs, an
 * implausible PTR), DNSBL-style addresses, NS records, refused and dead
 * servers, the cache (hits with dnsmasq gone, TTL expiry, eviction), and
 * the callback rules (never synchronous, never after dns_cancel or
 * dns_free). Without a working dnsmasq the test fails and says why.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "dns.h"

#ifndef DNSMASQ
#define DNSMASQ "/usr/sbin/dnsmasq"
#endif

static struct event_base *base;
static int in_call; /* set while a dns_* call runs: a callback then is synchronous */

struct res {
	int calls;
	int sync; /* called from inside the dns_* call */
	enum dns_status st;
	char name[256];
	int n;
	unsigned char a4[16][4];
	char names[16][256];
};

static void name_cb(enum dns_status st, const char *name, void *arg)
{
	struct res *r = arg;

	r->calls++;
	r->sync |= in_call;
	r->st = st;
	snprintf(r->name, sizeof(r->name), "%s", name != NULL ? name : "(null)");
}

static void addrs_cb(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg)
{
	struct res *r = arg;

	r->calls++;
	r->sync |= in_call;
	r->st = st;
	r->n = n;
	for (int i = 0; i < n && i < 16; i++)
		memcpy(r->a4[i], a4[i], 4);
}

static void names_cb(enum dns_status st, const char *const *names, int n, void *arg)
{
	struct res *r = arg;

	r->calls++;
	r->sync |= in_call;
	r->st = st;
	r->n = n;
	for (int i = 0; i < n && i < 16; i++)
		snprintf(r->names[i], sizeof(r->names[i]), "%s", names[i]);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* run - the loop until *calls reaches want or ms pass. Returns the seconds spent. */
static double run(const int *calls, int want, int ms)
{
	double t0 = now_s();
	struct timeval tv = {0, 5000};

	while (*calls < want && now_s() - t0 < ms / 1000.0) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return now_s() - t0;
}

static struct sockaddr_storage ip(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		fprintf(stderr, "bad test address %s\n", s);
	return ss;
}

static struct dns_req *verify(struct dns *d, const char *addr, struct res *r)
{
	struct sockaddr_storage ss = ip(addr);
	struct dns_req *req;

	memset(r, 0, sizeof(*r));
	in_call = 1;
	req = dns_verified_name(d, (struct sockaddr *)&ss, name_cb, r);
	in_call = 0;
	return req;
}

static struct dns_req *addrs(struct dns *d, const char *name, struct res *r)
{
	struct dns_req *req;

	memset(r, 0, sizeof(*r));
	in_call = 1;
	req = dns_addrs(d, name, addrs_cb, r);
	in_call = 0;
	return req;
}

/* names - dns_ns or dns_txt, with the callback checked for synchrony. */
static struct dns_req *names(struct dns_req *(*fn)(struct dns *, const char *, dns_names_cb,
						   void *),
			     struct dns *d, const char *name, struct res *r)
{
	struct dns_req *req;

	memset(r, 0, sizeof(*r));
	in_call = 1;
	req = fn(d, name, names_cb, r);
	in_call = 0;
	return req;
}

static struct dns_req *ns(struct dns *d, const char *name, struct res *r)
{
	return names(dns_ns, d, name, r);
}

/* One lookup of a verified name, run to the end. */
static void check_name(struct dns *d, const char *addr, enum dns_status st, const char *name)
{
	struct res r;

	CHECK(verify(d, addr, &r) != NULL, "%s: no request", addr);
	CHECK(r.calls == 0, "%s: callback before return", addr);
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && !r.sync, "%s: %d calls, sync %d", addr, r.calls, r.sync);
	CHECK(r.st == st, "%s: status %d, want %d", addr, r.st, st);
	if (name == NULL)
		name = "(null)";
	CHECK(strcmp(r.name, name) == 0, "%s: name %s, want %s", addr, r.name, name);
}

/* ---- dnsmasq ---- */

static pid_t dnsmasq_pid;

/* free_port - a port free for both UDP and TCP on 127.0.0.1 (and ::1 if have6). */
static int free_port(int have6)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int u = socket(AF_INET, SOCK_DGRAM, 0), t = -1, port = -1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (u >= 0 && bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(u, (struct sockaddr *)&sin, &len) == 0) {
		t = socket(AF_INET, SOCK_STREAM, 0);
		if (t >= 0 && bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			port = ntohs(sin.sin_port);
	}
	if (port > 0 && have6) {
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
		int u6 = socket(AF_INET6, SOCK_DGRAM, 0);

		s6.sin6_addr = in6addr_loopback;
		if (u6 < 0 || bind(u6, (struct sockaddr *)&s6, sizeof(s6)) != 0)
			port = -1;
		if (u6 >= 0)
			close(u6);
	}
	if (u >= 0)
		close(u);
	if (t >= 0)
		close(t);
	return port;
}

static int have_ipv6_loopback(void)
{
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	int s = socket(AF_INET6, SOCK_DGRAM, 0), ok;

	s6.sin6_addr = in6addr_loopback;
	ok = s >= 0 && bind(s, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

/* dnsmasq_answers - one raw A query for mail.example.test; 1 when any reply came. */
static int dnsmasq_answers(int port)
{
	/* id 0x1234, RD, one question: mail.example.test IN A */
	static const char q[] = "\x12\x34\x01\x00\0\1\0\0\0\0\0\0"
				"\4mail\7example\4test\0\0\1\0\1";
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {0, 100000};
	unsigned char buf[512];
	int s = socket(AF_INET, SOCK_DGRAM, 0), ok = 0;

	if (s < 0)
		return 0;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(s, q, sizeof(q) - 1, 0, (struct sockaddr *)&sin, sizeof(sin)) ==
	    (ssize_t)sizeof(q) - 1)
		ok = recv(s, buf, sizeof(buf), 0) >= 12 && buf[0] == 0x12 && buf[1] == 0x34;
	close(s);
	return ok;
}

/*
 * dnsmasq_start - the test zone. Every name lives under a --local domain,
 * so an unknown name gets NXDOMAIN (not REFUSED), and --local-ttl gives the
 * local records a TTL (dnsmasq's default is 0, which nobody may cache).
 * Returns the port, or -1 with the reason printed.
 */
static int dnsmasq_start(int have6)
{
	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "test_dns: cannot run %s: %s (install dnsmasq-base)\n", DNSMASQ,
			strerror(errno));
		return -1;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		char portopt[32], listen[64];
		int port = free_port(have6), status;
		pid_t pid;

		if (port < 0)
			continue;
		snprintf(portopt, sizeof(portopt), "--port=%d", port);
		snprintf(listen, sizeof(listen), "--listen-address=127.0.0.1%s",
			 have6 ? ",::1" : "");
		fflush(stderr);
		if ((pid = fork()) < 0) {
			fprintf(stderr, "test_dns: fork: %s\n", strerror(errno));
			return -1;
		}
		if (pid == 0) {
			const char *args[] = {
			    DNSMASQ, "--keep-in-foreground", portopt, listen, "--bind-interfaces",
			    "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root",
			    "--pid-file=", "--log-facility=-", "--local-ttl=600", "--local=/test/",
			    "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
			    /* A and PTR, both ways */
			    "--host-record=mail.example.test,127.0.5.1",
			    "--host-record=mail6.example.test,2001:db8::5",
			    /* a PTR whose name points elsewhere */
			    "--ptr-record=2.5.0.127.in-addr.arpa,forged.example.test",
			    "--host-record=forged.example.test,127.0.5.99",
			    /* two PTRs, only one confirmed (dnsmasq answers the last one first) */
			    "--ptr-record=6.5.0.127.in-addr.arpa,multi.example.test",
			    "--ptr-record=6.5.0.127.in-addr.arpa,nowhere.example.test",
			    "--address=/multi.example.test/127.0.5.6",
			    /* a PTR name no host name can be, though its A would confirm */
			    "--ptr-record=7.5.0.127.in-addr.arpa,bad!name.example.test",
			    "--dns-rr=bad!name.example.test,1,7f000507",
			    /* a one-second TTL */
			    "--host-record=short.example.test,127.0.5.4,1",
			    /* DNSBL */
			    "--host-record=2.0.0.127.zen.example.test,127.0.0.2",
			    "--host-record=2.0.0.127.zen.example.test,127.0.0.10",
			    "--host-record=a1.example.test,127.0.6.1",
			    "--host-record=a2.example.test,127.0.6.2",
			    "--host-record=a3.example.test,127.0.6.3",
			    /* NS: raw RRs, the names in wire format */
			    "--dns-rr=example.test,2,036e7331076578616d706c650474657374"
			    "00",
			    "--dns-rr=example.test,2,036e7332076578616d706c650474657374"
			    "00",
			    /* TXT, one with a control byte that must not come through */
			    "--txt-record=2.0.0.127.zen.example.test,Listed: see example",
			    "--dns-rr=odd.example.test,16,0461620763", /* "ab\ac" */
			    NULL};
			char *argv[sizeof(args) / sizeof(args[0])];

			/* execv takes char *const []: copies, not a cast. */
			for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
				if (args[i] == NULL)
					argv[i] = NULL;
				else if ((argv[i] = strdup(args[i])) == NULL)
					_exit(127);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			execv(DNSMASQ, argv);
			fprintf(stderr, "test_dns: exec %s: %s\n", DNSMASQ, strerror(errno));
			_exit(127);
		}
		for (int i = 0; i < 50; i++) {
			if (waitpid(pid, &status, WNOHANG) == pid) {
				fprintf(stderr, "test_dns: dnsmasq on port %d exited (status %d)\n",
					port, status);
				pid = -1;
				break;
			}
			if (dnsmasq_answers(port)) {
				dnsmasq_pid = pid;
				return port;
			}
		}
		if (pid > 0) {
			fprintf(stderr, "test_dns: dnsmasq on port %d does not answer\n", port);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
	fprintf(stderr, "test_dns: could not start dnsmasq, giving up\n");
	return -1;
}

static void dnsmasq_stop(void)
{
	int status;

	if (dnsmasq_pid <= 0)
		return;
	kill(dnsmasq_pid, SIGTERM);
	waitpid(dnsmasq_pid, &status, 0);
	dnsmasq_pid = 0;
}

/* ---- tests ---- */

static void test_args(void)
{
	char err[200];
	struct dns *d;

	CHECK(dns_new(base, "bogus", 1000, 10, err, sizeof(err)) == NULL, "bad resolver");
	CHECK(strstr(err, "bogus") != NULL, "%s", err);
	CHECK(dns_new(base, "127.0.0.1:0", 1000, 10, err, sizeof(err)) == NULL, "port 0");
	CHECK(dns_new(base, "127.0.0.1:", 1000, 10, err, sizeof(err)) == NULL, "empty port");
	CHECK(dns_new(base, "[127.0.0.1]:53", 1000, 10, err, sizeof(err)) == NULL, "v4 in []");
	CHECK(dns_new(base, "[::1", 1000, 10, err, sizeof(err)) == NULL, "unclosed [");
	CHECK(dns_new(base, "127.0.0.1", 0, 10, err, sizeof(err)) == NULL, "timeout 0");
	CHECK(dns_new(base, "127.0.0.1", 100, -1, err, sizeof(err)) == NULL, "cache -1");
	d = dns_new(base, "127.0.0.1, 127.0.0.2:5353 [::1]:53 ::1", 1000, 0, err, sizeof(err));
	CHECK(d != NULL, "resolver list: %s", err);
	dns_free(&d);
	CHECK(d == NULL, "dns_free clears the pointer");
	d = dns_new(base, NULL, 1000, 10, err, sizeof(err));
	CHECK(d != NULL, "resolv.conf: %s", err);
	dns_free(&d);
	dns_free(&d);
}

static void test_names(struct dns *d)
{
	struct sockaddr_storage ss;
	struct res r;

	check_name(d, "127.0.5.1", DNS_OK, "mail.example.test");
	check_name(d, "127.0.5.2", DNS_NONE, NULL); /* PTR not confirmed */
	check_name(d, "127.0.5.3", DNS_NONE, NULL); /* no PTR: NXDOMAIN */
	check_name(d, "::ffff:127.0.5.1", DNS_OK, "mail.example.test");
	check_name(d, "2001:db8::5", DNS_OK, "mail6.example.test");
	check_name(d, "2001:db8::6", DNS_NONE, NULL);
	check_name(d, "127.0.5.6", DNS_OK, "multi.example.test");
	check_name(d, "127.0.5.7", DNS_NONE, NULL); /* "bad!name" */

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	CHECK(dns_verified_name(d, (struct sockaddr *)&ss, name_cb, &r) == NULL, "AF_UNIX");
}

static void test_addrs(struct dns *d)
{
	struct res r;

	CHECK(addrs(d, "2.0.0.127.zen.example.test", &r) != NULL && r.calls == 0, "dnsbl");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && !r.sync && r.st == DNS_OK && r.n == 2, "dnsbl: %d %d %d", r.calls,
	      r.st, r.n);
	CHECK(r.n == 2 && r.a4[0][0] == 127 && r.a4[0][3] + r.a4[1][3] == 12,
	      "dnsbl 127.0.0.2/.10");
	/* The same key, written differently: answered from the cache. */
	CHECK(addrs(d, "2.0.0.127.ZEN.example.test.", &r) != NULL && r.calls == 0, "dnsbl again");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && !r.sync && r.st == DNS_OK && r.n == 2, "dnsbl again: %d %d %d",
	      r.calls, r.st, r.n);

	CHECK(addrs(d, "3.0.0.127.zen.example.test", &r) != NULL, "dnsbl miss");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_NONE && r.n == 0, "dnsbl miss: %d %d", r.calls, r.st);
	CHECK(addrs(d, "mail6.example.test", &r) != NULL, "no A");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_NONE, "NODATA: %d", r.st);

	/* Outside the --local domains dnsmasq says REFUSED. */
	CHECK(addrs(d, "outside.invalid", &r) != NULL, "refused");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_FAIL, "REFUSED: %d", r.st);

	CHECK(addrs(d, "bad name", &r) == NULL, "bad name");
	CHECK(addrs(d, "", &r) == NULL, "empty name");
	CHECK(addrs(d, "a..b", &r) == NULL, "empty label");
}

static void test_ns(struct dns *d)
{
	struct res r;

	CHECK(ns(d, "example.test", &r) != NULL && r.calls == 0, "ns");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && !r.sync && r.st == DNS_OK && r.n == 2, "ns: %d %d %d", r.calls, r.st,
	      r.n);
	CHECK(r.n == 2 && ((strcmp(r.names[0], "ns1.example.test") == 0 &&
			    strcmp(r.names[1], "ns2.example.test") == 0) ||
			   (strcmp(r.names[0], "ns2.example.test") == 0 &&
			    strcmp(r.names[1], "ns1.example.test") == 0)),
	      "ns names %s %s", r.names[0], r.names[1]);
	CHECK(ns(d, "mail.example.test", &r) != NULL, "no NS");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_NONE && r.n == 0, "no NS: %d %d", r.st, r.n);
	CHECK(ns(d, "nothere.example.test", &r) != NULL, "NXDOMAIN NS");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_NONE, "NXDOMAIN NS: %d", r.st);
}

static struct dns_req *txt(struct dns *d, const char *name, struct res *r)
{
	return names(dns_txt, d, name, r);
}

static void test_txt(struct dns *d)
{
	struct res r;

	CHECK(txt(d, "2.0.0.127.zen.example.test", &r) != NULL && r.calls == 0, "txt");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && !r.sync && r.st == DNS_OK && r.n == 1 &&
		      strcmp(r.names[0], "Listed: see example") == 0,
	      "txt: %d %d %d %s", r.calls, r.st, r.n, r.n ? r.names[0] : "");
	CHECK(txt(d, "odd.example.test", &r) != NULL, "odd txt");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_OK && r.n == 1 && strcmp(r.names[0], "ab?c") == 0, "odd txt: %d %s",
	      r.st, r.n ? r.names[0] : "");
	CHECK(txt(d, "mail.example.test", &r) != NULL, "no TXT");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_NONE && r.n == 0, "no TXT: %d", r.st);
}

static void test_cancel(struct dns *d)
{
	struct res a, b, c;
	struct dns_req *ra, *rc;
	int size;

	/* In flight, from the cache, and a second one to wait for. */
	ra = verify(d, "127.0.5.99", &a);
	rc = verify(d, "127.0.5.1", &c);
	CHECK(verify(d, "127.0.5.2", &b) != NULL, "cancel: the other one");
	CHECK(ra != NULL && rc != NULL, "cancel: requests");
	size = dns_cache_size(d);
	dns_cancel(ra);
	dns_cancel(rc);
	dns_cancel(NULL);
	run(&b.calls, 1, 5000);
	run(&a.calls, 1, 300); /* give a wrong callback time to show up */
	CHECK(a.calls == 0 && c.calls == 0, "cancelled callbacks ran: %d %d", a.calls, c.calls);
	CHECK(b.calls == 1 && b.st == DNS_NONE, "the other one: %d %d", b.calls, b.st);
	/* The orphaned query still completed and its PTR answer was cached. */
	CHECK(dns_cache_size(d) > size, "cache after cancel: %d, was %d", dns_cache_size(d), size);
}

/*
 * A callback that frees its own resolver while another request is in
 * flight: the other one must stay silent. The address lookup takes one
 * round trip, the verified name two, so the first callback is known.
 */
static struct dns *freed_d;

static void free_cb(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg)
{
	addrs_cb(st, a4, n, arg);
	dns_free(&freed_d);
}

static void test_free_in_callback(int port)
{
	char res[64], err[200];
	struct sockaddr_storage ss = ip("127.0.5.1");
	struct res a, b;

	snprintf(res, sizeof(res), "127.0.0.1:%d", port);
	freed_d = dns_new(base, res, 1000, 10, err, sizeof(err));
	CHECK(freed_d != NULL, "%s", err);
	if (freed_d == NULL)
		return;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	CHECK(dns_verified_name(freed_d, (struct sockaddr *)&ss, name_cb, &b) != NULL, "slow");
	CHECK(dns_addrs(freed_d, "a1.example.test", free_cb, &a) != NULL, "fast");
	run(&a.calls, 1, 5000);
	run(&b.calls, 1, 300);
	CHECK(a.calls == 1 && a.st == DNS_OK && freed_d == NULL, "freeing callback: %d %d", a.calls,
	      a.st);
	CHECK(b.calls == 0, "callback after dns_free in a callback: %d", b.calls);
}

/* cache_entries = 2: the oldest entry goes first. */
static struct dns *test_evict_start(int port)
{
	char res[64], err[200];
	struct dns *d;
	struct res r;
	const char *names[] = {"a1.example.test", "a2.example.test", "a3.example.test"};

	snprintf(res, sizeof(res), "127.0.0.1:%d", port);
	d = dns_new(base, res, 200, 2, err, sizeof(err));
	CHECK(d != NULL, "%s", err);
	if (d == NULL)
		return NULL;
	for (int i = 0; i < 3; i++) {
		CHECK(addrs(d, names[i], &r) != NULL, "%s", names[i]);
		run(&r.calls, 1, 5000);
		CHECK(r.st == DNS_OK && r.n == 1 && r.a4[0][3] == i + 1, "%s: %d", names[i], r.st);
	}
	CHECK(dns_cache_size(d) == 2, "evict: size %d", dns_cache_size(d));
	return d;
}

/* With dnsmasq gone: a3 and a2 are cached, a1 was evicted. */
static void test_evict_end(struct dns *d)
{
	struct res r;

	if (d == NULL)
		return;
	CHECK(addrs(d, "a3.example.test", &r) != NULL, "a3");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_OK, "a3 cached: %d", r.st);
	CHECK(addrs(d, "a2.example.test", &r) != NULL, "a2");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_OK, "a2 cached: %d", r.st);
	CHECK(addrs(d, "a1.example.test", &r) != NULL, "a1");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_FAIL, "a1 evicted: %d", r.st);
	dns_free(&d);
}

/* With dnsmasq gone, everything seen before is still answered. */
static void test_cached(struct dns *d, double short_at)
{
	struct res r;
	double t;

	t = now_s();
	check_name(d, "127.0.5.1", DNS_OK, "mail.example.test");
	check_name(d, "127.0.5.2", DNS_NONE, NULL);
	check_name(d, "127.0.5.3", DNS_NONE, NULL);
	check_name(d, "2001:db8::5", DNS_OK, "mail6.example.test");
	check_name(d, "127.0.5.99", DNS_OK, "forged.example.test"); /* PTR cached after cancel */
	CHECK(addrs(d, "2.0.0.127.zen.example.test", &r) != NULL, "dnsbl cached");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_OK && r.n == 2, "dnsbl cached: %d %d", r.st, r.n);
	CHECK(ns(d, "example.test", &r) != NULL, "ns cached");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_OK && r.n == 2, "ns cached: %d %d", r.st, r.n);
	t = now_s() - t;
	CHECK(t < 0.5, "cached answers took %.3f s", t);
	/* Failures are not cached: REFUSED before, now no server at all. */
	CHECK(addrs(d, "outside.invalid", &r) != NULL, "refused again");
	run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_FAIL, "refused again: %d", r.st);

	/* short.example.test had a TTL of 1 s. */
	if (now_s() - short_at < 2.2)
		usleep((useconds_t)((2.2 - (now_s() - short_at)) * 1e6));
	CHECK(addrs(d, "short.example.test", &r) != NULL, "short");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_FAIL, "short expired: %d", r.st);
}

/* A resolver that never answers: DNS_FAIL, in bounded time, not cached. */
static void test_dead(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int hole = socket(AF_INET, SOCK_DGRAM, 0);
	char res[64], err[200];
	struct dns_req *req;
	struct dns *d;
	struct res r, r2;
	double t;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(hole >= 0 && bind(hole, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		  getsockname(hole, (struct sockaddr *)&sin, &len) == 0,
	      "black hole socket");
	snprintf(res, sizeof(res), "127.0.0.1:%d", ntohs(sin.sin_port));
	d = dns_new(base, res, 200, 100, err, sizeof(err));
	CHECK(d != NULL, "%s", err);
	if (d == NULL)
		return;
	CHECK(verify(d, "127.0.5.1", &r) != NULL, "dead");
	t = run(&r.calls, 1, 5000);
	/* Two tries: 200 ms, then 400 ms. */
	CHECK(r.calls == 1 && !r.sync && r.st == DNS_FAIL, "dead: %d %d", r.calls, r.st);
	CHECK(t >= 0.5 && t < 2.0, "dead server took %.3f s", t);
	CHECK(dns_cache_size(d) == 0, "failure cached: %d", dns_cache_size(d));
	printf("test_dns: unanswered lookup failed after %.3f s (timeout 200 ms, 2 tries)\n", t);

	/* dns_free with requests in flight: no callback, nothing leaked. */
	CHECK(verify(d, "127.0.5.1", &r) != NULL, "pending 1");
	req = addrs(d, "2.0.0.127.zen.example.test", &r2);
	CHECK(req != NULL, "pending 2");
	run(&r.calls, 1, 50);
	dns_free(&d);
	run(&r.calls, 1, 300);
	CHECK(r.calls == 0 && r2.calls == 0, "callbacks after dns_free: %d %d", r.calls, r2.calls);
	close(hole);

	/* Nothing listens: refused at once, DNS_FAIL all the same. */
	snprintf(res, sizeof(res), "127.0.0.1:%d", ntohs(sin.sin_port));
	d = dns_new(base, res, 200, 100, err, sizeof(err));
	CHECK(d != NULL, "%s", err);
	if (d == NULL)
		return;
	CHECK(addrs(d, "mail.example.test", &r) != NULL, "nobody");
	t = run(&r.calls, 1, 5000);
	CHECK(r.calls == 1 && r.st == DNS_FAIL && t < 2.0, "nobody: %d %d %.3f", r.calls, r.st, t);
	dns_free(&d);
}

static void test_ipv6_resolver(int port)
{
	char res[64], err[200];
	struct dns *d;

	snprintf(res, sizeof(res), "[::1]:%d", port);
	d = dns_new(base, res, 1000, 10, err, sizeof(err));
	CHECK(d != NULL, "%s", err);
	if (d == NULL)
		return;
	check_name(d, "127.0.5.1", DNS_OK, "mail.example.test");
	dns_free(&d);
}

int main(void)
{
	char res[64], err[200];
	struct dns *d, *evict;
	struct res r;
	double short_at;
	int port, have6 = have_ipv6_loopback();

	alarm(120); /* a hung loop fails the test instead of blocking the suite */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	CHECK(base != NULL, "event_base_new");
	if (base == NULL)
		return check_done("test_dns");
	test_args();
	test_dead();

	port = dnsmasq_start(have6);
	CHECK(port > 0, "dnsmasq is needed for this test (see the reason above)");
	if (port < 0)
		return check_done("test_dns");
	snprintf(res, sizeof(res), "127.0.0.1:%d", port);
	d = dns_new(base, res, 1000, 1000, err, sizeof(err));
	CHECK(d != NULL, "dns_new: %s", err);
	if (d == NULL) {
		dnsmasq_stop();
		return check_done("test_dns");
	}
	CHECK(dns_cache_size(d) == 0, "empty cache");
	short_at = now_s();
	CHECK(addrs(d, "short.example.test", &r) != NULL, "short");
	run(&r.calls, 1, 5000);
	CHECK(r.st == DNS_OK && r.n == 1, "short: %d", r.st);

	test_names(d);
	test_addrs(d);
	test_ns(d);
	test_txt(d);
	test_cancel(d);
	test_free_in_callback(port);
	if (have6)
		test_ipv6_resolver(port);
	evict = test_evict_start(port);
	CHECK(dns_cache_size(d) > 10, "cache size %d", dns_cache_size(d));

	dnsmasq_stop();
	test_cached(d, short_at);
	test_evict_end(evict);
	dns_free(&d);
	event_base_free(base);
	return check_done("test_dns");
}
