/*
 * log.c - diagnostics.
 *
 * One vocabulary, as in Postfix: info (what happened), warn (recoverable),
 * fatal (environment or configuration: exit), panic (impossible state:
 * abort). Nothing that came from the network may reach a line unescaped:
 * callers pass such strings through log_escape() first.
 *
 * Where lines go (log_target):
 *   - stderr: "TIMESTAMP mxguard[PID]: LEVEL: text", the timestamp RFC 3339
 *     in UTC with milliseconds: a terminal, a test, a supervisor's file;
 *   - the journal, when stderr is the stream systemd connected to it
 *     (JOURNAL_STREAM, see systemd.exec(5)) or with log_target = journal:
 *     one entry per line through sd_journal_sendv(), with PRIORITY= of the
 *     level (so that "journalctl -p warning" finds warnings), the line's
 *     key=value words as fields (CLIENT=, VERDICT=, LISTENER=, END=...:
 *     "journalctl CLIENT=192.0.2.7") and no timestamp of our own, the
 *     journal has one. MESSAGE is the line as syslog would carry it. A
 *     build without libsystemd writes "<PRIORITY>text" to such a stream,
 *     which journald reads as the priority, still without a timestamp;
 *   - syslog, facility mail, lines as Postfix writes them: "text" for info,
 *     "warning: text", "fatal: text", "panic: text".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mxg_build.h"

#if HAVE_SYSTEMD
/* CODE_FILE= and CODE_LINE= would name log.c on every entry. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#endif

#define LOG_FIELDS_MAX 16 /* key=value fields per journal entry, at most */

/* Where lines go now: log_target, after a look at stderr. */
enum log_way { LOG_WAY_STDERR, LOG_WAY_SYSLOG, LOG_WAY_JOURNAL, LOG_WAY_STREAM };

static const char *log_ident = "mxguard";
static enum log_way log_way = LOG_WAY_STDERR;

/*
 * log_journal_stream - is fd 2 the journal stream systemd set up for us?
 * JOURNAL_STREAM is "DEVICE:INODE" of that stream; a child whose stderr
 * was redirected inherits the variable but not the stream, hence the
 * compare (systemd.exec(5)).
 */
static int log_journal_stream(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;
	int used = 0;

	if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &used) != 2 || v[used] != '\0')
		return 0;
	return fstat(2, &sb) == 0 && (unsigned long long)sb.st_dev == dev &&
	       (unsigned long long)sb.st_ino == ino;
}

void log_init(const char *ident, enum log_target target)
{
	enum log_way way = LOG_WAY_STDERR;
	int no_journal = 0;

	log_ident = ident;
	if (target == LOG_TO_SYSLOG) {
		way = LOG_WAY_SYSLOG;
	} else if (target == LOG_TO_JOURNAL || log_journal_stream()) {
		way = HAVE_SYSTEMD ? LOG_WAY_JOURNAL : LOG_WAY_STDERR;
		no_journal = !HAVE_SYSTEMD && target == LOG_TO_JOURNAL;
		if (!HAVE_SYSTEMD && log_journal_stream())
			way = LOG_WAY_STREAM;
	}
	if (log_way == LOG_WAY_SYSLOG && way != LOG_WAY_SYSLOG)
		closelog();
	log_way = way;
	if (way == LOG_WAY_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	if (no_journal)
		log_warn("log_target = journal: this mxguard was built without libsystemd;"
			 " logging to stderr");
}

/* Fields the journal or systemd give a meaning of their own. */
static int log_field_reserved(const char *key, size_t n)
{
	static const char *const exact[] = {
	    "MESSAGE",	     "MESSAGE_ID",	   "PRIORITY", "ERRNO",	    "TID", "DOCUMENTATION",
	    "INVOCATION_ID", "USER_INVOCATION_ID", "UNIT",     "USER_UNIT", NULL};
	static const char *const prefix[] = {"SYSLOG_", "CODE_", "OBJECT_", "COREDUMP", NULL};

	for (int i = 0; exact[i] != NULL; i++)
		if (strlen(exact[i]) == n && memcmp(exact[i], key, n) == 0)
			return 1;
	for (int i = 0; prefix[i] != NULL; i++)
		if (n >= strlen(prefix[i]) && memcmp(prefix[i], key, strlen(prefix[i])) == 0)
			return 1;
	return 0;
}

int log_field_next(const char *msg, size_t *pos, char *out, size_t outsz)
{
	size_t i = *pos, len = strlen(msg);

	while (i < len) {
		size_t k = i, vs, ve, next;
		int word_start = i == 0 || msg[i - 1] == ' ';

		/* The key: [a-z][a-z0-9_]* then '='. */
		while (k < len && ((msg[k] >= 'a' && msg[k] <= 'z') || msg[k] == '_' ||
				   (k > i && msg[k] >= '0' && msg[k] <= '9')))
			k++;
		int key_ok = word_start && k > i && k - i <= 32 && msg[i] >= 'a' && msg[i] <= 'z' &&
			     k < len && msg[k] == '=';

		if (!key_ok) {
			/* Not a field: on to the next word. */
			const char *sp = memchr(msg + i, ' ', len - i);

			i = sp ? (size_t)(sp - msg) + 1 : len;
			continue;
		}
		vs = k + 1;
		if (vs < len && msg[vs] == '"') {
			/* Quoted: a value that may hold spaces, quotes escaped inside. */
			const char *q = memchr(msg + vs + 1, '"', len - vs - 1);

			vs++;
			ve = q ? (size_t)(q - msg) : len;
			next = q ? ve + 1 : len;
		} else if (vs < len && msg[vs] == '<') {
			/* from=<...>, to=<...>: the address without its brackets. */
			const char *a = memchr(msg + vs + 1, '>', len - vs - 1);

			vs++;
			ve = a ? (size_t)(a - msg) : len;
			next = a ? ve + 1 : len;
		} else {
			const char *sp = memchr(msg + vs, ' ', len - vs);

			ve = sp ? (size_t)(sp - msg) : len;
			next = ve;
		}
		char key[33];
		size_t o = 0, vlen = ve - vs;

		for (size_t j = i; j < k; j++)
			key[o++] =
			    msg[j] >= 'a' && msg[j] <= 'z' ? (char)(msg[j] - 'a' + 'A') : msg[j];
		*pos = next;
		if (log_field_reserved(key, o) || outsz < o + 2) {
			i = next;
			continue;
		}
		memcpy(out, key, o);
		out[o++] = '=';
		if (vlen > outsz - o - 1)
			vlen = outsz - o - 1; /* cut: the whole line is in MESSAGE */
		memcpy(out + o, msg + vs, vlen);
		out[o + vlen] = '\0';
		return 1;
	}
	*pos = len;
	return 0;
}

/* log_stderr - today's line on stderr, one write per line. */
static void log_stderr(const char *level, const char *msg)
{
	struct timeval tv;
	struct tm tm;
	char ts[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line so that concurrent writers do not interleave. */
	fprintf(stderr, "%s.%03dZ %s[%ld]: %s: %s\n", ts, (int)(tv.tv_usec / 1000), log_ident,
		(long)getpid(), level, msg);
}

#if HAVE_SYSTEMD
/*
 * log_journal - one journal entry for the line; -1 when journald did not
 * take it (the caller then writes stderr: better a line there than none).
 */
static int log_journal(int prio, const char *text, const char *msg)
{
	char fields[LOG_FIELDS_MAX][LOG_FIELD_MAX];
	static char facility[] = "SYSLOG_FACILITY=2"; /* LOG_MAIL */
	char pri[16], ident[96], message[2200];
	struct iovec iov[4 + LOG_FIELDS_MAX];
	int n = 0;
	size_t pos = 0;

	snprintf(message, sizeof(message), "MESSAGE=%s", text);
	snprintf(pri, sizeof(pri), "PRIORITY=%d", prio);
	snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", log_ident);
	iov[n++] = (struct iovec){message, strlen(message)};
	iov[n++] = (struct iovec){pri, strlen(pri)};
	iov[n++] = (struct iovec){ident, strlen(ident)};
	iov[n++] = (struct iovec){facility, sizeof(facility) - 1};
	for (int f = 0; f < LOG_FIELDS_MAX && log_field_next(msg, &pos, fields[f], LOG_FIELD_MAX);
	     f++)
		iov[n++] = (struct iovec){fields[f], strlen(fields[f])};
	return sd_journal_sendv(iov, n) < 0 ? -1 : 0;
}
#endif

static void log_emit(int prio, const char *level, const char *fmt, va_list ap, int err)
    __attribute__((format(printf, 3, 0)));

static void log_emit(int prio, const char *level, const char *fmt, va_list ap, int err)
{
	char msg[2048], text[2100];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	if (err && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
	/* As Postfix: no level word for info, "warning: " and so on for the rest. */
	if (prio == LOG_INFO)
		snprintf(text, sizeof(text), "%s", msg);
	else
		snprintf(text, sizeof(text), "%s: %s", level, msg);
	switch (log_way) {
	case LOG_WAY_SYSLOG:
		syslog(prio, "%s", text);
		return;
	case LOG_WAY_STREAM:
		/* journald takes "<N>" at the start of a stream line as the priority. */
		fprintf(stderr, "<%d>%s\n", prio, text);
		return;
	case LOG_WAY_JOURNAL:
#if HAVE_SYSTEMD
		if (log_journal(prio, text, msg) == 0)
			return;
#endif
		break;
	case LOG_WAY_STDERR:
		break;
	}
	log_stderr(level, msg);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, "info", fmt, ap, 0);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning", fmt, ap, 0);
	va_end(ap);
}

void log_warn_errno(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning", fmt, ap, err);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "panic", fmt, ap, 0);
	va_end(ap);
	abort();
}

char *log_escape(char *out, size_t outsz, const char *in, size_t inlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		int plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"';
		size_t need = plain ? 1 : 4;

		if (o + need + 4 > outsz) {
			/* The +4 above keeps room for "..." and the NUL. */
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
