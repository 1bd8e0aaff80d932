/*
 * ctl_view.c - mxguardctl's tables and live view (ctl_view.h). The tables
 * are generic over the daemon's JSON where they can be (members the daemon
 * gains show up without a change here). top builds each frame as lines
 * first, then writes it: whole to a pipe (--once), or cut to the
 * terminal's size with escapes (live).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ctl_io.h"
#include "ctl_json.h"
#include "ctl_view.h"

/* Set by signals during the live view: stop, or redraw at the new size. */
static volatile sig_atomic_t ctl_top_stop, ctl_top_resized;

static void ctl_top_signal(int sig)
{
	if (sig == SIGWINCH)
		ctl_top_resized = 1;
	else
		ctl_top_stop = 1;
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
					const struct jv *nm = ctl_json_get(e, "name");
					char item[160];

					if (nm != NULL && nm->type == J_STR)
						snprintf(item, sizeof(item), "%*s%s",
							 (indent + 1) * 2, "", nm->str);
					else
						snprintf(item, sizeof(item), "%*s#%d",
							 (indent + 1) * 2, "", n + 1);
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
int ctl_view_status(struct ctl *ctl)
{
	char *answer;
	struct jv *v;
	int rc;

	if (ctl->json || (!ctl->table && !isatty(STDOUT_FILENO)))
		return ctl_io_action(ctl, "status");
	if ((rc = ctl_io_call(ctl, "status", &answer)) != CTL_OK ||
	    (rc = ctl_io_parse(ctl, answer, &v)) != CTL_OK)
		return rc;
	ctl_rows(v, 0);
	ctl_json_free(v);
	return CTL_OK;
}

/* ctl_list - "list KIND": a table of the records, or the JSON with --json. */
int ctl_view_list(struct ctl *ctl, const char *line)
{
	const struct jv *recs;
	char *answer;
	struct jv *v;
	int rc, n = 0;

	if (ctl->json)
		return ctl_io_action(ctl, line);
	if ((rc = ctl_io_call(ctl, line, &answer)) != CTL_OK ||
	    (rc = ctl_io_parse(ctl, answer, &v)) != CTL_OK)
		return rc;
	if ((recs = ctl_json_get(v, "records")) == NULL || recs->type != J_ARR) {
		ctl_json_free(v);
		return ctl_io_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s",
				   ctl->path);
	}
	printf("%-50s %-20s %-20s %-20s %s\n", "KEY", "FIRST", "LAST", "EXPIRES", "COUNT");
	for (const struct jv *r = recs->child; r != NULL; r = r->next, n++) {
		char first[32], last[32], expires[32];

		ctl_time(ctl_json_num(r, "first"), first, sizeof(first));
		ctl_time(ctl_json_num(r, "last"), last, sizeof(last));
		ctl_time(ctl_json_num(r, "expires"), expires, sizeof(expires));
		printf("%-50s %-20s %-20s %-20s %.0f\n", ctl_json_str(r, "key"), first, last,
		       expires, ctl_json_num(r, "count"));
	}
	printf("%d record%s\n", n, n == 1 ? "" : "s");
	ctl_json_free(v);
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
		 (ctl_json_num(ctl_json_get(cur, group), key) -
		  ctl_json_num(ctl_json_get(prev, group), key)) /
		     dt);
}

/* ctl_rates - a table of group's counters with their rates, under title. */
static void ctl_rates(struct ctl_frame *f, const struct jv *cur, const struct jv *prev,
		      const char *group, const char *title, double dt)
{
	char rate[32];

	ctl_line(f, "%-14s %10s %8s", title, "TOTAL", "PER SEC");
	for (const struct jv *m = ctl_json_get(cur, group) ? ctl_json_get(cur, group)->child : NULL;
	     m != NULL; m = m->next) {
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
	double now = ctl_json_num(cur, "now_ms") / 1000.0;
	double dt = prev != NULL ? now - ctl_json_num(prev, "now_ms") / 1000.0 : 0;
	const struct jv *holds = ctl_json_get(cur, "holds"), *recent = ctl_json_get(cur, "recent");
	char up[32], when[32], buf[CTL_FRAME_WIDTH];
	int nholds = 0, nrecent = 0, room, hold_rows, recent_rows, i;

	f->n = 0;
	ctl_duration(ctl_json_num(cur, "uptime"), up, sizeof(up));
	ctl_time(now, when, sizeof(when));
	ctl_line(f, "mxguard top   %s   up %s%s", when, up, live ? "   (q: quit)" : "");
	ctl_line(f, "connections %.0f   held %.0f   accepted %.0f   refused %.0f   passed %.0f",
		 ctl_json_num(cur, "connections"), ctl_json_num(cur, "held"),
		 ctl_json_num(cur, "accepted"), ctl_json_num(cur, "refused"),
		 ctl_json_num(cur, "passed"));
	ctl_members(ctl_json_get(cur, "stages"), buf, sizeof(buf));
	ctl_line(f, "stages      %s", buf);
	ctl_members(ctl_json_get(cur, "listeners"), buf, sizeof(buf));
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
	ctl_line(f, "TARPIT HOLDS (%.0f held, oldest first%s)", ctl_json_num(cur, "held"),
		 hold_rows < ctl_json_num(cur, "held") ? ", some not shown" : "");
	ctl_line(f, "%-40s %9s  %s", "CLIENT", "AGE", "NAME");
	i = 0;
	for (const struct jv *e = holds ? holds->child : NULL; e != NULL && i < hold_rows;
	     e = e->next, i++) {
		ctl_duration(ctl_json_num(e, "age"), up, sizeof(up));
		ctl_line(f, "%-40s %9s  %s", ctl_json_str(e, "client"), up,
			 ctl_json_str(e, "name"));
	}
	ctl_line(f, "%s", "");
	ctl_line(f, "RECENT VERDICTS (newest first)");
	ctl_line(f, "%8s  %-40s %-8s %-40s %s", "AGO", "CLIENT", "VERDICT", "NAME", "REASON");
	i = 0;
	for (const struct jv *e = recent ? recent->child : NULL; e != NULL && i < recent_rows;
	     e = e->next, i++) {
		ctl_duration(ctl_json_num(e, "age"), up, sizeof(up));
		ctl_line(f, "%8s  %-40s %-8s %-40s %s", up, ctl_json_str(e, "client"),
			 ctl_json_str(e, "verdict"), ctl_json_str(e, "name"),
			 ctl_json_str(e, "reason"));
	}
}

/* ctl_snapshot - one "top" answer as a tree, or an exit code. */
static int ctl_snapshot(struct ctl *ctl, struct jv **v_r)
{
	char *answer;
	int rc = ctl_io_call(ctl, "top", &answer);

	return rc != CTL_OK ? rc : ctl_io_parse(ctl, answer, v_r);
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
		return ctl_io_fail(ctl, CTL_EUSAGE,
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
	if (ctl_io_tty_enter() < 0) {
		ctl_json_free(cur);
		return ctl_io_fail(ctl, CTL_EFAIL, "cannot set up the terminal: %s",
				   strerror(errno));
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
		ctl_json_free(prev);
		prev = cur;
		cur = NULL;
		/* An error leaves the screen first (ctl_io_fail), then shows. */
		if ((rc = ctl_snapshot(ctl, &cur)) != CTL_OK)
			break;
	}
	ctl_io_tty_leave();
	ctl_json_free(prev);
	ctl_json_free(cur);
	return rc;
}

/* ctl_top - "top": live, one frame (--once) or one snapshot (--json). */
int ctl_view_top(struct ctl *ctl)
{
	static struct ctl_frame frame;
	struct jv *prev, *cur;
	int rc;

	if (ctl->json)
		return ctl_io_action(ctl, "top");
	if (!ctl->once)
		return ctl_top_live(ctl);
	/* Two snapshots a second apart, so that the rates are real ones. */
	if ((rc = ctl_snapshot(ctl, &prev)) != CTL_OK)
		return rc;
	sleep(1);
	if ((rc = ctl_snapshot(ctl, &cur)) != CTL_OK) {
		ctl_json_free(prev);
		return rc;
	}
	ctl_top_frame(&frame, cur, prev, 0, 0);
	for (int i = 0; i < frame.n; i++)
		puts(frame.line[i]);
	ctl_json_free(prev);
	ctl_json_free(cur);
	return CTL_OK;
}
