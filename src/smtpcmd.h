/*
 * smtpcmd.h - splitting a client's byte stream into SMTP command lines and
 * parsing one command line. Pure functions: no I/O, no allocation.
 */
#ifndef MXG_SMTPCMD_H
#define MXG_SMTPCMD_H

#include <stddef.h>

/*
 * Line limits, no stricter than the MTA behind: RFC 5321 says 512 octets,
 * but RFC 3461 (DSN) adds up to 100 to MAIL and 500 to RCPT, SMTPUTF8
 * addresses are longer, and Postfix accepts 2048 (line_length_limit). An
 * AUTH line carries an initial response of up to 12288 octets (RFC 4954).
 * Both include the line end.
 */
#define SMTP_LINE_MAX 2048
#define SMTP_AUTH_LINE_MAX 12288

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
 * the caller discards input up to the next LF. The limit is SMTP_LINE_MAX,
 * or SMTP_AUTH_LINE_MAX for a line that starts with "AUTH ".
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

/*
 * smtpcmd_pipe_group - RFC 2920 3.1: may this verb appear anywhere in a
 * pipelined group (RSET, MAIL, RCPT: returns 1), only last in one (EHLO,
 * HELO, DATA, VRFY, EXPN, NOOP, QUIT: returns 2), or not be pipelined at
 * all (STARTTLS, AUTH, BDAT, unknown: returns 0)?
 */
int smtpcmd_pipe_group(enum smtp_verb verb);

/* What a held client pipelined so far (smtpcmd_pipe_check's state). */
struct smtpcmd_pipe {
	size_t scanned;	 /* bytes of complete, checked lines */
	unsigned end : 1;    /* a last-in-group command came: nothing may follow */
	unsigned opaque : 1; /* BDAT: its data follows, not checked further */
};

/*
 * smtpcmd_pipe_check - check buf[p->scanned..len), what a held client has
 * pipelined, against RFC 2920: MAIL, RCPT and RSET anywhere, then at most
 * one command that ends a group, then nothing until the replies (bytes
 * after DATA are message text before 354). BDAT carries data of its own:
 * what follows it is not checked. p starts zeroed and is carried across
 * calls as buf grows (checking in pieces gives what checking at once
 * gives). Returns 0 (legal so far; a partial line may wait), or -1 (the
 * client broke the protocol).
 */
int smtpcmd_pipe_check(const char *buf, size_t len, struct smtpcmd_pipe *p);

#endif
