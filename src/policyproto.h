/*
 * policyproto.h - the Postfix SMTPD access policy delegation protocol
 * (policy.c's wire format), as pure functions: find the end of one request
 * in what a connection sent, read its name=value lines into fixed fields,
 * write an answer. No I/O, no allocation: every byte is the client's.
 */
#ifndef MXG_POLICYPROTO_H
#define MXG_POLICYPROTO_H

#include <stddef.h>

/*
 * Bounds of one request. Postfix sends about 30 attributes of which only
 * the addresses, names and the SASL/TLS fields can be long; a request of
 * 16 KiB or a line of 2 KiB is no Postfix's.
 */
#define POLICY_REQ_MAX 16384
#define POLICY_LINE_MAX 2048
#define POLICY_LINES_MAX 128
#define POLICY_ANSWER_MAX 600

enum policy_scan { POLICY_MORE, POLICY_DONE, POLICY_TOOBIG };

enum policy_parse {
	POLICY_OK,
	POLICY_BAD_LINE,   /* a line without "=", or an empty name */
	POLICY_BAD_BYTE,   /* a NUL or another control byte in a line */
	POLICY_TOO_LONG,   /* a line over POLICY_LINE_MAX, or a value over its field */
	POLICY_TOO_MANY,   /* more than POLICY_LINES_MAX lines */
	POLICY_NOT_POLICY, /* request= is missing or not smtpd_access_policy */
};

/*
 * The attributes the engine reads; the others are ignored (the protocol
 * says a server must ignore what it does not know). Every field is a
 * NUL-terminated copy of the value, "" when the request did not send it.
 */
struct policy_attrs {
	char request[32];
	char protocol_state[32];
	char client_address[64];
	char client_name[256];
	char reverse_client_name[256];
	char helo_name[256];
	char sender[512];
	char recipient[512];
	char instance[64];
	char server_address[64];
	char queue_id[64];
};

/*
 * policyproto_scan - does buf[0..len) hold one whole request (its lines,
 * then an empty line)? POLICY_DONE sets *reqlen to its length, the empty
 * line included; POLICY_MORE when it may still come; POLICY_TOOBIG when
 * POLICY_REQ_MAX bytes hold no end (there is no finding the next request's
 * start after that: the caller answers and closes). Lines end with LF; a
 * CR before it is tolerated.
 */
enum policy_scan policyproto_scan(const char *buf, size_t len, size_t *reqlen);

/*
 * policyproto_parse - read the request buf[0..len) (as policyproto_scan
 * delimited it; the final empty line may be included) into *a. An unknown
 * attribute is skipped; a repeated one keeps its last value. Returns
 * POLICY_OK, or the first problem with *a partly filled.
 */
enum policy_parse policyproto_parse(const char *buf, size_t len, struct policy_attrs *a);

/* policyproto_error - a word for a parse result, for the log. */
const char *policyproto_error(enum policy_parse rc);

/*
 * policyproto_answer - "action=ACTION[ TEXT]\n\n" into out (outsz at least
 * POLICY_ANSWER_MAX). TEXT (may be NULL or "") is cut at its first CR or
 * LF, its other control bytes made spaces, and shortened to fit: a list's
 * reply or a configured text can never end the answer early nor add a
 * line. Returns the length written.
 */
size_t policyproto_answer(char *out, size_t outsz, const char *action, const char *text);

#endif
