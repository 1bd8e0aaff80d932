/*
 * policyproto.c - the Postfix policy delegation protocol, parsed and
 * written without I/O (policyproto.h).
 *
 * A request is "name=value" lines ending with an empty line (Postfix's
 * SMTPD_POLICY_README). Everything here is bounded by the constants of
 * policyproto.h and never trusts a length it did not count: a policy
 * client is normally the local Postfix, but the socket may be reachable by
 * anything that can connect to it, and the values come from SMTP clients
 * (HELO, MAIL FROM, RCPT TO) through Postfix. The fuzz target
 * (tests/fuzz/fuzz_policy.c) drives scan, parse and answer.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "policyproto.h"

enum policy_scan policyproto_scan(const char *buf, size_t len, size_t *reqlen)
{
	size_t lim = len < POLICY_REQ_MAX ? len : POLICY_REQ_MAX;
	size_t start = 0; /* start of the current line */

	for (size_t i = 0; i < lim; i++) {
		if (buf[i] != '\n')
			continue;
		/* An empty line ("\n" or "\r\n") ends the request. */
		if (i == start || (i == start + 1 && buf[start] == '\r')) {
			*reqlen = i + 1;
			return POLICY_DONE;
		}
		start = i + 1;
	}
	return len >= POLICY_REQ_MAX ? POLICY_TOOBIG : POLICY_MORE;
}

/* The fields the engine reads, by attribute name. */
#define POLICY_FIELD(name)                                                                         \
	{                                                                                          \
#name, offsetof(struct policy_attrs, name),                                        \
		    sizeof(((struct policy_attrs *)0)->name)                                       \
	}
static const struct {
	const char *name;
	size_t off, size;
} policy_fields[] = {
    POLICY_FIELD(request),
    POLICY_FIELD(protocol_state),
    POLICY_FIELD(client_address),
    POLICY_FIELD(client_name),
    POLICY_FIELD(reverse_client_name),
    POLICY_FIELD(helo_name),
    POLICY_FIELD(sender),
    POLICY_FIELD(recipient),
    POLICY_FIELD(instance),
    POLICY_FIELD(server_address),
    POLICY_FIELD(queue_id),
};

/* policy_line - one "name=value" line (no LF) into a. */
static enum policy_parse policy_line(const char *line, size_t n, struct policy_attrs *a)
{
	const char *eq;
	size_t nlen, vlen;

	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n > POLICY_LINE_MAX)
		return POLICY_TOO_LONG;
	/* UTF-8 (SMTPUTF8 addresses) passes; control bytes have no business here. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return POLICY_BAD_BYTE;
	eq = memchr(line, '=', n);
	if (eq == NULL || eq == line)
		return POLICY_BAD_LINE;
	nlen = (size_t)(eq - line);
	vlen = n - nlen - 1;
	for (size_t i = 0; i < sizeof(policy_fields) / sizeof(policy_fields[0]); i++) {
		char *field;

		if (strlen(policy_fields[i].name) != nlen ||
		    memcmp(policy_fields[i].name, line, nlen) != 0)
			continue;
		if (vlen >= policy_fields[i].size)
			return POLICY_TOO_LONG;
		field = (char *)a + policy_fields[i].off;
		memcpy(field, eq + 1, vlen);
		field[vlen] = '\0';
		break;
	}
	return POLICY_OK;
}

enum policy_parse policyproto_parse(const char *buf, size_t len, struct policy_attrs *a)
{
	size_t start = 0;
	int lines = 0;

	memset(a, 0, sizeof(*a));
	while (start < len) {
		const char *nl = memchr(buf + start, '\n', len - start);
		size_t n = nl ? (size_t)(nl - (buf + start)) : len - start;
		enum policy_parse rc;

		/* The empty line ends it; anything after it is not this request's. */
		if (n == 0 || (n == 1 && buf[start] == '\r'))
			break;
		if (++lines > POLICY_LINES_MAX)
			return POLICY_TOO_MANY;
		if ((rc = policy_line(buf + start, n, a)) != POLICY_OK)
			return rc;
		start += n + 1;
	}
	if (strcmp(a->request, "smtpd_access_policy") != 0)
		return POLICY_NOT_POLICY;
	return POLICY_OK;
}

const char *policyproto_error(enum policy_parse rc)
{
	switch (rc) {
	case POLICY_OK:
		return "ok";
	case POLICY_BAD_LINE:
		return "line without name=value";
	case POLICY_BAD_BYTE:
		return "control byte in a line";
	case POLICY_TOO_LONG:
		return "line or value too long";
	case POLICY_TOO_MANY:
		return "too many lines";
	case POLICY_NOT_POLICY:
		return "not an smtpd_access_policy request";
	}
	return "?";
}

size_t policyproto_answer(char *out, size_t outsz, const char *action, const char *text)
{
	size_t o, tlen = 0, room;
	int n;

	if (outsz < 3)
		return 0;
	if (text != NULL)
		tlen = strcspn(text, "\r\n");
	n = snprintf(out, outsz, "action=%s", action);
	o = n < 0 ? 0 : (size_t)n >= outsz - 2 ? outsz - 3 : (size_t)n;
	/* Room for the text: a space before it, "\n\n" after it. */
	room = outsz - o - 3;
	if (tlen > 0 && room > 1) {
		if (tlen > room - 1)
			tlen = room - 1;
		out[o++] = ' ';
		for (size_t i = 0; i < tlen; i++) {
			unsigned char ch = (unsigned char)text[i];

			out[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
		}
	}
	out[o++] = '\n';
	out[o++] = '\n';
	out[o] = '\0';
	return o;
}
