/*
 * NAME
 *	mxguardctl - control and inspect mxguard
 * SYNOPSIS
 *	mxguardctl [-c file] [-s socket] [--json] status [--table]
 *	mxguardctl [-c file] [-s socket] [--json] top [--once]
 *	mxguardctl [-c file] [-s socket] [--json] list KIND
 *	mxguardctl [-c file] [-s socket] [--json] add white ADDRESS|CIDR|DOMAIN
 *	mxguardctl [-c file] [-s socket] [--json] add block ADDRESS [SECONDS]
 *	mxguardctl [-c file] [-s socket] [--json] del KIND KEY
 *	mxguardctl [-c file] [-s socket] [--json] flush KIND
 *	mxguardctl [-c file] [-s socket] [--json] explain ADDR [NAME]
 *	mxguardctl [-c file] [-s socket] [--json] reload | ping | notify-test
 *	mxguardctl classify [-c file] [--json] name [address] ...
 *	mxguardctl geo [-c file] [-d SPEC] [--json] ADDR...
 *	mxguardctl tcpstat [--port N ...] [--json] [--watch SECONDS [--count N]]
 *	mxguardctl logstat [--buckets S,...] [--csv | --json] [--svg FILE] FILE...
 *	mxguardctl logstat [options] --journal [-u UNIT] [-D DIR]
 *	mxguardctl [COMMAND] -h | --help
 * DESCRIPTION
 *	The daemon commands talk to the running daemon over its control
 *	socket (the control_socket of the configuration, or -s): one request
 *	line, one JSON answer line (control.c). KIND is a record kind of the
 *	store: tarpit, grey, awl, white or block.
 *
 *	status shows counters, connections, refusals, verdicts and the
 *	store as a table on a terminal (or with --table), and as the
 *	daemon's JSON otherwise: scripts written for earlier versions read
 *	that JSON. list shows records as a table. explain shows what the
 *	daemon knows and would decide about one address (ctl_explain.c). top is a live full-screen
 *	view refreshed every second; --once prints one frame without
 *	terminal escapes. add, del, flush, reload, ping and notify-test
 *	print the daemon's JSON answer. With --json every command prints
 *	JSON only, errors included ({"ok":false,"error":"..."}).
 *
 *	classify prints, for each name, "NAME<TAB>VERDICT<TAB>REASON" as the
 *	daemon would decide from the configured client_lists and the built-in
 *	S25R rules, without a running daemon and without DNS: the name is
 *	taken as verified. An argument that is an IP address is the address
 *	of the name before it (for cidr lists). classify and geo print one
 *	JSON object with --json (built with jansson, strings through
 *	jsonstr.c), like every other command.
 *
 *	-h or --help after any command prints its usage on stdout and exits
 *	0 (before anything else is checked); bad usage prints it on stderr
 *	and exits 2.
 *
 *	tcpstat shows TCP socket states, listen queues and the kernel's
 *	overflow counters and sysctls (see tcpstat.c).
 *
 *	logstat reports smtpd session durations from Postfix logs (see
 *	logstat.c).
 *
 *	This file is the driver: the options, the commands that need no
 *	daemon (classify, geo), and the checks on the daemon commands'
 *	arguments. ctl_io.c talks to the daemon (and reports errors),
 *	ctl_view.c shows its answers as tables and the live view, ctl_json.c
 *	reads them.
 * DIAGNOSTICS
 *	Exit 0 on success; 1 when the daemon refused the request or another
 *	error occurred; 2 on bad usage (an unknown command included); 3
 *	when the daemon cannot be reached (not running, no socket, no
 *	answer); 4 when the control socket is not ours to use (permission).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "ctl_explain.h"
#include "ctl_io.h"
#include "ctl_view.h"
#include "geo.h"
#include "jsonstr.h"
#include "logstat.h"
#include "mxg_build.h"
#include "rules.h"
#include "store_kind.h"
#include "tcpstat.h"

#define MAX_LISTS 64

#define CTL_LINE_MAX 1024 /* the daemon's request line limit */
#define CTL_ARGS_MAX 8	  /* positional arguments of a daemon command */

/* The usage lines, each with the command it is about. */
static const struct {
	const char *cmd, *line;
} ctl_usage_lines[] = {
    {"status", "[-c file] [-s socket] [--json] status [--table]"},
    {"top", "[-c file] [-s socket] [--json] top [--once]"},
    {"list", "[-c file] [-s socket] [--json] list KIND"},
    {"add", "[-c file] [-s socket] [--json] add white ADDRESS|CIDR|DOMAIN"},
    {"add", "[-c file] [-s socket] [--json] add block ADDRESS [SECONDS]"},
    {"del", "[-c file] [-s socket] [--json] del KIND KEY"},
    {"flush", "[-c file] [-s socket] [--json] flush KIND"},
    {"explain", "[-c file] [-s socket] [--json] explain ADDR [NAME]"},
    {"reload", "[-c file] [-s socket] [--json] reload|ping|notify-test [TEXT]"},
    {"classify", "classify [-c file] [--json] name [address] ..."},
    {"geo", "geo [-c file] [-d SPEC] [--json] ADDR..."},
    {"tcpstat", "tcpstat [--port N ...] [--json] [--watch SECONDS [--count N]]"},
    {"logstat", "logstat [--buckets S,...] [--csv | --json] [--svg FILE] [--year YYYY] "
		"[--service NAME] FILE...|--journal [-u UNIT] [-D DIR]"},
};

/*
 * ctl_usage - the usage of cmd (NULL, or a command without lines of its
 * own: all of them) on fp. --help asks for it (stdout, exit 0); bad usage
 * gets it on stderr with exit 2.
 */
static void ctl_usage(FILE *fp, const char *cmd)
{
	size_t n = sizeof(ctl_usage_lines) / sizeof(ctl_usage_lines[0]), shown = 0;
	int kind = 0;

	if (cmd != NULL && (strcmp(cmd, "ping") == 0 || strcmp(cmd, "notify-test") == 0))
		cmd = "reload";
	for (int pass = 0; pass < 2 && shown == 0; pass++)
		for (size_t i = 0; i < n; i++)
			if (pass == 1 ||
			    (cmd != NULL && strcmp(cmd, ctl_usage_lines[i].cmd) == 0)) {
				fprintf(fp, "%s mxguardctl %s\n",
					shown++ ? "      " : "usage:", ctl_usage_lines[i].line);
				kind |= strstr(ctl_usage_lines[i].line, "KIND") != NULL;
			}
	if (kind)
		fprintf(fp, "KIND: tarpit, grey, awl, white or block\n");
	fprintf(fp,
		"-h, --help: this text; after a command, its usage (mxguardctl(8) says more)\n");
}

static void usage(void)
{
	ctl_usage(stderr, NULL);
	exit(CTL_EUSAGE);
}

/* ctl_usage_error - bad usage of a daemon command: say what, exit 2. */
static int ctl_usage_error(const struct ctl *ctl, const char *what)
{
	if (ctl->json)
		return ctl_io_fail(ctl, CTL_EUSAGE, "%s (see mxguardctl(8))", what);
	fprintf(stderr, "mxguardctl: %s\n", what);
	usage();
	return CTL_EUSAGE;
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

/*
 * ctl_print_json - v (taken) on stdout as one line, through jansson.
 * Returns rc, or CTL_EFAIL when it could not be written.
 */
static int ctl_print_json(json_t *v, int rc)
{
	if (v == NULL || jsonstr_dumpf(v, stdout) < 0)
		rc = ctl_io_fail(NULL, CTL_EFAIL, "cannot write the JSON (out of memory?)");
	json_decref(v);
	return rc;
}

/*
 * ctl_classify - "classify NAME [ADDRESS] ...": for each name, its verdict
 * and reason; a table line each, or with --json one object:
 * {"ok":true,"results":[{"name","address"?,"verdict","reason"}...]}.
 */
static int ctl_classify(const struct ctl *ctl, int argc, char **argv)
{
	struct cfg *cfg = ctl_io_config(ctl, ctl->config);
	char *specs[MAX_LISTS], err[1024];
	char *lists;
	int n;
	struct rules *r;
	json_t *res = NULL, *results = NULL;

	if (cfg == NULL)
		return CTL_EFAIL;
	if ((lists = strdup(cfg->client_lists)) == NULL) {
		cfg_unref(&cfg);
		return ctl_io_fail(ctl, CTL_EFAIL, "out of memory");
	}
	n = cfg_split_list(lists, specs, MAX_LISTS);
	r = rules_load(specs, n, err, sizeof(err));
	free(lists);
	cfg_unref(&cfg);
	if (r == NULL)
		return ctl_io_fail(ctl, CTL_EFAIL, "%s", err);
	if (ctl->json) {
		res = json_object();
		results = json_array();
		json_object_set_new(res, "ok", json_true());
		json_object_set(res, "results", results);
	}
	for (int i = 0; i < argc; i++) {
		struct sockaddr_storage ss;
		const struct sockaddr *sa = NULL;
		struct classification cl;

		if (i + 1 < argc && ctl_addr(argv[i + 1], &ss))
			sa = (const struct sockaddr *)&ss;
		rules_classify(r, argv[i], sa, &cl);
		if (ctl->json) {
			json_t *e = json_object();

			json_object_set_new(e, "name", jsonstr_cstr(argv[i]));
			if (sa != NULL)
				json_object_set_new(e, "address", jsonstr_cstr(argv[i + 1]));
			json_object_set_new(e, "verdict",
					    json_string(rules_verdict_name(cl.verdict)));
			json_object_set_new(e, "reason", jsonstr_cstr(cl.reason));
			json_array_append_new(results, e);
		} else {
			printf("%s\t%s\t%s\n", argv[i], rules_verdict_name(cl.verdict), cl.reason);
		}
		if (sa != NULL)
			i++;
	}
	rules_free(&r);
	json_decref(results);
	return ctl->json ? ctl_print_json(res, CTL_OK) : CTL_OK;
}

/*
 * ctl_geo - "geo [-d SPEC] ADDR...": print "ADDR<TAB>CC" for each address,
 * looked up in SPEC or else the configured geo_database, so an operator
 * can see what a listener's country filter will be given; with --json
 * {"ok":...,"results":[{"address","country"} or {"address","error"}...]}.
 * Exit 1 if the database does not load or an argument is not an address.
 */
static int ctl_geo(const struct ctl *ctl, const char *spec, int argc, char **argv)
{
	struct cfg *cfg = NULL;
	struct geo *g;
	char err[1024], cc[3];
	int rc = CTL_OK;
	json_t *res = NULL, *results = NULL;

	if (spec == NULL && (cfg = ctl_io_config(ctl, ctl->config)) == NULL)
		return CTL_EFAIL;
	g = geo_open(spec != NULL ? spec : cfg->geo_database, err, sizeof(err));
	if (cfg != NULL)
		cfg_unref(&cfg);
	if (g == NULL)
		return ctl_io_fail(ctl, CTL_EFAIL, "%s", err);
	if (ctl->json) {
		res = json_object();
		results = json_array();
	}
	for (int i = 0; i < argc; i++) {
		struct sockaddr_storage ss;
		json_t *e = ctl->json ? json_object() : NULL;

		if (e != NULL)
			json_object_set_new(e, "address", jsonstr_cstr(argv[i]));
		if (!ctl_addr(argv[i], &ss)) {
			if (e != NULL)
				json_object_set_new(e, "error", json_string("not an IP address"));
			else
				fprintf(stderr, "mxguardctl: geo: not an IP address: %s\n",
					argv[i]);
			rc = CTL_EFAIL;
		} else {
			geo_lookup(g, (const struct sockaddr *)&ss, cc);
			if (e != NULL)
				json_object_set_new(e, "country", jsonstr_cstr(cc));
			else
				printf("%s\t%s\n", argv[i], cc);
		}
		json_array_append_new(results, e);
	}
	geo_free(&g);
	if (!ctl->json)
		return rc;
	json_object_set_new(res, "ok", json_boolean(rc == CTL_OK));
	if (rc != CTL_OK)
		json_object_set_new(res, "error", json_string("an argument is not an IP address"));
	json_object_set_new(res, "results", results);
	return ctl_print_json(res, rc);
}

/*
 * ctl_local - the options of classify and geo, anywhere among their
 * arguments ("--" ends them): -c FILE, --json, -h/--help, and for geo
 * -d SPEC. The other arguments are moved to the front of argv; returns
 * how many, or -1 after a usage error was reported (exit 2).
 */
static int ctl_local(struct ctl *ctl, const char *cmd, int argc, char **argv, const char **spec)
{
	int n = 0, opts = 1;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (opts && strcmp(a, "--") == 0) {
			opts = 0;
		} else if (opts && (strcmp(a, "-c") == 0 || (spec && strcmp(a, "-d") == 0))) {
			if (i + 1 >= argc) {
				char what[64];

				snprintf(what, sizeof(what), "%s: %s needs a value", cmd, a);
				ctl_usage_error(ctl, what);
				return -1;
			}
			if (a[1] == 'c')
				ctl->config = argv[++i];
			else
				*spec = argv[++i];
		} else if (opts && strcmp(a, "--json") == 0) {
			ctl->json = 1;
		} else if (opts && a[0] == '-' && a[1] != '\0') {
			char what[96];

			snprintf(what, sizeof(what), "%s: unknown option '%.40s'", cmd, a);
			ctl_usage_error(ctl, what);
			return -1;
		} else {
			argv[n++] = argv[i];
		}
	}
	if (n == 0) {
		char what[64];

		snprintf(what, sizeof(what), "%s: expected %s", cmd,
			 spec ? "one or more addresses" : "one or more names");
		ctl_usage_error(ctl, what);
		return -1;
	}
	return n;
}

/* ctl_arg_ok - a request argument is one word of printable characters. */
static int ctl_arg_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static int ctl_digits(const char *s)
{
	if (*s == '\0' || strlen(s) > 9)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/*
 * ctl_daemon - the commands that talk to the daemon: check the arguments
 * here (bad usage is exit 2, before anything is sent), build the request
 * line, run the command.
 */
static int ctl_daemon(struct ctl *ctl, const char *cmd, int argc, char **argv)
{
	char line[CTL_LINE_MAX + 1], what[128];
	size_t len;
	int kind = argc > 0 ? store_kind_parse(argv[0]) : -1;

	for (int i = 0; i < argc; i++)
		if (!ctl_arg_ok(argv[i]))
			return ctl_usage_error(ctl, "bad argument: empty, or with white space or "
						    "control characters");
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "top") == 0 || strcmp(cmd, "reload") == 0 ||
	    strcmp(cmd, "ping") == 0) {
		if (argc != 0) {
			snprintf(what, sizeof(what), "%s takes no arguments", cmd);
			return ctl_usage_error(ctl, what);
		}
	} else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "flush") == 0 ||
		   strcmp(cmd, "del") == 0 || strcmp(cmd, "add") == 0) {
		int want = strcmp(cmd, "list") == 0 || strcmp(cmd, "flush") == 0 ? 1 : 2;

		if (argc == 0 || kind < 0) {
			snprintf(what, sizeof(what),
				 "%s: expected a record kind: tarpit, grey, awl, white or block",
				 cmd);
			return ctl_usage_error(ctl, what);
		}
		/* add block ADDRESS SECONDS: the only three-argument form. */
		if (argc != want && !(strcmp(cmd, "add") == 0 && kind == STORE_BLOCK && argc == 3 &&
				      ctl_digits(argv[2]))) {
			snprintf(what, sizeof(what), "%s %s: expected %s", cmd, argv[0],
				 want == 1 ? "no more arguments"
				 : strcmp(cmd, "add") == 0 && kind == STORE_BLOCK
				     ? "ADDRESS [SECONDS]"
				 : strcmp(cmd, "add") == 0 ? "one ENTRY"
							   : "one KEY");
			return ctl_usage_error(ctl, what);
		}
	} else if (strcmp(cmd, "explain") == 0) {
		const char *bad = ctl_explain_args(argc, argv);

		if (bad != NULL)
			return ctl_usage_error(ctl, bad);
	} else if (strcmp(cmd, "notify-test") != 0) {
		snprintf(what, sizeof(what), "unknown command '%.40s'", cmd);
		return ctl_usage_error(ctl, what);
	}
	if (ctl->table && strcmp(cmd, "status") != 0)
		return ctl_usage_error(ctl, "--table goes with status only");
	if (ctl->once && strcmp(cmd, "top") != 0)
		return ctl_usage_error(ctl, "--once goes with top only");
	len = (size_t)snprintf(line, sizeof(line), "%s", cmd);
	for (int i = 0; i < argc && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", argv[i]);
	if (len >= CTL_LINE_MAX)
		return ctl_usage_error(ctl, "request too long");
	if (strcmp(cmd, "status") == 0)
		return ctl_view_status(ctl);
	if (strcmp(cmd, "top") == 0)
		return ctl_view_top(ctl);
	if (strcmp(cmd, "list") == 0)
		return ctl_view_list(ctl, line);
	if (strcmp(cmd, "explain") == 0)
		return ctl_explain_view(ctl, line);
	return ctl_io_action(ctl, line);
}

/*
 * ctl_option - the options of the daemon commands, before or after the
 * command: returns 1 and advances *ip past it, 0 if argv[*ip] is not one
 * of them.
 */
static int ctl_option(struct ctl *ctl, int argc, char **argv, int *ip)
{
	const char *a = argv[*ip];

	if ((strcmp(a, "-c") == 0 || strcmp(a, "-s") == 0) && *ip + 1 < argc) {
		if (a[1] == 'c')
			ctl->config = argv[*ip + 1];
		else
			ctl->sock = argv[*ip + 1];
		*ip += 2;
		return 1;
	}
	if (strcmp(a, "--json") == 0)
		ctl->json = 1;
	else if (strcmp(a, "--table") == 0)
		ctl->table = 1;
	else if (strcmp(a, "--once") == 0)
		ctl->once = 1;
	else
		return 0;
	(*ip)++;
	return 1;
}

/*
 * ctl_wants_help - is -h or --help among argv[1..argc) (before a "--")?
 * Asked of every command first: help wins over whatever else is wrong.
 */
static int ctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl ctl;
	char *args[CTL_ARGS_MAX];
	const char *cmd, *spec = NULL;
	int i = 1, nargs = 0, n;

	memset(&ctl, 0, sizeof(ctl));
	while (i < argc && argv[i][0] == '-' && ctl_option(&ctl, argc, argv, &i))
		;
	if (i >= argc)
		usage();
	cmd = argv[i];
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0 ||
	    strcmp(cmd, "version") == 0) {
		printf("mxguardctl %s\n", MXG_VERSION);
		return CTL_OK;
	}
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		/* "help CMD": that command's usage. */
		ctl_usage(stdout, i + 1 < argc ? argv[i + 1] : NULL);
		return CTL_OK;
	}
	if (ctl_wants_help(argc - i, argv + i)) {
		ctl_usage(stdout, cmd);
		return CTL_OK;
	}
	/* Commands that do not talk to the daemon; their own options. */
	if (strcmp(cmd, "tcpstat") == 0)
		return tcpstat_main(argc - i, argv + i);
	if (strcmp(cmd, "logstat") == 0)
		return logstat_main(argc - i, argv + i);
	if (strcmp(cmd, "classify") == 0 || strcmp(cmd, "geo") == 0) {
		int geo = cmd[0] == 'g';

		if ((n = ctl_local(&ctl, cmd, argc - i - 1, argv + i + 1, geo ? &spec : NULL)) < 0)
			return CTL_EUSAGE;
		return geo ? ctl_geo(&ctl, spec, n, argv + i + 1)
			   : ctl_classify(&ctl, n, argv + i + 1);
	}
	if (cmd[0] == '-') {
		char what[96];

		snprintf(what, sizeof(what), "unknown option '%.40s' (or a missing value)", cmd);
		return ctl_usage_error(&ctl, what);
	}
	/* The daemon commands: options may also follow the command. */
	for (i++; i < argc;) {
		if (ctl_option(&ctl, argc, argv, &i))
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			char what[96];

			snprintf(what, sizeof(what), "unknown option '%.40s'", argv[i]);
			return ctl_usage_error(&ctl, what);
		}
		if (nargs == CTL_ARGS_MAX)
			return ctl_usage_error(&ctl, "too many arguments");
		args[nargs++] = argv[i++];
	}
	return ctl_daemon(&ctl, cmd, nargs, args);
}
