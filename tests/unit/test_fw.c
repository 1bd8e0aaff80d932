/*
 * test_fw.c - fw_nft.c against the real kernel: the table, its sets, the
 * drops themselves, batching, the helper's privileges and death, the
 * unprivileged failure, and the time for a 10,000-block burst.
 *
 * Runs only inside the network namespace fw_netns.sh creates (it sets
 * MXG_FW_NETNS=1): the test creates and replaces tables, which must never
 * happen in the host's namespace. Reads the kernel's view with the nft
 * program, not with the code under test.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "check.h"
#include "fw.h"
#include "log.h"

#define T "mxgtest"
#define PORT 2525

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* nft_out - the output of an nft command (malloc'd), or NULL if it failed. */
static char *nft_out(const char *args)
{
	char cmd[256];
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nft %s 2>/dev/null", args);
	p = popen(cmd, "r");
	if (p == NULL || buf == NULL) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		size_t n = fread(buf + len, 1, cap - len - 1, p);

		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	if (pclose(p) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int count_str(const char *s, const char *needle)
{
	int n = 0;

	if (s == NULL)
		return -1;
	for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* set_json - `nft -j list set inet T NAME`. */
static char *set_json(const char *set)
{
	char args[128];

	snprintf(args, sizeof(args), "-j list set inet %s %s", T, set);
	return nft_out(args);
}

/*
 * elem_expires - seconds left for addr in the set, from nft's JSON
 * ({"elem": {"val": "ADDR", "timeout": N, "expires": M}}); -1 if absent.
 */
static long elem_expires(const char *set, const char *addr)
{
	char *j = set_json(set), key[96];
	long v = -1;

	snprintf(key, sizeof(key), "\"val\": \"%s\"", addr);
	if (j != NULL) {
		char *p = strstr(j, key);

		if (p != NULL) {
			char *e = strstr(p, "\"expires\": ");
			char *end = strchr(p, '}');

			if (e != NULL && end != NULL && e < end)
				v = strtol(e + 11, NULL, 10);
			else
				v = 0; /* present without expiry: counts as present */
		}
	}
	free(j);
	return v;
}

/* wait_elem - wait up to 5 s for addr to be present (want 1) or gone (0). */
static long wait_elem(const char *set, const char *addr, int want)
{
	long v = -1;

	for (int i = 0; i < 100; i++) {
		v = elem_expires(set, addr);
		if ((v >= 0) == want)
			return v;
		sleep_ms(50);
	}
	return v;
}

/* wait_count - wait up to secs for at least n elements; returns the count. */
static int wait_count(const char *set, int n, double secs)
{
	double end = now() + secs;
	int c = -1;

	do {
		char *j = set_json(set);

		c = count_str(j, "\"elem\": {");
		free(j);
		if (c >= n)
			break;
		sleep_ms(20);
	} while (now() < end);
	return c;
}

static struct sockaddr_storage mkaddr(const char *a, int port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(a, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, a, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, a, &s4->sin_addr);
	}
	return ss;
}

static socklen_t sslen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static int listener(const char *a, int port)
{
	struct sockaddr_storage ss = mkaddr(a, port);
	int one = 1, fd = socket(ss.ss_family, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen(&ss)) < 0 || listen(fd, 64) < 0) {
		fprintf(stderr, "listen %s:%d: %s\n", a, port, strerror(errno));
		exit(1);
	}
	return fd;
}

/* try_connect - from src to dst:port within 1 s: 1 connected, 0 not. */
static int try_connect(const char *src, const char *dst, int port)
{
	struct sockaddr_storage s = mkaddr(src, 0), d = mkaddr(dst, port);
	int fd = socket(s.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0), ok = 0, err = 0;
	socklen_t el = sizeof(err);

	if (fd < 0 || bind(fd, (struct sockaddr *)&s, sslen(&s)) < 0) {
		fprintf(stderr, "bind %s: %s\n", src, strerror(errno));
		exit(1);
	}
	if (connect(fd, (struct sockaddr *)&d, sslen(&d)) == 0) {
		ok = 1;
	} else if (errno == EINPROGRESS) {
		struct pollfd p = {fd, POLLOUT, 0};

		if (poll(&p, 1, 1000) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
			ok = 1;
	}
	close(fd);
	return ok;
}

/* helper_pid - our newest child (the helper right after fw_start). */
static pid_t helper_pid(void)
{
	char path[64], buf[256];
	FILE *f;
	pid_t last = 0;
	long v;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/children", (long)getpid());
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL)
		for (char *p = buf, *e; (v = strtol(p, &e, 10)) > 0; p = e)
			last = (pid_t)v;
	fclose(f);
	return last;
}

/* proc_field - the value of "Name:" in /proc/PID/status, or "". */
static void proc_field(pid_t pid, const char *name, char *out, size_t outsz)
{
	char path[64], line[256];
	size_t nl = strlen(name);
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
			char *v = line + nl + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, outsz, "%s", v);
			break;
		}
	fclose(f);
}

static int fblock(struct fw *fw, const char *a, uint32_t secs)
{
	struct sockaddr_storage ss = mkaddr(a, 0);

	return fw_block(fw, (struct sockaddr *)&ss, secs);
}

static int funblock(struct fw *fw, const char *a)
{
	struct sockaddr_storage ss = mkaddr(a, 0);

	return fw_unblock(fw, (struct sockaddr *)&ss);
}

/* test_unprivileged - fw_start as nobody without capabilities must fail clearly. */
static void test_unprivileged(void)
{
	int pfd[2];
	pid_t pid;
	char msg[512] = "";
	ssize_t n;
	int status;

	if (pipe(pfd) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		uint16_t port = PORT;
		char err[400] = "";
		struct fw *fw;

		close(pfd[0]);
		/* setuid from 0 to non-zero without KEEPCAPS clears every capability. */
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		fw = fw_start("mxgnopriv", &port, 1, NULL, err, sizeof(err));
		if (fw != NULL)
			_exit(3);
		(void)!write(pfd[1], err, strlen(err));
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unprivileged child status %d",
	      status);
	CHECK(strstr(msg, "not permitted") != NULL && strstr(msg, "CAP_NET_ADMIN") != NULL,
	      "message: %s", msg);
	printf("unprivileged fw_start: %s\n", msg);
	char *t = nft_out("list table inet mxgnopriv");

	CHECK(t == NULL, "no table was created");
	free(t);
}

/* test_bad_input - refused before any process is started. */
static void test_bad_input(void)
{
	uint16_t port = PORT, zero = 0;
	char err[256];

	CHECK(fw_start("a;flush ruleset", &port, 1, NULL, err, sizeof(err)) == NULL &&
		  strstr(err, "firewall_table") != NULL,
	      "table name with ';': %s", err);
	CHECK(fw_start("1abc", &port, 1, NULL, err, sizeof(err)) == NULL, "leading digit");
	CHECK(fw_start(T, &port, 0, NULL, err, sizeof(err)) == NULL, "no ports");
	CHECK(fw_start(T, &zero, 1, NULL, err, sizeof(err)) == NULL, "port 0");
	CHECK(fw_start(T, &port, 1, "no_such_user_xyz", err, sizeof(err)) == NULL &&
		  strstr(err, "no such user") != NULL,
	      "unknown run_as: %s", err);
}

/* test_parent_death - the helper must not outlive a killed daemon. */
static void test_parent_death(void)
{
	int pfd[2], status;
	pid_t pid, helper = 0;

	if (pipe(pfd) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		uint16_t port = PORT;
		char err[256];
		struct fw *f;

		close(pfd[0]);
		f = fw_start("mxgorphan", &port, 1, NULL, err, sizeof(err));
		pid_t h = f != NULL ? helper_pid() : 0;

		(void)!write(pfd[1], &h, sizeof(h));
		raise(SIGKILL); /* no fw_stop: as if the daemon crashed */
		_exit(1);
	}
	close(pfd[1]);
	CHECK(read(pfd[0], &helper, sizeof(helper)) == (ssize_t)sizeof(helper) && helper > 0,
	      "orphan test: no helper");
	close(pfd[0]);
	waitpid(pid, &status, 0);
	/* It was the dead child's child: it is reaped elsewhere, kill(0) must fail. */
	int gone = 0;

	for (int i = 0; i < 200 && !gone && helper > 0; i++) {
		char path[64], st[32];

		snprintf(path, sizeof(path), "/proc/%ld/status", (long)helper);
		proc_field(helper, "State", st, sizeof(st));
		gone = access(path, F_OK) < 0 || st[0] == 'Z';
		if (!gone)
			sleep_ms(10);
	}
	CHECK(gone, "helper %ld outlived its parent", (long)helper);
	char *t = nft_out("list table inet mxgorphan");

	CHECK(t != NULL, "the table stays after the daemon's death");
	free(t);
}

int main(void)
{
	uint16_t ports[] = {PORT};
	char err[512] = "", v[128];
	struct fw *fw;
	pid_t hp;

	/*
	 * Never in the host's namespace: the marker, and a namespace unlike
	 * that of whoever ran fw_netns.sh (unshare and sh exec, so that is
	 * our parent).
	 */
	char mine[64] = "", theirs[64] = "", path[64];
	ssize_t ml = readlink("/proc/self/ns/net", mine, sizeof(mine) - 1);

	snprintf(path, sizeof(path), "/proc/%ld/ns/net", (long)getppid());
	ssize_t tl = readlink(path, theirs, sizeof(theirs) - 1);

	if (getenv("MXG_FW_NETNS") == NULL || ml <= 0 || tl <= 0 || strcmp(mine, theirs) == 0) {
		fprintf(stderr, "test_fw: skipped: not in a network namespace of its own; run me"
				" through fw_netns.sh (I change the firewall)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init("test_fw", LOG_TO_STDERR);
	test_bad_input();

	/* Start as the daemon would: root, switching the helper to run_as. */
	int canary[2];

	/* A descriptor the helper must not keep (3 is the helper's own socket). */
	if (pipe(canary) < 0 || dup2(canary[0], 40) < 0)
		abort();
	close(canary[0]);
	canary[0] = 40;
	fw = fw_start(T, ports, 1, "nobody", err, sizeof(err));
	CHECK(fw != NULL, "fw_start: %s", err);
	if (fw == NULL)
		return check_done("fw");
	hp = helper_pid();
	CHECK(hp > 0, "helper pid found");
	proc_field(hp, "Uid", v, sizeof(v));
	CHECK(strncmp(v, "65534", 5) == 0, "helper Uid: %s", v);
	proc_field(hp, "CapEff", v, sizeof(v));
	CHECK(strcmp(v, "0000000000001000") == 0, "helper CapEff (only CAP_NET_ADMIN): %s", v);
	proc_field(hp, "CapPrm", v, sizeof(v));
	CHECK(strcmp(v, "0000000000001000") == 0, "helper CapPrm: %s", v);
	proc_field(hp, "CapBnd", v, sizeof(v));
	CHECK(strcmp(v, "0000000000001000") == 0, "helper CapBnd: %s", v);
	proc_field(hp, "NoNewPrivs", v, sizeof(v));
	CHECK(strcmp(v, "1") == 0, "helper NoNewPrivs: %s", v);
	char fdpath[64];

	snprintf(fdpath, sizeof(fdpath), "/proc/%ld/fd/%d", (long)hp, canary[0]);
	CHECK(access(fdpath, F_OK) < 0, "helper kept descriptor %d", canary[0]);
	close(canary[0]);
	close(canary[1]);

	/* Elements and their timeouts. */
	CHECK(fblock(fw, "127.1.2.3", 30) == 0, "block v4");
	CHECK(fblock(fw, "fd00:6::2", 30) == 0, "block v6");
	long e4 = wait_elem("block4", "127.1.2.3", 1), e6 = wait_elem("block6", "fd00:6::2", 1);

	CHECK(e4 >= 25 && e4 <= 30, "127.1.2.3 expires in %ld s", e4);
	CHECK(e6 >= 25 && e6 <= 30, "fd00:6::2 expires in %ld s", e6);

	/* The kernel drops: only blocked sources, only on the guarded port. */
	int l4 = listener("127.0.0.1", PORT), l6 = listener("::1", PORT);
	int o4 = listener("127.0.0.1", PORT + 1);
	double t0 = now();

	CHECK(try_connect("127.1.2.3", "127.0.0.1", PORT) == 0, "blocked v4 source connected");
	printf("blocked connect gave up after %.2f s\n", now() - t0);
	CHECK(try_connect("127.1.2.4", "127.0.0.1", PORT) == 1, "unblocked v4 source refused");
	CHECK(try_connect("127.1.2.3", "127.0.0.1", PORT + 1) == 1,
	      "blocked source refused on an unguarded port");
	CHECK(try_connect("fd00:6::2", "::1", PORT) == 0, "blocked v6 source connected");
	CHECK(try_connect("fd00:6::3", "::1", PORT) == 1, "unblocked v6 source refused");

	/* Unblock: gone from the set, and the connection goes through again. */
	CHECK(funblock(fw, "127.1.2.3") == 0, "unblock");
	CHECK(wait_elem("block4", "127.1.2.3", 0) < 0, "127.1.2.3 still in block4");
	CHECK(try_connect("127.1.2.3", "127.0.0.1", PORT) == 1, "unblocked source still dropped");

	/* An unblock of an absent element must not spoil the batch it is in. */
	CHECK(funblock(fw, "127.9.9.9") == 0 && funblock(fw, "fd00:6::9") == 0 &&
		  fblock(fw, "127.1.2.5", 60) == 0,
	      "queue");
	CHECK(wait_elem("block4", "127.1.2.5", 1) >= 0, "block after absent unblock lost");
	/* Last request per address wins inside one batch. */
	CHECK(fblock(fw, "127.1.2.7", 60) == 0 && funblock(fw, "127.1.2.7") == 0 &&
		  funblock(fw, "127.1.2.8") == 0 && fblock(fw, "127.1.2.8", 60) == 0,
	      "queue");
	CHECK(wait_elem("block4", "127.1.2.8", 1) >= 0, "block after unblock lost");
	CHECK(elem_expires("block4", "127.1.2.7") < 0, "unblock after block ignored");
	/* A second block refreshes the timeout. */
	CHECK(fblock(fw, "127.1.2.5", 600) == 0, "reblock");
	long re = -1;

	for (int i = 0; i < 100 && (re = elem_expires("block4", "127.1.2.5")) < 500; i++)
		sleep_ms(50);
	CHECK(re > 590, "reblock for 600 s left %ld s", re);
	/* IPv4-mapped IPv6 is blocked as IPv4. */
	CHECK(fblock(fw, "::ffff:127.1.2.9", 60) == 0, "mapped");
	CHECK(wait_elem("block4", "127.1.2.9", 1) >= 0, "mapped address not in block4");

	/* 200 blocks in one burst: all present, none lost. */
	char a[64];
	char *j = set_json("block4");
	int before = count_str(j, "\"elem\": {");

	free(j);
	t0 = now();
	for (int i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i / 250, i % 250 + 1);
		CHECK(fblock(fw, a, 300) == 0, "burst block %d", i);
	}
	int c = wait_count("block4", before + 200, 10);

	CHECK(c == before + 200, "burst: %d of %d elements", c, before + 200);
	printf("200-block burst visible after %.3f s\n", now() - t0);
	CHECK(fw_lost(fw) == 0, "lost %lu", fw_lost(fw));

	/* fw_stop leaves the table and its elements. */
	fw_stop(&fw);
	CHECK(fw == NULL, "fw_stop clears the pointer");
	CHECK(hp > 0 && kill(hp, 0) < 0, "helper %ld still exists after fw_stop", (long)hp);
	CHECK(elem_expires("block4", "127.1.2.5") >= 0, "element gone after fw_stop");
	CHECK(try_connect("fd00:6::2", "::1", PORT) == 0, "block gone after fw_stop");

	/* A second start replaces the table: empty sets. */
	uint16_t ports2[] = {PORT, PORT, PORT + 2}; /* listeners may share a port */

	fw = fw_start(T, ports2, 3, NULL, err, sizeof(err));
	CHECK(fw != NULL, "second fw_start: %s", err);
	if (fw == NULL)
		return check_done("fw");
	char *ch = nft_out("list chain inet " T " input");

	CHECK(ch != NULL && strstr(ch, "tcp dport { 2525, 2527 } ip saddr @block4 drop") != NULL,
	      "second chain: %s", ch != NULL ? ch : "(none)");
	free(ch);
	j = set_json("block4");
	CHECK(j != NULL && count_str(j, "\"elem\"") == 0, "block4 not empty after restart");
	free(j);
	j = set_json("block6");
	CHECK(j != NULL && count_str(j, "\"elem\"") == 0, "block6 not empty after restart");
	free(j);
	CHECK(try_connect("fd00:6::2", "::1", PORT) == 1, "still dropped after restart");
	hp = helper_pid();
	proc_field(hp, "Uid", v, sizeof(v));
	CHECK(v[0] == '0', "run_as empty: helper stays root: %s", v);
	proc_field(hp, "CapEff", v, sizeof(v));
	CHECK(strcmp(v, "0000000000001000") == 0, "root helper CapEff: %s", v);

	/* Measure: 10,000 blocks through fw_block until all are in the set. */
	t0 = now();
	for (int i = 0; i < 10000; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.%d", 1 + i / 62500, (i / 250) % 250, i % 250 + 1);
		fblock(fw, a, 600);
	}
	double tq = now() - t0;

	c = wait_count("block4", 10000, 60);
	double tall = now() - t0;

	CHECK(c == 10000, "10,000 burst: %d in the set, %lu lost", c, fw_lost(fw));
	printf("10,000 blocks: queued in %.3f s, all visible after %.3f s (%.0f/s), lost %lu\n", tq,
	       tall, 10000 / tall, fw_lost(fw));

	/*
	 * A stalled helper: fw_block must neither wait nor fail silently.
	 * What was queued is applied once the helper runs again.
	 */
	hp = helper_pid();
	CHECK(hp > 0 && kill(hp, SIGSTOP) == 0, "stop helper");
	int refused = 0, sent = 0;

	t0 = now();
	for (int i = 0; i < 30000; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.%d", 100 + i / 62500, (i / 250) % 250,
			 i % 250 + 1);
		if (fblock(fw, a, 600) < 0)
			refused++;
		else
			sent++;
	}
	double tstall = now() - t0;

	printf("helper stopped: 30,000 fw_block calls in %.3f s, %d queued, %d lost\n", tstall,
	       sent, refused);
	CHECK(tstall < 2.0, "fw_block waited: %.3f s", tstall);
	CHECK(refused > 0 && fw_lost(fw) == (unsigned long)refused, "refused %d, lost %lu", refused,
	      fw_lost(fw));
	CHECK(kill(hp, SIGCONT) == 0, "continue helper");
	c = wait_count("block4", 10000 + sent, 60);
	CHECK(c == 10000 + sent, "after the stall: %d in the set, want %d", c, 10000 + sent);
	CHECK(funblock(fw, "127.1.2.5") == 0, "a request after the stall goes through");

	/* The helper's death: logged, and later requests count as lost. */
	CHECK(hp > 0 && kill(hp, SIGKILL) == 0, "kill helper %ld", (long)hp);
	sleep_ms(100);
	unsigned long lost = fw_lost(fw);

	fw_poll(fw);
	CHECK(fw_fd(fw) == -1, "death not noticed");
	CHECK(fblock(fw, "127.1.2.10", 30) == -1, "block after death accepted");
	CHECK(fw_lost(fw) == lost + 1, "lost %lu -> %lu", lost, fw_lost(fw));
	fw_stop(&fw);

	test_unprivileged();
	test_parent_death();

	close(l4);
	close(l6);
	close(o4);
	return check_done("fw");
}
