/*
 * NAME
 *	logstat - smtpd session durations from Postfix logs
 * SYNOPSIS
 *	mxguardctl logstat [--buckets S,S,...] [--csv | --json] [--svg FILE]
 *		[--year YYYY] [--service NAME] FILE...
 *	mxguardctl logstat [options] --journal [-u UNIT] [-D DIR]
 * DESCRIPTION
 *	Reads Postfix logs (plain, gzip, or "-" for standard input) and pairs
 *	each smtpd "connect from NAME[ADDR]" with the "disconnect from" of the
 *	same syslog host and smtpd pid. For every session that has both ends
 *	it reports:
 *
 *	- a histogram of durations (log-scale buckets, or --buckets), with
 *	  per bucket the number of sessions, their share of all sessions and
 *	  their share of all session time ("occupancy": what the bucket costs
 *	  in smtpd processes);
 *	- how sessions ended: quit (a disconnect with quit=1), lost
 *	  connection after X, timeout after X, rejected (a NOQUEUE reject in
 *	  the session), a disconnect without quit, or no disconnect at all
 *	  (a new connect of the same pid, or the end of the input). When
 *	  several apply, the first in this order wins: missing, timeout or
 *	  lost, rejected, quit;
 *	- S25R suspect clients versus the others, by the daemon's own rules
 *	  (a name of "unknown" is S25R rule 0);
 *	- the 10 clients (NAME[ADDR]) that occupied smtpd longest.
 *
 *	Traditional timestamps have no year: --year (default: this year) is
 *	assumed, and it is incremented when the month goes from December to
 *	January. Their time zone and daylight saving time are ignored: a
 *	session across a DST change is off by an hour. RFC 3339 timestamps
 *	carry their own year and offset.
 *
 *	Every "journalctl -o" short format is read (logstat_parse.c). When
 *	nothing parses, logstat shows the first line and exits 1; timestamps
 *	in whole seconds earn a warning when a bucket is under a second.
 *	--service keeps one Postfix service (postfix/submission/smtpd:
 *	"submission"; postfix/smtpd: "smtpd").
 *
 *	--journal reads Postfix's entries from the systemd journal instead of
 *	files (logstat_journal.c), with their microsecond timestamps; -u UNIT
 *	keeps one unit's, -D DIR reads the journal files under DIR.
 *
 *	Lines that do not start with a timestamp, a host and a tag are
 *	counted as unparseable; lines of other programs are skipped.
 *	postscreen lines are counted.
 * IMPLEMENTATION
 *	This file reads the files and runs the command; the modules are
 *	logstat_parse.c (the line parser and session accounting),
 *	logstat_report.c (text, CSV, JSON) and logstat_svg.c (--svg).
 *	Speed matters (see logstat_parse.c). One thread: mmap() of plain
 *	files was measured and gained nothing over read().
 * DIAGNOSTICS
 *	Exit 0 on success, 1 on an error (with a message), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "logstat.h"
#include "logstat_journal.h"
#include "logstat_parse.h"
#include "logstat_report.h"
#include "logstat_svg.h"
#include "rules.h"

#define LS_BUF (1024 * 1024)	    /* one read; also the longest line kept */
#define LS_PROGRESS_MIN (64L << 20) /* input size that earns a progress bar */

static void ls_usage(void)
{
	fprintf(stderr, "usage: mxguardctl logstat [--buckets S,S,...] [--csv | --json] "
			"[--svg FILE] [--year YYYY] [--service NAME] FILE...\n"
			"       mxguardctl logstat [options] --journal [-u UNIT] [-D DIR]\n");
}

/* ---- input ------------------------------------------------------------ */

static double ls_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * ls_file - read one file ("-": standard input) line by line into st.
 * Returns 0, or -1 after a message.
 */
static int ls_file(struct ls_state *st, const char *path, char *buf)
{
	int stdin_ = strcmp(path, "-") == 0;
	int fd = stdin_ ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	gzFile f;
	size_t have = 0;
	int skipping = 0, progress = 0, rc = 0;
	double last = 0;

	if (fd < 0) {
		fprintf(stderr, "mxguardctl: logstat: %s: %s\n", path, strerror(errno));
		return -1;
	}
	memset(&sb, 0, sizeof(sb)); /* if fstat() fails: no type, no size */
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "mxguardctl: logstat: %s: is a directory\n", path);
		close(fd);
		return -1;
	}
	/* Only a person watching a large file wants a bar; never in a pipe. */
	progress = isatty(2) && S_ISREG(sb.st_mode) && sb.st_size >= LS_PROGRESS_MIN;
	f = gzdopen(fd, "rb");
	if (f == NULL) {
		fprintf(stderr, "mxguardctl: logstat: %s: out of memory\n", path);
		close(fd);
		return -1;
	}
	gzbuffer(f, 256 * 1024);
	st->files++;
	for (;;) {
		int n = gzread(f, buf + have, (unsigned)(LS_BUF - have));
		int zerr;
		const char *msg = gzerror(f, &zerr);

		if (n < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
			fprintf(stderr, "mxguardctl: logstat: %s: %s\n", path,
				zerr == Z_ERRNO ? strerror(errno) : msg);
			rc = -1;
			break;
		}
		if (n == 0) {
			if (have > 0 && !skipping)
				lsparse_line(st, buf, have); /* the last line had no newline */
			lsparse_flush(st);
			break;
		}
		have += (size_t)n;
		char *p = buf, *e = buf + have, *nl;

		while ((nl = memchr(p, '\n', (size_t)(e - p))) != NULL) {
			if (!skipping)
				lsparse_line(st, p, (size_t)(nl - p));
			skipping = 0;
			p = nl + 1;
		}
		lsparse_flush(st); /* before the buffer moves under the records */
		have = (size_t)(e - p);
		if (have == LS_BUF) {
			/* A line longer than the buffer is no log line: drop it. */
			if (!skipping) {
				st->lines++;
				st->unparseable++;
			}
			skipping = 1;
			have = 0;
		} else if (have > 0 && p != buf) {
			memmove(buf, p, have);
		}
		if (st->oom) {
			fprintf(stderr, "mxguardctl: logstat: out of memory\n");
			rc = -1;
			break;
		}
		if (progress && ls_now() - last >= 0.25) {
			last = ls_now();
			fprintf(stderr, "\rlogstat: %s %3d%%", path,
				(int)(100.0 * (double)gzoffset(f) / (double)sb.st_size));
		}
	}
	if (progress)
		fprintf(stderr, "\r\033[K");
	gzclose(f);
	return rc;
}

/* ---- command ---------------------------------------------------------- */

/*
 * ls_check - what the report cannot say itself. Lines were read and none
 * parsed: a format logstat does not know, which must not pass for a quiet
 * day (-1, after a message). Timestamps in whole seconds: buckets under a
 * second are noise (a warning, the report goes on).
 */
static int ls_check(const struct ls_state *st)
{
	if (st->lines > 0 && st->unparseable == st->lines) {
		char esc[600];

		fprintf(stderr,
			"mxguardctl: logstat: none of the %lu lines read has a timestamp, host"
			" and tag logstat knows; the first: \"%s\"\n",
			st->lines, log_escape(esc, sizeof(esc), st->first_bad, st->first_bad_len));
		return -1;
	}
	if (st->ts_fine == 0 && st->ts_coarse > 0 && st->o->nedge > 0 && st->o->edge[0] < LS_USEC)
		fprintf(stderr,
			"mxguardctl: logstat: warning: the timestamps have a resolution of 1"
			" second: durations and the buckets under 1s are not meaningful (use"
			" \"journalctl -o short-iso-precise\" or RFC 3339 stamps"
			" with microseconds)\n");
	if (st->o->service != NULL && st->smtpd == 0)
		fprintf(stderr,
			"mxguardctl: logstat: warning: no smtpd line of service \"%s\""
			" (%lu of other services)\n",
			st->o->service, st->other_service);
	return 0;
}

/* ls_buckets - parse "1,5,10,60" (seconds, ascending) into o. */
static int ls_buckets(struct ls_opts *o, const char *s)
{
	o->nedge = 0;
	for (;;) {
		char *end;
		double v;

		errno = 0;
		v = strtod(s, &end);
		if (errno != 0 || end == s || !(v > 0) || v > 1e9 || o->nedge == LS_MAX_BUCKETS)
			return -1;
		o->edge[o->nedge] = (int64_t)(v * LS_USEC + 0.5);
		if (o->nedge > 0 && o->edge[o->nedge] <= o->edge[o->nedge - 1])
			return -1;
		o->nedge++;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -1;
		s = end + 1;
	}
}

int logstat_main(int argc, char **argv)
{
	struct ls_opts o = {.nedge = 0};
	struct ls_state st;
	struct rules *rules;
	char err[256], *buf;
	const char *unit = NULL, *jdir = NULL;
	int journal = 0;
	time_t now = time(NULL);
	struct tm tm;
	int i, rc = 0;

	localtime_r(&now, &tm);
	o.year = tm.tm_year + 1900;
	lsparse_default_buckets(&o);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--csv") == 0) {
			o.csv = 1;
		} else if (strcmp(a, "--json") == 0) {
			o.json = 1;
		} else if (strcmp(a, "--journal") == 0) {
			journal = 1;
		} else if ((strcmp(a, "-u") == 0 || strcmp(a, "--unit") == 0) && i + 1 < argc) {
			unit = argv[++i];
		} else if ((strcmp(a, "-D") == 0 || strcmp(a, "--directory") == 0) &&
			   i + 1 < argc) {
			jdir = argv[++i];
		} else if (strcmp(a, "--service") == 0 && i + 1 < argc) {
			o.service = argv[++i];
		} else if (strcmp(a, "--svg") == 0 && i + 1 < argc) {
			o.svg = argv[++i];
		} else if (strcmp(a, "--buckets") == 0 && i + 1 < argc) {
			if (ls_buckets(&o, argv[++i]) < 0) {
				fprintf(stderr, "mxguardctl: logstat: --buckets: want ascending "
						"seconds, e.g. 1,5,10,60\n");
				return 2;
			}
		} else if (strcmp(a, "--year") == 0 && i + 1 < argc) {
			char *end;
			long y = strtol(argv[++i], &end, 10);

			if (*end != '\0' || y < 1970 || y > 9999) {
				ls_usage();
				return 2;
			}
			o.year = (int)y;
		} else {
			ls_usage();
			return 2;
		}
	}
	/* Files or the journal: one input. -u and -D only with the journal. */
	if ((journal ? i < argc : i >= argc) || (!journal && (unit || jdir)) || (o.csv && o.json)) {
		ls_usage();
		return 2;
	}
	/* No lists: only the built-in S25R rules are wanted. */
	rules = rules_load(NULL, 0, err, sizeof(err));
	buf = malloc(LS_BUF);
	if (rules == NULL || buf == NULL) {
		fprintf(stderr, "mxguardctl: logstat: %s\n", rules ? "out of memory" : err);
		free(buf);
		rules_free(&rules);
		return 1;
	}
	lsparse_init(&st, &o, rules);
	if (journal) {
		if (lsjournal_read(&st, jdir, unit, buf, LS_BUF, err, sizeof(err)) < 0) {
			fprintf(stderr, "mxguardctl: logstat: %s\n", err);
			rc = 1;
		} else if (st.lines == 0) {
			fprintf(stderr, "mxguardctl: logstat: no Postfix entries in the journal%s%s\n",
				unit ? " for unit " : "", unit ? unit : "");
			rc = 1;
		}
	}
	for (; i < argc && rc == 0; i++)
		if (ls_file(&st, argv[i], buf) < 0)
			rc = 1;
	free(buf);
	if (rc == 0 && ls_check(&st) < 0)
		rc = 1;
	if (rc == 0) {
		/* Sessions still open lost their disconnect to the end of the log. */
		lsparse_end(&st);
		if (o.json)
			lsreport_json(&st, stdout);
		else if (o.csv)
			lsreport_csv(&st, stdout);
		else
			lsreport_text(&st, stdout);
		if (o.svg != NULL && lssvg_write(&st, o.svg) < 0)
			rc = 1;
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "mxguardctl: logstat: stdout: %s\n", strerror(errno));
			rc = 1;
		}
	}
	lsparse_free(&st);
	rules_free(&rules);
	return rc;
}
