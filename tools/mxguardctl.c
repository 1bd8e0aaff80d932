/*
 * NAME
 *	mxguardctl - control and inspect mxguard
 * SYNOPSIS
 *	mxguardctl [-c file] status | reload | ping
 *	mxguardctl [-c file] list tarpit|grey|awl|white [--json]
 *	mxguardctl [-c file] add white ADDRESS|CIDR|DOMAIN
 *	mxguardctl [-c file] del tarpit|grey|awl|white KEY
 *	mxguardctl classify [-c file] name [address] ...
 *	mxguardctl tcpstat [--port N ...] [--json] [--watch SECONDS [--count N]]
 *	mxguardctl logstat [--buckets S,...] [--csv | --json] [--svg FILE] FILE...
 * DESCRIPTION
 *	status, reload and ping talk to the running daemon over its control
 *	socket and print its one-line JSON answer. list prints the records
 *	of a kind as a table (or the daemon's JSON with --json); add and del
 *	change them (add: the operator's whitelist only).
 *
 *	classify prints, for each name, "NAME<TAB>VERDICT<TAB>REASON" as the
 *	daemon would decide from the configured client_lists and the built-in
 *	S25R rules, without a running daemon and without DNS: the name is
 *	taken as verified. An argument that is an IP address is the address
 *	of the name before it (for cidr lists).
 *
 *	tcpstat shows TCP socket states, listen queues and the kernel's
 *	overflow counters and sysctls (see tcpstat.c).
 *
 *	logstat reports smtpd session durations from Postfix logs (see
 *	logstat.c).
 * DIAGNOSTICS
 *	Exit 0 on success, 1 on an error (with a message), 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "logstat.h"
#include "mxg_build.h"
#include "rules.h"
#include "tcpstat.h"

#define MAX_LISTS 64

static void usage(void)
{
	fprintf(stderr, "usage: mxguardctl [-c file] status|reload|ping\n"
			"       mxguardctl [-c file] list tarpit|grey|awl|white [--json]\n"
			"       mxguardctl [-c file] add white ADDRESS|CIDR|DOMAIN\n"
			"       mxguardctl [-c file] del tarpit|grey|awl|white KEY\n"
			"       mxguardctl classify [-c file] name [address] ...\n"
			"       mxguardctl tcpstat [--port N ...] [--json] "
			"[--watch SECONDS [--count N]]\n"
			"       mxguardctl logstat [--buckets S,...] [--csv | --json] "
			"[--svg FILE] [--year YYYY] FILE...\n");
	exit(2);
}

static struct cfg *ctl_config(const char *path)
{
	char err[1024];
	struct cfg *cfg = cfg_load(path ? path : MXG_DEFAULT_CONFIG, path == NULL, NULL, 0, err,
				   sizeof(err));

	if (cfg == NULL) {
		fprintf(stderr, "mxguardctl: %s\n", err);
		exit(1);
	}
	return cfg;
}

/* ctl_addr - is s an IP address? Fill ss if so. */
static int ctl_addr(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 1;
	}
	return 0;
}

static int ctl_classify(const char *path, int argc, char **argv)
{
	struct cfg *cfg = ctl_config(path);
	char *specs[MAX_LISTS], err[1024];
	char *lists = strdup(cfg->client_lists);
	int n;
	struct rules *r;

	if (lists == NULL) {
		cfg_unref(&cfg);
		return 1;
	}
	n = cfg_split_list(lists, specs, MAX_LISTS);
	r = rules_load(specs, n, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "mxguardctl: %s\n", err);
		free(lists);
		cfg_unref(&cfg);
		return 1;
	}
	for (int i = 0; i < argc; i++) {
		struct sockaddr_storage ss;
		const struct sockaddr *sa = NULL;
		struct classification cl;

		if (i + 1 < argc && ctl_addr(argv[i + 1], &ss))
			sa = (const struct sockaddr *)&ss;
		rules_classify(r, argv[i], sa, &cl);
		printf("%s\t%s\t%s\n", argv[i], rules_verdict_name(cl.verdict), cl.reason);
		if (sa != NULL)
			i++;
	}
	rules_free(&r);
	free(lists);
	cfg_unref(&cfg);
	return 0;
}

/* ctl_string - decode the JSON string starting after its opening quote. */
static const char *ctl_string(const char *p, char *out, size_t outsz)
{
	size_t o = 0;

	for (; *p && *p != '"'; p++) {
		char c = *p;

		if (c == '\\' && p[1] == 'u' && p[2] && p[3] && p[4] && p[5]) {
			char hex[5] = {p[2], p[3], p[4], p[5], 0};

			c = (char)strtol(hex, NULL, 16);
			p += 5;
		} else if (c == '\\' && p[1]) {
			c = *++p;
		}
		if (o + 1 < outsz)
			out[o++] = c;
	}
	out[o] = '\0';
	return *p == '"' ? p + 1 : p;
}

static long long ctl_number(const char *obj, const char *field)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", field);
	p = strstr(obj, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : 0;
}

static void ctl_time(long long t, char *buf, size_t bufsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || t > 253402300799LL) { /* 0, or INT64_MAX: never */
		snprintf(buf, bufsz, "%s", t <= 0 ? "-" : "never");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ctl_table - the daemon's list answer as a human table. */
static int ctl_table(const char *json)
{
	const char *p = strstr(json, "\"records\":[");
	int n = 0;

	if (p == NULL) {
		char err[512] = "unexpected answer";
		const char *e = strstr(json, "\"error\":\"");

		if (e != NULL)
			ctl_string(e + 9, err, sizeof(err));
		fprintf(stderr, "mxguardctl: %s\n", err);
		return 1;
	}
	printf("%-50s %-20s %-20s %-20s %s\n", "KEY", "FIRST", "LAST", "EXPIRES", "COUNT");
	while ((p = strstr(p, "{\"key\":\"")) != NULL) {
		char key[1024], first[32], last[32], expires[32];
		const char *end;

		p = ctl_string(p + 8, key, sizeof(key));
		end = strchr(p, '}');
		ctl_time(ctl_number(p, "first"), first, sizeof(first));
		ctl_time(ctl_number(p, "last"), last, sizeof(last));
		ctl_time(ctl_number(p, "expires"), expires, sizeof(expires));
		printf("%-50s %-20s %-20s %-20s %lld\n", key, first, last, expires,
		       ctl_number(p, "count"));
		n++;
		if (end == NULL)
			break;
		p = end;
	}
	printf("%d record%s\n", n, n == 1 ? "" : "s");
	return 0;
}

static int ctl_request(const char *path, const char *cmd, int table)
{
	struct cfg *cfg = ctl_config(path);
	struct sockaddr_un sun;
	char sock[1024], buf[4096];
	ssize_t n;
	int fd;

	cfg_control_path(cfg, sock, sizeof(sock));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	cfg_unref(&cfg);
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mxguardctl: control socket path too long: %s\n", sock);
		return 1;
	}
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		fprintf(stderr, "mxguardctl: cannot reach mxguard at %s: %s%s\n", sock, strerror(e),
			e == ENOENT || e == ECONNREFUSED ? " (is it running?)"
			: e == EACCES			 ? " (permission: run as root or run_as)"
							 : "");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	snprintf(buf, sizeof(buf), "%s\n", cmd);
	if (write(fd, buf, strlen(buf)) < 0) {
		fprintf(stderr, "mxguardctl: write: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	/* The answer is one line: collect it, then print or tabulate it. */
	char *answer = NULL;
	size_t len = 0;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *grown = realloc(answer, len + (size_t)n + 1);

		if (grown == NULL) {
			free(answer);
			close(fd);
			fprintf(stderr, "mxguardctl: out of memory\n");
			return 1;
		}
		answer = grown;
		memcpy(answer + len, buf, (size_t)n);
		len += (size_t)n;
		answer[len] = '\0';
	}
	close(fd);
	if (n < 0 || answer == NULL) {
		fprintf(stderr, "mxguardctl: no answer from mxguard at %s\n", sock);
		free(answer);
		return 1;
	}
	int rc = 0;

	if (table)
		rc = ctl_table(answer);
	else
		fputs(answer, stdout);
	if (!table && strstr(answer, "\"ok\":false") != NULL)
		rc = 1;
	free(answer);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	int i = 1;

	/* -c may come before the command, or right after it. */
	for (int pass = 0; pass < 2; pass++) {
		if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
			path = argv[i + 1];
			i += 2;
		} else if (pass == 0 && i < argc && argv[i][0] != '-') {
			break;
		}
	}
	if (i >= argc)
		usage();
	/* tcpstat reads the kernel, not the daemon: it takes no config. */
	if (strcmp(argv[i], "tcpstat") == 0)
		return tcpstat_main(argc - i, argv + i);
	/* logstat reads log files, not the daemon: it takes no config. */
	if (strcmp(argv[i], "logstat") == 0)
		return logstat_main(argc - i, argv + i);
	const char *cmd = argv[i++];

	if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
		path = argv[i + 1];
		i += 2;
	}
	if (strcmp(cmd, "classify") == 0) {
		if (i >= argc)
			usage();
		return ctl_classify(path, argc - i, argv + i);
	}
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
		printf("mxguardctl %s\n", MXG_VERSION);
		return 0;
	}
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "add") == 0 || strcmp(cmd, "del") == 0) {
		int json = 0, nargs = strcmp(cmd, "list") == 0 ? 1 : 2;
		char line[1200];

		if (argc > i && strcmp(argv[argc - 1], "--json") == 0) {
			json = 1;
			argc--;
		}
		if (argc - i != nargs || strlen(argv[i]) + (nargs == 2 ? strlen(argv[i + 1]) : 0) >
						 sizeof(line) - 16)
			usage();
		snprintf(line, sizeof(line), "%s %s%s%s", cmd, argv[i], nargs == 2 ? " " : "",
			 nargs == 2 ? argv[i + 1] : "");
		return ctl_request(path, line, strcmp(cmd, "list") == 0 && !json);
	}
	if (i != argc)
		usage();
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "reload") == 0 || strcmp(cmd, "ping") == 0)
		return ctl_request(path, cmd, 0);
	usage();
	return 2;
}
