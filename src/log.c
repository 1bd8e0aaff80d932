/*
 * log.c - diagnostics.
 *
 * One vocabulary, as in Postfix: info (what happened), warn (recoverable),
 * fatal (environment or configuration: exit), panic (impossible state:
 * abort). Lines go to stderr with an RFC 3339 timestamp, or to syslog.
 * Nothing that came from the network may reach a line unescaped: callers
 * pass such strings through log_escape() first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_ident = "mxguard";
static enum log_target log_where = LOG_TO_STDERR;

void log_init(const char *ident, enum log_target target)
{
	log_ident = ident;
	if (log_where == LOG_TO_SYSLOG && target != LOG_TO_SYSLOG)
		closelog();
	log_where = target;
	if (target == LOG_TO_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static void log_emit(int prio, const char *level, const char *fmt, va_list ap, int err)
	__attribute__((format(printf, 3, 0)));

static void log_emit(int prio, const char *level, const char *fmt, va_list ap, int err)
{
	char msg[2048];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	if (err && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
	if (log_where == LOG_TO_SYSLOG) {
		syslog(prio, "%s: %s", level, msg);
		return;
	}
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
