/*
 * reply.h - SMTP replies from the backend: finding where one (possibly
 * multi-line) reply ends, and turning the backend's EHLO reply into the
 * capability list mxguard offers its own clients.
 */
#ifndef MXG_REPLY_H
#define MXG_REPLY_H

#include <stddef.h>

/* Longest reply line accepted from a backend (RFC 5321 says 512). */
#define REPLY_LINE_MAX 2048
/* Most lines accepted in one reply: bounds a hostile or broken backend. */
#define REPLY_LINES_MAX 64

struct reply {
	int code;	 /* e.g. 250 */
	size_t len;	 /* bytes of the whole reply, line ends included */
	int nlines;
};

enum reply_status { REPLY_MORE, REPLY_DONE, REPLY_BAD };

/*
 * reply_parse - is there one complete reply at the start of buf[0..len)?
 * REPLY_DONE fills *r. REPLY_BAD: a line that does not start with three
 * digits and ' ' or '-', codes that differ within the reply, or a line or
 * line count over the limits. Lines may end in CRLF or LF.
 */
enum reply_status reply_parse(const char *buf, size_t len, struct reply *r);

/*
 * reply_has_ext - does the EHLO reply buf[0..len) advertise keyword
 * (case-insensitive, e.g. "XCLIENT")?
 */
int reply_has_ext(const char *buf, size_t len, const char *keyword);

/*
 * reply_ehlo_caps - from the backend's EHLO reply, keep the extensions that
 * survive mxguard's hand-off (PIPELINING, SIZE, STARTTLS, AUTH, ...; never
 * XCLIENT or XFORWARD) and write them into out as "KEYWORD params\n" lines
 * (NUL-terminated, cut at a line boundary when out is full). Returns the
 * number of extensions kept.
 */
int reply_ehlo_caps(const char *buf, size_t len, char *out, size_t outsz);

#endif
