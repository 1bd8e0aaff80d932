/*
 * smtpcmd.h - splitting a client's byte stream into SMTP command lines and
 * parsing one command line. Pure functions: no I/O, no allocation.
 */
#ifndef MXG_SMTPCMD_H
#define MXG_SMTPCMD_H

#include <stddef.h>

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SMTP_LINE_MAX 512

enum smtpline {
	SMTPLINE_MORE,	 /* no line end yet and still within the limit */
	SMTPLINE_OK,	 /* a CRLF-terminated line */
	SMTPLINE_BARE_LF, /* a line ended by LF alone */
	SMTPLINE_TOO_LONG /* limit reached without a line end */
};

/*
 * smtpcmd_scan - look for the first line in buf[0..len). On SMTPLINE_OK and
 * SMTPLINE_BARE_LF, *linelen is the length without the line end and
 * *consumed the length with it. On SMTPLINE_TOO_LONG nothing is consumed:
 * the caller discards input up to the next LF.
 */
enum smtpline smtpcmd_scan(const char *buf, size_t len, size_t *linelen, size_t *consumed);

enum smtp_verb {
	SMTP_UNKNOWN,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_HELP,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_STARTTLS,
	SMTP_AUTH,
};

struct smtpcmd {
	enum smtp_verb verb;
	const char *arg; /* points into the line; arguments after the verb */
	size_t arglen;
};

enum smtpcmd_status {
	SMTPCMD_OK,
	SMTPCMD_NUL,	  /* a NUL byte in the line */
	SMTPCMD_UNKNOWN, /* not a command mxguard knows */
	SMTPCMD_SYNTAX	  /* known verb, bad arguments: see smtpcmd_usage() */
};

/* smtpcmd_parse - parse one line (without line end) into cmd. */
enum smtpcmd_status smtpcmd_parse(const char *line, size_t len, struct smtpcmd *cmd);

/* smtpcmd_usage - the syntax hint for a verb ("MAIL FROM:<address>"). */
const char *smtpcmd_usage(enum smtp_verb verb);

/* smtpcmd_name - the verb as text ("MAIL"); "unknown" for SMTP_UNKNOWN. */
const char *smtpcmd_name(enum smtp_verb verb);

#endif
