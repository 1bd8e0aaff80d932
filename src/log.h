/*
 * log.h - diagnostics for mxguard: info, warn, fatal, panic; escaping of
 * client-supplied strings before they reach a log line; the key=value
 * fields of a line as journal fields.
 */
#ifndef MXG_LOG_H
#define MXG_LOG_H

#include <stddef.h>

/* The order is that of log_target's names in config.c. */
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_JOURNAL };

/*
 * log_init - choose where lines go; may be called again after a reload.
 * LOG_TO_STDERR goes to the journal when stderr is the journal stream
 * systemd gave the process (JOURNAL_STREAM names fd 2's device and inode);
 * LOG_TO_JOURNAL in a build without libsystemd goes to stderr (with a
 * warning). ident must stay valid.
 */
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

#define LOG_FIELD_MAX 320 /* a journal field "KEY=value" with its NUL */

/*
 * log_field_next - the next key=value word of the log line msg from *pos
 * as a journal field: "KEY=value" in out (size outsz), the key upper-cased,
 * a value in double quotes without them. A key is a lower-case word of
 * letters, digits and '_' (at most 32) right after the start or a space;
 * keys the journal reserves (MESSAGE, PRIORITY, SYSLOG_*, CODE_*, ...)
 * are skipped, a value longer than out is cut. *pos moves past the
 * word. Returns 1 with a field, 0 at the end of msg. The line was
 * escaped already (log_escape): a value cannot hold a quote or a
 * newline of a client's.
 */
int log_field_next(const char *msg, size_t *pos, char *out, size_t outsz);

#endif
