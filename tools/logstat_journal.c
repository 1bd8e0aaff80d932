/*
 * logstat_journal.c - logstat's input from the systemd journal, through
 * sd-journal (libsystemd): no journalctl pipe, and the timestamps keep the
 * journal's microseconds (a syslog file's whole seconds make sub-second
 * buckets meaningless).
 *
 * The entries are matched on SYSLOG_IDENTIFIER: the journal can list the
 * values a field takes (sd_journal_query_unique), so the Postfix ones are
 * added as matches and the journal skips everything else itself. Each
 * entry is written as a journalctl -o short-iso-precise line, in UTC, and
 * handed to the same parser as a file's lines (logstat_parse.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "logstat_journal.h"
#include "logstat_parse.h"
#include "mxg_build.h"

#if HAVE_SYSTEMD
#include <systemd/sd-journal.h>

#define LSJ_IDENT_MAX 64 /* Postfix identifiers matched (services, instances) */

/* lsjournal_field - the value of field in the current entry; "" if absent. */
static const char *lsjournal_field(sd_journal *j, const char *field, size_t *len)
{
	const void *data;
	size_t n, fl = strlen(field);

	if (sd_journal_get_data(j, field, &data, &n) < 0 || n <= fl) {
		*len = 0;
		return "";
	}
	*len = n - fl - 1; /* "FIELD=value" */
	return (const char *)data + fl + 1;
}

/* lsjournal_match - add the Postfix identifiers as matches; how many. */
static int lsjournal_match(sd_journal *j, char *err, size_t errsz)
{
	char idents[LSJ_IDENT_MAX][128];
	const void *data;
	size_t len;
	int n = 0, r;

	if ((r = sd_journal_query_unique(j, "SYSLOG_IDENTIFIER")) < 0) {
		snprintf(err, errsz, "journal: cannot list identifiers: %s", strerror(-r));
		return -1;
	}
	/* Collected first: adding matches while enumerating would restart it. */
	SD_JOURNAL_FOREACH_UNIQUE(j, data, len)
	{
		const char *v = (const char *)data + strlen("SYSLOG_IDENTIFIER=");
		size_t vl = len - strlen("SYSLOG_IDENTIFIER=");

		if (len > strlen("SYSLOG_IDENTIFIER=") && vl >= 7 && memcmp(v, "postfix", 7) == 0 &&
		    len < sizeof(idents[0]) && n < LSJ_IDENT_MAX) {
			memcpy(idents[n], data, len);
			idents[n++][len] = '\0';
		}
	}
	sd_journal_restart_unique(j);
	for (int i = 0; i < n; i++)
		if ((r = sd_journal_add_match(j, idents[i], 0)) < 0) {
			snprintf(err, errsz, "journal: %s: %s", idents[i], strerror(-r));
			return -1;
		}
	return n;
}

int lsjournal_read(struct ls_state *st, const char *dir, const char *unit, char *buf, size_t bufsz,
		   char *err, size_t errsz)
{
	sd_journal *j = NULL;
	size_t have = 0;
	int r, n;

	r = dir != NULL ? sd_journal_open_directory(&j, dir, 0)
			: sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0) {
		snprintf(err, errsz, "journal%s%s: cannot open: %s", dir ? " " : "", dir ? dir : "",
			 strerror(-r));
		return -1;
	}
	if ((n = lsjournal_match(j, err, errsz)) < 0) {
		sd_journal_close(j);
		return -1;
	}
	if (n == 0) {
		/* Nothing of Postfix's: say so rather than read the whole journal. */
		sd_journal_close(j);
		st->files++;
		return 0;
	}
	if (unit != NULL) {
		char m[300];

		/* Fields of different names are ANDed with the identifiers. */
		snprintf(m, sizeof(m), "_SYSTEMD_UNIT=%s", unit);
		if ((r = sd_journal_add_conjunction(j)) < 0 ||
		    (r = sd_journal_add_match(j, m, 0)) < 0) {
			snprintf(err, errsz, "journal: -u %.200s: %s", unit, strerror(-r));
			sd_journal_close(j);
			return -1;
		}
	}
	st->files++;
	SD_JOURNAL_FOREACH(j)
	{
		uint64_t usec;
		size_t hl, il, pl, ml;
		const char *host = lsjournal_field(j, "_HOSTNAME", &hl);
		const char *ident = lsjournal_field(j, "SYSLOG_IDENTIFIER", &il);
		const char *pid = lsjournal_field(j, "SYSLOG_PID", &pl);
		const char *msg = lsjournal_field(j, "MESSAGE", &ml);
		struct tm tm;
		time_t t;
		int len;

		if (sd_journal_get_realtime_usec(j, &usec) < 0)
			continue;
		if (pl == 0)
			pid = lsjournal_field(j, "_PID", &pl);
		t = (time_t)(usec / 1000000);
		gmtime_r(&t, &tm);
		/* Cut what could not be a log line's part: the parser bounds it anyway. */
		if (hl > 255)
			hl = 255;
		if (il > 255)
			il = 255;
		if (pl > 20)
			pl = 20;
		if (ml > 8192)
			ml = 8192;
		if (have + ml + 600 > bufsz) {
			lsparse_flush(st); /* before the buffer moves under the records */
			have = 0;
		}
		len =
		    snprintf(buf + have, bufsz - have,
			     "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRIu64 "+00:00 %.*s %.*s[%.*s]: ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec, usec % 1000000, (int)(hl ? hl : 9), hl ? host : "localhost",
			     (int)il, ident, (int)pl, pid);
		if (len < 0 || (size_t)len + ml >= bufsz - have)
			continue;
		/* A message is one line: a newline inside it would split it. */
		for (size_t i = 0; i < ml; i++)
			buf[have + (size_t)len + i] = msg[i] == '\n' ? ' ' : msg[i];
		lsparse_line(st, buf + have, (size_t)len + ml);
		have += (size_t)len + ml;
	}
	lsparse_flush(st);
	sd_journal_close(j);
	return 0;
}

#else

int lsjournal_read(struct ls_state *st, const char *dir, const char *unit, char *buf, size_t bufsz,
		   char *err, size_t errsz)
{
	(void)st, (void)dir, (void)unit, (void)buf, (void)bufsz;
	snprintf(err, errsz,
		 "this mxguardctl was built without libsystemd: read a file, e.g. "
		 "journalctl -o short-iso-precise -u postfix@- | mxguardctl logstat -");
	return -1;
}

#endif
