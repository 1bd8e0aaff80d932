/*
 * log.h - diagnostics for mxguard: info, warn, fatal, panic; escaping of
 * client-supplied strings before they reach a log line.
 */
#ifndef MXG_LOG_H
#define MXG_LOG_H

#include <stddef.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };

/* log_init - choose where lines go; may be called again after a reload. */
void log_init(const char *ident, enum log_target target);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn_errno - like log_warn, with ": strerror(errno)" appended. */
void log_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_fatal - configuration or environment error: log and exit(1). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* log_panic - impossible state: log and abort() for a core dump. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * log_escape - copy at most inlen bytes of untrusted data into out (size
 * outsz, always NUL-terminated) with every byte outside printable ASCII, and
 * the backslash and double quote, written as \xNN. Output longer than outsz
 * is cut and ends in "...". Returns out, so it can be used inside a call.
 */
char *log_escape(char *out, size_t outsz, const char *in, size_t inlen);

#endif
