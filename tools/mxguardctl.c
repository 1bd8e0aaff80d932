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
 *	mxguardctl [-c file] [-s socket] [--json] reload | ping | notify-test
 *	mxguardctl classify [-c file] name [address] ...
 *	mxguardctl [-c file] geo [-d SPEC] ADDR...
 *	mxguardctl tcpstat [--port N ...] [--json] [--watch SECONDS [--count N]]
 *	mxguardctl logstat [--buckets S,...] [--csv | --json] [--svg FILE] FILE...
 * DESCRIPTION
 *	The daemon commands talk to the running daemon over its control
 *	socket (the control_socket of the configuration, or -s): one request
 *	line, one JSON answer line (control.c). KIND is a record kind of the
 *	store: tarpit, grey, awl, white or block.
 *
 *	status shows counters, connections, refusals, verdicts and the
 *	store as a table on a terminal (or with --table), and as the
 *	daemon's JSON otherwise: scripts written for earlier versions read
 *	that JSON. list shows records as a table. top is a live full-screen
 *	view refreshed every second; --once prints one frame without
 *	terminal escapes. add, del, flush, reload, ping and notify-test
 *	print the daemon's JSON answer. With --json every command prints
 *	JSON only, errors included ({"ok":false,"error":"..."}).
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
 *	Exit 0 on success; 1 when the daemon refused the request or another
 *	error occurred; 2 on bad usage (an unknown command included); 3
 *	when the daemon cannot be reached (not running, no socket, no
 *	answer); 4 when the control socket is not ours to use (permission).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "geo.h"
#include "logstat.h"
#include "mxg_build.h"
#include "rules.h"
#include "store.h"
#include "tcpstat.h"

#define MAX_LISTS 64

/* Exit codes (DIAGNOSTICS above, and mxguardctl(8)). */
#define CTL_OK 0
#define CTL_EFAIL 1  /* the daemon said no, or another error */
#define CTL_EUSAGE 2 /* bad usage */
#define CTL_EDOWN 3  /* daemon not reachable */
#define CTL_EPERM 4  /* no permission on the control socket */

#define CTL_LINE_MAX 1024	  /* the daemon's request line limit */
#define CTL_ANSWER_MAX (64 << 20) /* a list of millions of records, at most */
#define CTL_TIMEOUT 30		  /* seconds to wait for an answer */
#define CTL_ARGS_MAX 8		  /* positional arguments of a daemon command */

/* The options of the daemon commands. */
struct ctl {
	const char *config;					/* -c */
	const char *sock;					/* -s */
	int json;						/* --json */
	int table;						/* --table (status) */
	int once;						/* --once (top) */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the socket */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: mxguardctl [-c file] [-s socket] [--json] status [--table]\n"
		"       mxguardctl [-c file] [-s socket] [--json] top [--once]\n"
		"       mxguardctl [-c file] [-s socket] [--json] list KIND\n"
		"       mxguardctl [-c file] [-s socket] [--json] add white ADDRESS|CIDR|DOMAIN\n"
		"       mxguardctl [-c file] [-s socket] [--json] add block ADDRESS [SECONDS]\n"
		"       mxguardctl [-c file] [-s socket] [--json] del KIND KEY\n"
		"       mxguardctl [-c file] [-s socket] [--json] flush KIND\n"
		"       mxguardctl [-c file] [-s socket] [--json] reload|ping|notify-test\n"
		"       mxguardctl classify [-c file] name [address] ...\n"
		"       mxguardctl [-c file] geo [-d SPEC] ADDR...\n"
		"       mxguardctl tcpstat [--port N ...] [--json] "
		"[--watch SECONDS [--count N]]\n"
		"       mxguardctl logstat [--buckets S,...] [--csv | --json] "
		"[--svg FILE] [--year YYYY] FILE...\n"
		"KIND: tarpit, grey, awl, white or block\n");
	exit(CTL_EUSAGE);
}

/* ctl_json_string - s as a JSON string, quotes included. */
static void ctl_json_string(FILE *fp, const char *s)
{
	putc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			putc(c, fp);
	}
	putc('"', fp);
}

/*
 * The terminal of the live view. Static because a signal may end the view
 * at any point and the terminal must be given back whatever happens:
 * ctl_tty_leave is idempotent, and every exit path goes through it:
 * ctl_fail calls it, so that an error is printed on the normal screen.
 */
static struct termios ctl_tty_saved;
static int ctl_tty_active;
static volatile sig_atomic_t ctl_top_stop, ctl_top_resized;

static void ctl_top_signal(int sig)
{
	if (sig == SIGWINCH)
		ctl_top_resized = 1;
	else
		ctl_top_stop = 1;
}

static void ctl_tty_leave(void)
{
	if (!ctl_tty_active)
		return;
	ctl_tty_active = 0;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tty_saved);
	/* Cursor back on, leave the alternate screen. */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
}

/*
 * ctl_fail - report an error the way the user asked for: a JSON object on
 * stdout with --json (scripts parse stdout), else a line on stderr.
 * Returns code.
 */
static int ctl_fail(const struct ctl *ctl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctl_fail(const struct ctl *ctl, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_tty_leave();
	if (ctl != NULL && ctl->json) {
		fputs("{\"ok\":false,\"error\":", stdout);
		ctl_json_string(stdout, msg);
		fputs("}\n", stdout);
		fflush(stdout);
	} else {
		fprintf(stderr, "mxguardctl: %s\n", msg);
	}
	return code;
}

/* ctl_usage_error - bad usage of a daemon command: say what, exit 2. */
static int ctl_usage_error(const struct ctl *ctl, const char *what)
{
	if (ctl->json)
		return ctl_fail(ctl, CTL_EUSAGE, "%s (see mxguardctl(8))", what);
	fprintf(stderr, "mxguardctl: %s\n", what);
	usage();
	return CTL_EUSAGE;
}

/* ctl_config - load the configuration; NULL after an error was reported. */
static struct cfg *ctl_config(const struct ctl *ctl, const char *path)
{
	char err[1024];
	struct cfg *cfg =
	    cfg_load(path ? path : MXG_DEFAULT_CONFIG, path == NULL, NULL, 0, err, sizeof(err));

	if (cfg == NULL)
		ctl_fail(ctl, CTL_EFAIL, "%s", err);
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
	struct cfg *cfg = ctl_config(NULL, path);
	char *specs[MAX_LISTS], err[1024];
	char *lists;
	int n;
	struct rules *r;

	if (cfg == NULL)
		return CTL_EFAIL;
	if ((lists = strdup(cfg->client_lists)) == NULL) {
		cfg_unref(&cfg);
		return CTL_EFAIL;
	}
	n = cfg_split_list(lists, specs, MAX_LISTS);
	r = rules_load(specs, n, err, sizeof(err));
	if (r == NULL) {
		fprintf(stderr, "mxguardctl: %s\n", err);
		free(lists);
		cfg_unref(&cfg);
		return CTL_EFAIL;
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
	return CTL_OK;
}

/*
 * ctl_geo - "geo [-d SPEC] ADDR...": print "ADDR<TAB>CC" for each address,
 * looked up in SPEC or else the configured geo_database, so an operator
 * can see what a listener's country filter will be given. Exit 1 if the
 * database does not load or an argument is not an address.
 */
static int ctl_geo(const char *path, int argc, char **argv)
{
	struct cfg *cfg = NULL;
	struct geo *g;
	char err[1024], cc[3];
	int i = 0, rc = 0;

	if (argc >= 1 && strcmp(argv[0], "-d") == 0)
		i = 2;
	if (i >= argc) {
		fprintf(stderr, "usage: mxguardctl [-c file] geo [-d SPEC] ADDR...\n");
		return 2;
	}
	if (i == 0 && (cfg = ctl_config(NULL, path)) == NULL)
		return 1;
	g = geo_open(i ? argv[1] : cfg->geo_database, err, sizeof(err));
	if (cfg != NULL)
		cfg_unref(&cfg);
	if (g == NULL) {
		fprintf(stderr, "mxguardctl: %s\n", err);
		return 1;
	}
	for (; i < argc; i++) {
		struct sockaddr_storage ss;

		if (!ctl_addr(argv[i], &ss)) {
			fprintf(stderr, "mxguardctl: geo: not an IP address: %s\n", argv[i]);
			rc = 1;
			continue;
		}
		geo_lookup(g, (const struct sockaddr *)&ss, cc);
		printf("%s\t%s\n", argv[i], cc);
	}
	geo_free(&g);
	return rc;
}

/*
 * A small JSON reader for the daemon's answers: a tree of values, bounded
 * in depth. Only what the daemon writes needs to be read, but a malformed
 * answer is an error, never a crash.
 */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype type;
	char *key;	  /* member name, inside an object */
	char *str;	  /* J_STR */
	double num;	  /* J_NUM; J_BOOL: 0 or 1 */
	struct jv *child; /* J_ARR, J_OBJ: the first element */
	struct jv *next;  /* the next element of the parent */
};

#define J_DEPTH_MAX 32

static void j_free(struct jv *v)
{
	while (v != NULL) {
		struct jv *next = v->next;

		j_free(v->child);
		free(v->key);
		free(v->str);
		free(v);
		v = next;
	}
}

static void j_space(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
		(*p)++;
}

/*
 * j_string - read a string at *p (the opening quote). Code points are
 * stored as UTF-8; the C0 and C1 control characters become '?', so that
 * nothing read from the daemon (client names, list reasons) can send
 * escape sequences to the terminal.
 */
static char *j_string(const char **p)
{
	const char *s = *p + 1;
	size_t cap = strlen(s) + 1, o = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	for (; *s != '"'; s++) {
		unsigned cp = (unsigned char)*s;
		int escaped = *s == '\\';

		if (*s == '\0')
			goto bad;
		if (escaped) {
			s++;
			switch (*s) {
			case 'n':
				cp = '\n';
				break;
			case 't':
				cp = '\t';
				break;
			case 'r':
				cp = '\r';
				break;
			case 'b':
				cp = '\b';
				break;
			case 'f':
				cp = '\f';
				break;
			case '"':
			case '\\':
			case '/':
				cp = (unsigned char)*s;
				break;
			case 'u': {
				char hex[5];
				char *end;

				if (strlen(s + 1) < 4)
					goto bad;
				memcpy(hex, s + 1, 4);
				hex[4] = '\0';
				cp = (unsigned)strtoul(hex, &end, 16);
				if (*end != '\0')
					goto bad;
				s += 4;
				break;
			}
			default:
				goto bad;
			}
		}
		if (cp < 0x20 || cp == 0x7f || (escaped && cp >= 0x80 && cp < 0xa0) ||
		    (cp >= 0xd800 && cp < 0xe000))
			cp = '?';
		/* A \uXXXX escape takes 6 input bytes: its UTF-8 (at most 3) fits. */
		if (cp < 0x80 || !escaped) {
			out[o++] = (char)cp;
		} else if (cp < 0x800) {
			out[o++] = (char)(0xc0 | cp >> 6);
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[o++] = (char)(0xe0 | cp >> 12);
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	out[o] = '\0';
	*p = s + 1;
	return out;
bad:
	free(out);
	return NULL;
}

static struct jv *j_value(const char **p, int depth);

/* j_members - the elements of an array or object, after its opening bracket. */
static int j_members(const char **p, struct jv *v, int depth)
{
	char close = v->type == J_OBJ ? '}' : ']';
	struct jv **tail = &v->child;

	j_space(p);
	if (**p == close) {
		(*p)++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		struct jv *e;

		j_space(p);
		if (v->type == J_OBJ) {
			if (**p != '"' || (key = j_string(p)) == NULL)
				return -1;
			j_space(p);
			if (**p != ':') {
				free(key);
				return -1;
			}
			(*p)++;
		}
		if ((e = j_value(p, depth + 1)) == NULL) {
			free(key);
			return -1;
		}
		e->key = key;
		*tail = e;
		tail = &e->next;
		j_space(p);
		if (**p == ',') {
			(*p)++;
			continue;
		}
		if (**p != close)
			return -1;
		(*p)++;
		return 0;
	}
}

static struct jv *j_value(const char **p, int depth)
{
	struct jv *v;

	if (depth > J_DEPTH_MAX)
		return NULL;
	j_space(p);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	if (**p == '{' || **p == '[') {
		v->type = **p == '{' ? J_OBJ : J_ARR;
		(*p)++;
		if (j_members(p, v, depth) < 0)
			goto bad;
	} else if (**p == '"') {
		v->type = J_STR;
		if ((v->str = j_string(p)) == NULL)
			goto bad;
	} else if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
		v->type = J_BOOL;
		v->num = **p == 't';
		*p += **p == 't' ? 4 : 5;
	} else if (strncmp(*p, "null", 4) == 0) {
		v->type = J_NULL;
		*p += 4;
	} else {
		char *end;

		v->type = J_NUM;
		v->num = strtod(*p, &end);
		if (end == *p)
			goto bad;
		*p = end;
	}
	return v;
bad:
	j_free(v);
	return NULL;
}

/* j_parse - the one JSON value in text (trailing white space allowed), or NULL. */
static struct jv *j_parse(const char *text)
{
	const char *p = text;
	struct jv *v = j_value(&p, 0);

	j_space(&p);
	if (v != NULL && *p != '\0') {
		j_free(v);
		return NULL;
	}
	return v;
}

/* j_get - the member key of object o, or NULL. */
static const struct jv *j_get(const struct jv *o, const char *key)
{
	if (o == NULL || o->type != J_OBJ)
		return NULL;
	for (const struct jv *m = o->child; m != NULL; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

static double j_num(const struct jv *o, const char *key)
{
	const struct jv *m = j_get(o, key);

	return m != NULL && (m->type == J_NUM || m->type == J_BOOL) ? m->num : 0;
}

static const char *j_str(const struct jv *o, const char *key)
{
	const struct jv *m = j_get(o, key);

	return m != NULL && m->type == J_STR ? m->str : "";
}

/*
 * ctl_socket - find the control socket: -s, else the configuration's
 * control_socket. Returns 0, or an exit code after reporting.
 */
static int ctl_socket(struct ctl *ctl)
{
	char sock[1024];

	if (ctl->sock != NULL) {
		snprintf(sock, sizeof(sock), "%s", ctl->sock);
	} else {
		struct cfg *cfg = ctl_config(ctl, ctl->config);

		if (cfg == NULL)
			return CTL_EFAIL;
		cfg_control_path(cfg, sock, sizeof(sock));
		cfg_unref(&cfg);
	}
	if (strlen(sock) >= sizeof(ctl->path))
		return ctl_fail(ctl, CTL_EFAIL, "control socket path too long: %s", sock);
	memcpy(ctl->path, sock, strlen(sock) + 1);
	return CTL_OK;
}

/*
 * ctl_denied - connect() said EACCES: name who may use the socket, from
 * its owner, group and mode, or the directory that stops us.
 */
static int ctl_denied(const struct ctl *ctl)
{
	struct stat st;
	struct passwd *pw;
	struct group *gr;
	char user[64], group[64];

	if (stat(ctl->path, &st) < 0)
		return ctl_fail(ctl, CTL_EPERM,
				"permission denied: cannot reach the control socket %s (%s): a "
				"directory on its path is closed to uid %ld; run mxguardctl as "
				"root or as the run_as user of mxguard",
				ctl->path, strerror(errno), (long)geteuid());
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	if (pw != NULL)
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%ld", (long)st.st_uid);
	if (gr != NULL)
		snprintf(group, sizeof(group), "%s", gr->gr_name);
	else
		snprintf(group, sizeof(group), "%ld", (long)st.st_gid);
	return ctl_fail(ctl, CTL_EPERM,
			"permission denied on the control socket %s (owner %s, group %s, mode "
			"%04o): run mxguardctl as root, as user %s%s%s",
			ctl->path, user, group, (unsigned)(st.st_mode & 07777), user,
			st.st_mode & S_IWGRP ? " or as a member of group " : "",
			st.st_mode & S_IWGRP ? group : "");
}

/*
 * ctl_call - send one request line, read the one-line answer into
 * *answer_r (the caller frees it). Returns 0, or an exit code after
 * reporting (3: not reachable, 4: permission).
 */
static int ctl_call(struct ctl *ctl, const char *line, char **answer_r)
{
	struct sockaddr_un sun;
	struct timeval tv = {CTL_TIMEOUT, 0};
	char buf[8192], *answer = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	*answer_r = NULL;
	if (ctl->path[0] == '\0' && (rc = ctl_socket(ctl)) != CTL_OK)
		return rc;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, ctl->path, strlen(ctl->path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return ctl_fail(ctl, CTL_EFAIL, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		close(fd);
		if (e == EACCES || e == EPERM)
			return ctl_denied(ctl);
		return ctl_fail(ctl, CTL_EDOWN,
				"cannot reach mxguard at %s: %s%s (name another socket with -s "
				"SOCKET, or the daemon's configuration with -c FILE)",
				ctl->path, strerror(e),
				e == ENOENT || e == ECONNREFUSED ? ": is it running?" : "");
	}
	/* A daemon that accepts but never answers must not hang scripts. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(buf, sizeof(buf), "%s\n", line);
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
		rc = ctl_fail(ctl, CTL_EDOWN, "cannot send to mxguard at %s: %s", ctl->path,
			      strerror(errno));
		close(fd);
		return rc;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *grown;

		if (len + (size_t)n > CTL_ANSWER_MAX) {
			free(answer);
			close(fd);
			return ctl_fail(ctl, CTL_EFAIL, "answer from mxguard larger than %d bytes",
					CTL_ANSWER_MAX);
		}
		if ((grown = realloc(answer, len + (size_t)n + 1)) == NULL) {
			free(answer);
			close(fd);
			return ctl_fail(ctl, CTL_EFAIL, "out of memory");
		}
		answer = grown;
		memcpy(answer + len, buf, (size_t)n);
		len += (size_t)n;
		answer[len] = '\0';
	}
	rc = errno;
	close(fd);
	if (n < 0 || answer == NULL) {
		free(answer);
		return ctl_fail(ctl, CTL_EDOWN, "no answer from mxguard at %s%s%s", ctl->path,
				n < 0 ? ": " : "", n < 0 ? strerror(rc) : "");
	}
	*answer_r = answer;
	return CTL_OK;
}

/*
 * ctl_parse - the answer as a tree; a daemon error ("ok":false) is
 * reported and becomes exit code 1. Returns 0 with *v_r set, or an exit
 * code (the answer is freed either way).
 */
static int ctl_parse(const struct ctl *ctl, char *answer, struct jv **v_r)
{
	struct jv *v = j_parse(answer);
	const struct jv *ok = j_get(v, "ok");

	*v_r = NULL;
	free(answer);
	if (v == NULL || v->type != J_OBJ)
		return j_free(v), ctl_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s",
					   ctl->path);
	if (ok != NULL && ok->type == J_BOOL && !ok->num) {
		int rc = ctl_fail(ctl, CTL_EFAIL, "%s", j_str(v, "error"));

		j_free(v);
		return rc;
	}
	*v_r = v;
	return CTL_OK;
}

/*
 * ctl_action - commands whose answer is printed as it comes: add, del,
 * flush, reload, ping, notify-test. The JSON line goes to stdout (scripts
 * read it; earlier versions printed it), and a refusal also to stderr in
 * words, unless --json asked for JSON only.
 */
static int ctl_action(struct ctl *ctl, const char *line)
{
	char *answer;
	struct jv *v;
	int rc = ctl_call(ctl, line, &answer);

	if (rc != CTL_OK)
		return rc;
	/* Checked before it is printed: --json output always parses. */
	if ((v = j_parse(answer)) == NULL || v->type != J_OBJ) {
		j_free(v);
		free(answer);
		return ctl_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s", ctl->path);
	}
	fputs(answer, stdout);
	if (answer[0] != '\0' && answer[strlen(answer) - 1] != '\n')
		putchar('\n');
	fflush(stdout);
	free(answer);
	if (j_get(v, "ok") != NULL && !j_num(v, "ok")) {
		if (!ctl->json)
			fprintf(stderr, "mxguardctl: %s\n", j_str(v, "error"));
		rc = CTL_EFAIL;
	}
	j_free(v);
	return rc;
}

static void ctl_time(double t, char *buf, size_t bufsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || t > 253402300799.0) { /* 0, or INT64_MAX: never */
		snprintf(buf, bufsz, "%s", t <= 0 ? "-" : "never");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ctl_duration - "2d 03:04:05" or "03:04:05". */
static void ctl_duration(double secs, char *buf, size_t bufsz)
{
	long s = secs > 0 ? (long)secs : 0;

	if (s >= 86400)
		snprintf(buf, bufsz, "%ldd %02ld:%02ld:%02ld", s / 86400, s % 86400 / 3600,
			 s % 3600 / 60, s % 60);
	else
		snprintf(buf, bufsz, "%02ld:%02ld:%02ld", s / 3600, s % 3600 / 60, s % 60);
}

/*
 * ctl_rows - an object as "name value" rows, nested objects indented
 * under their name. Generic on purpose: members the daemon gains (the
 * shield's attack state, say) show up without a change here.
 */
static void ctl_rows(const struct jv *o, int indent)
{
	for (const struct jv *m = o->child; m != NULL; m = m->next) {
		char label[160], value[64];
		int n = 0;

		if (indent == 0 && strcmp(m->key, "ok") == 0)
			continue;
		snprintf(label, sizeof(label), "%*s%s", indent * 2, "", m->key);
		switch (m->type) {
		case J_OBJ:
			printf("%s\n", label);
			ctl_rows(m, indent + 1);
			continue;
		case J_ARR:
			/* A list of objects (the shield's groups): each under its name. */
			if (m->child != NULL && m->child->type == J_OBJ) {
				printf("%s\n", label);
				for (const struct jv *e = m->child; e != NULL; e = e->next, n++) {
					const struct jv *nm = j_get(e, "name");
					char item[160];

					if (nm != NULL && nm->type == J_STR)
						snprintf(item, sizeof(item), "%*s%s", (indent + 1) * 2,
							 "", nm->str);
					else
						snprintf(item, sizeof(item), "%*s#%d", (indent + 1) * 2,
							 "", n + 1);
					printf("%s\n", item);
					ctl_rows(e, indent + 2);
				}
				continue;
			}
			for (const struct jv *e = m->child; e != NULL; e = e->next)
				n++;
			snprintf(value, sizeof(value), "%d item%s", n, n == 1 ? "" : "s");
			break;
		case J_NUM:
			if (strcmp(m->key, "uptime") == 0)
				ctl_duration(m->num, value, sizeof(value));
			else if (strcmp(m->key, "fallback_since") == 0)
				ctl_time(m->num, value, sizeof(value));
			else if (m->num == (double)(long long)m->num)
				snprintf(value, sizeof(value), "%lld", (long long)m->num);
			else
				snprintf(value, sizeof(value), "%.3f", m->num);
			break;
		case J_BOOL:
			snprintf(value, sizeof(value), "%s", m->num ? "yes" : "no");
			break;
		case J_NULL:
			snprintf(value, sizeof(value), "-");
			break;
		case J_STR:
			printf("%-34s %s\n", label, m->str);
			continue;
		}
		printf("%-34s %s\n", label, value);
	}
}

/* ctl_status - "status": a table on a terminal or with --table, else JSON. */
static int ctl_status(struct ctl *ctl)
{
	char *answer;
	struct jv *v;
	int rc;

	if (ctl->json || (!ctl->table && !isatty(STDOUT_FILENO)))
		return ctl_action(ctl, "status");
	if ((rc = ctl_call(ctl, "status", &answer)) != CTL_OK ||
	    (rc = ctl_parse(ctl, answer, &v)) != CTL_OK)
		return rc;
	ctl_rows(v, 0);
	j_free(v);
	return CTL_OK;
}

/* ctl_list - "list KIND": a table of the records, or the JSON with --json. */
static int ctl_list(struct ctl *ctl, const char *line)
{
	const struct jv *recs;
	char *answer;
	struct jv *v;
	int rc, n = 0;

	if (ctl->json)
		return ctl_action(ctl, line);
	if ((rc = ctl_call(ctl, line, &answer)) != CTL_OK ||
	    (rc = ctl_parse(ctl, answer, &v)) != CTL_OK)
		return rc;
	if ((recs = j_get(v, "records")) == NULL || recs->type != J_ARR) {
		j_free(v);
		return ctl_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s", ctl->path);
	}
	printf("%-50s %-20s %-20s %-20s %s\n", "KEY", "FIRST", "LAST", "EXPIRES", "COUNT");
	for (const struct jv *r = recs->child; r != NULL; r = r->next, n++) {
		char first[32], last[32], expires[32];

		ctl_time(j_num(r, "first"), first, sizeof(first));
		ctl_time(j_num(r, "last"), last, sizeof(last));
		ctl_time(j_num(r, "expires"), expires, sizeof(expires));
		printf("%-50s %-20s %-20s %-20s %.0f\n", j_str(r, "key"), first, last, expires,
		       j_num(r, "count"));
	}
	printf("%d record%s\n", n, n == 1 ? "" : "s");
	j_free(v);
	return CTL_OK;
}

/*
 * top: the frame is built as lines first, then written: whole to a pipe
 * (--once), or cut to the terminal's size with escapes (live).
 */
#define CTL_FRAME_LINES 512
#define CTL_FRAME_WIDTH 512

struct ctl_frame {
	char line[CTL_FRAME_LINES][CTL_FRAME_WIDTH];
	int n;
};

static void ctl_line(struct ctl_frame *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ctl_line(struct ctl_frame *f, const char *fmt, ...)
{
	va_list ap;

	if (f->n >= CTL_FRAME_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(f->line[f->n++], CTL_FRAME_WIDTH, fmt, ap);
	va_end(ap);
}

/* ctl_members - "name N  name N ..." of a flat object of numbers. */
static void ctl_members(const struct jv *o, char *buf, size_t bufsz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (const struct jv *m = o != NULL ? o->child : NULL; m != NULL && len < bufsz;
	     m = m->next)
		len += (size_t)snprintf(buf + len, bufsz - len, "%s%s %.0f", len ? "  " : "",
					m->key, m->num);
}

/* ctl_rate - per second between two snapshots, "-" without a previous one. */
static void ctl_rate(const struct jv *cur, const struct jv *prev, const char *group,
		     const char *key, double dt, char *buf, size_t bufsz)
{
	if (prev == NULL || dt <= 0) {
		snprintf(buf, bufsz, "-");
		return;
	}
	snprintf(buf, bufsz, "%.1f",
		 (j_num(j_get(cur, group), key) - j_num(j_get(prev, group), key)) / dt);
}

/* ctl_rates - a table of group's counters with their rates, under title. */
static void ctl_rates(struct ctl_frame *f, const struct jv *cur, const struct jv *prev,
		      const char *group, const char *title, double dt)
{
	char rate[32];

	ctl_line(f, "%-14s %10s %8s", title, "TOTAL", "PER SEC");
	for (const struct jv *m = j_get(cur, group) ? j_get(cur, group)->child : NULL; m != NULL;
	     m = m->next) {
		ctl_rate(cur, prev, group, m->key, dt, rate, sizeof(rate));
		ctl_line(f, "%-14s %10.0f %8s", m->key, m->num, rate);
	}
}

/*
 * ctl_top_frame - one frame from snapshot cur (and prev for rates). rows
 * > 0 limits the frame to that many lines: the lists of holds and of
 * verdicts share what the fixed part leaves.
 */
static void ctl_top_frame(struct ctl_frame *f, const struct jv *cur, const struct jv *prev,
			  int rows, int live)
{
	double now = j_num(cur, "now_ms") / 1000.0;
	double dt = prev != NULL ? now - j_num(prev, "now_ms") / 1000.0 : 0;
	const struct jv *holds = j_get(cur, "holds"), *recent = j_get(cur, "recent");
	char up[32], when[32], buf[CTL_FRAME_WIDTH];
	int nholds = 0, nrecent = 0, room, hold_rows, recent_rows, i;

	f->n = 0;
	ctl_duration(j_num(cur, "uptime"), up, sizeof(up));
	ctl_time(now, when, sizeof(when));
	ctl_line(f, "mxguard top   %s   up %s%s", when, up, live ? "   (q: quit)" : "");
	ctl_line(f, "connections %.0f   held %.0f   accepted %.0f   refused %.0f   passed %.0f",
		 j_num(cur, "connections"), j_num(cur, "held"), j_num(cur, "accepted"),
		 j_num(cur, "refused"), j_num(cur, "passed"));
	ctl_members(j_get(cur, "stages"), buf, sizeof(buf));
	ctl_line(f, "stages      %s", buf);
	ctl_members(j_get(cur, "listeners"), buf, sizeof(buf));
	ctl_line(f, "listeners   %s", buf);
	ctl_line(f, "%s", "");
	ctl_rates(f, cur, prev, "refusals", "REFUSALS", dt);
	ctl_line(f, "%s", "");
	ctl_rates(f, cur, prev, "verdicts", "VERDICTS", dt);
	for (const struct jv *e = holds ? holds->child : NULL; e != NULL; e = e->next)
		nholds++;
	for (const struct jv *e = recent ? recent->child : NULL; e != NULL; e = e->next)
		nrecent++;
	/* Four lines of section heads; the lists share the rest, holds first. */
	room = rows > 0 ? rows - f->n - 6 : CTL_FRAME_LINES;
	if (room < 2)
		room = 2;
	hold_rows = nholds < room / 2 ? nholds : room / 2;
	if (nrecent < room - hold_rows && nholds > hold_rows)
		hold_rows = nholds < room - nrecent ? nholds : room - nrecent;
	recent_rows = nrecent < room - hold_rows ? nrecent : room - hold_rows;
	ctl_line(f, "%s", "");
	ctl_line(f, "TARPIT HOLDS (%.0f held, oldest first%s)", j_num(cur, "held"),
		 hold_rows < j_num(cur, "held") ? ", some not shown" : "");
	ctl_line(f, "%-40s %9s  %s", "CLIENT", "AGE", "NAME");
	i = 0;
	for (const struct jv *e = holds ? holds->child : NULL; e != NULL && i < hold_rows;
	     e = e->next, i++) {
		ctl_duration(j_num(e, "age"), up, sizeof(up));
		ctl_line(f, "%-40s %9s  %s", j_str(e, "client"), up, j_str(e, "name"));
	}
	ctl_line(f, "%s", "");
	ctl_line(f, "RECENT VERDICTS (newest first)");
	ctl_line(f, "%8s  %-40s %-8s %-40s %s", "AGO", "CLIENT", "VERDICT", "NAME", "REASON");
	i = 0;
	for (const struct jv *e = recent ? recent->child : NULL; e != NULL && i < recent_rows;
	     e = e->next, i++) {
		ctl_duration(j_num(e, "age"), up, sizeof(up));
		ctl_line(f, "%8s  %-40s %-8s %-40s %s", up, j_str(e, "client"), j_str(e, "verdict"),
			 j_str(e, "name"), j_str(e, "reason"));
	}
}

/* ctl_snapshot - one "top" answer as a tree, or an exit code. */
static int ctl_snapshot(struct ctl *ctl, struct jv **v_r)
{
	char *answer;
	int rc = ctl_call(ctl, "top", &answer);

	return rc != CTL_OK ? rc : ctl_parse(ctl, answer, v_r);
}

static int ctl_tty_enter(void)
{
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &ctl_tty_saved) < 0)
		return -1;
	raw = ctl_tty_saved;
	/* Keys one at a time, not echoed; ISIG stays: Ctrl-C is SIGINT. */
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
		return -1;
	ctl_tty_active = 1;
	/* The alternate screen, cursor hidden. */
	fputs("\033[?1049h\033[?25l", stdout);
	fflush(stdout);
	return 0;
}

/* ctl_top_wait - until ms passed, q was typed, or a signal; 1: stop. */
static int ctl_top_wait(int ms)
{
	struct timeval start, now;

	gettimeofday(&start, NULL);
	while (!ctl_top_stop && !ctl_top_resized) {
		struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
		long left;
		char ch;
		int rc;

		gettimeofday(&now, NULL);
		left = ms - ((now.tv_sec - start.tv_sec) * 1000L +
			     (now.tv_usec - start.tv_usec) / 1000L);
		if (left <= 0)
			break;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno != EINTR)
			return 1;
		if (rc > 0) {
			if (read(STDIN_FILENO, &ch, 1) != 1 || ch == 'q' || ch == 'Q')
				return 1;
			if (ch == ' ')
				break; /* refresh now */
		}
	}
	ctl_top_resized = 0;
	return ctl_top_stop;
}

static int ctl_top_live(struct ctl *ctl)
{
	static struct ctl_frame frame;
	struct sigaction sa;
	struct jv *prev = NULL, *cur = NULL;
	int rc = CTL_OK;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return ctl_fail(ctl, CTL_EUSAGE,
				"top needs a terminal; use top --once or top --json in scripts");
	/* Reach the daemon once before taking the screen: errors stay visible. */
	if ((rc = ctl_snapshot(ctl, &cur)) != CTL_OK)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_top_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must wake the poll. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	if (ctl_tty_enter() < 0) {
		j_free(cur);
		return ctl_fail(ctl, CTL_EFAIL, "cannot set up the terminal: %s", strerror(errno));
	}
	for (;;) {
		struct winsize ws = {0};
		int rows = 24, cols = 80;

		if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
			rows = ws.ws_row;
			cols = ws.ws_col;
		}
		ctl_top_frame(&frame, cur, prev, rows, 1);
		fputs("\033[H", stdout);
		for (int i = 0; i < frame.n && i < rows; i++)
			printf("%.*s\033[K%s", cols, frame.line[i], i + 1 < rows ? "\r\n" : "");
		fputs("\033[J", stdout);
		fflush(stdout);
		if (ctl_top_wait(1000))
			break;
		j_free(prev);
		prev = cur;
		cur = NULL;
		/* An error leaves the screen first (ctl_fail), then shows. */
		if ((rc = ctl_snapshot(ctl, &cur)) != CTL_OK)
			break;
	}
	ctl_tty_leave();
	j_free(prev);
	j_free(cur);
	return rc;
}

/* ctl_top - "top": live, one frame (--once) or one snapshot (--json). */
static int ctl_top(struct ctl *ctl)
{
	static struct ctl_frame frame;
	struct jv *prev, *cur;
	int rc;

	if (ctl->json)
		return ctl_action(ctl, "top");
	if (!ctl->once)
		return ctl_top_live(ctl);
	/* Two snapshots a second apart, so that the rates are real ones. */
	if ((rc = ctl_snapshot(ctl, &prev)) != CTL_OK)
		return rc;
	sleep(1);
	if ((rc = ctl_snapshot(ctl, &cur)) != CTL_OK) {
		j_free(prev);
		return rc;
	}
	ctl_top_frame(&frame, cur, prev, 0, 0);
	for (int i = 0; i < frame.n; i++)
		puts(frame.line[i]);
	j_free(prev);
	j_free(cur);
	return CTL_OK;
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
		return ctl_status(ctl);
	if (strcmp(cmd, "top") == 0)
		return ctl_top(ctl);
	if (strcmp(cmd, "list") == 0)
		return ctl_list(ctl, line);
	return ctl_action(ctl, line);
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

int main(int argc, char **argv)
{
	struct ctl ctl;
	char *args[CTL_ARGS_MAX];
	const char *cmd;
	int i = 1, nargs = 0;

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
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0)
		usage();
	/* Commands that do not talk to the daemon; their own options. */
	if (strcmp(cmd, "tcpstat") == 0)
		return tcpstat_main(argc - i, argv + i);
	if (strcmp(cmd, "logstat") == 0)
		return logstat_main(argc - i, argv + i);
	if (strcmp(cmd, "classify") == 0) {
		i++;
		if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
			ctl.config = argv[i + 1];
			i += 2;
		}
		if (i >= argc)
			usage();
		return ctl_classify(ctl.config, argc - i, argv + i);
	}
	if (strcmp(cmd, "geo") == 0) {
		i++;
		if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
			ctl.config = argv[i + 1];
			i += 2;
		}
		return ctl_geo(ctl.config, argc - i, argv + i);
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
