/*
 * test_policyproto.c - the policy protocol parser (policyproto.c),
 * table-driven: where a request ends, what it holds, what is refused,
 * and that an answer is always one line and the empty one.
 */
#include <string.h>

#include "check.h"
#include "policyproto.h"

#define REQ "request=smtpd_access_policy\n"

static const struct {
	const char *in;
	enum policy_scan want;
	size_t reqlen;
} scans[] = {
    {REQ "protocol_state=RCPT\n\n", POLICY_DONE, sizeof(REQ) - 1 + 20 + 1},
    {REQ "protocol_state=RCPT\n", POLICY_MORE, 0},
    {REQ "protocol_state=RCPT\r\n\r\n", POLICY_DONE, sizeof(REQ) - 1 + 21 + 2},
    {"\n", POLICY_DONE, 1},
    {"", POLICY_MORE, 0},
    /* Two requests: the first one only. */
    {REQ "\n" REQ "\n", POLICY_DONE, sizeof(REQ) - 1 + 1},
};

static const struct {
	const char *in;
	enum policy_parse want;
	const char *state, *client, *name, *helo, *sender, *rcpt;
} parses[] = {
    {REQ "protocol_state=RCPT\nclient_address=192.0.2.1\nclient_name=mx.example\n"
	 "helo_name=mx.example\nsender=a@b.example\nrecipient=c@d.example\nfoo=bar\n\n",
     POLICY_OK, "RCPT", "192.0.2.1", "mx.example", "mx.example", "a@b.example", "c@d.example"},
    /* Unknown attributes are ignored, repeated ones keep the last value. */
    {REQ "x_unknown=1\nsender=a@x\nsender=b@x\n\n", POLICY_OK, "", "", "", "", "b@x", ""},
    /* A value may hold "=" and spaces (ccert_subject). */
    {REQ "helo_name=a=b c\n\n", POLICY_OK, "", "", "", "a=b c", "", ""},
    /* The null sender. */
    {REQ "sender=\n\n", POLICY_OK, "", "", "", "", "", ""},
    {REQ "no equals sign\n\n", POLICY_BAD_LINE},
    {REQ "=value\n\n", POLICY_BAD_LINE},
    {REQ "helo_name=a\tb\n\n", POLICY_BAD_BYTE},
    {"request=smtpd_access_policy\nhelo_name=a\0b\n\n", POLICY_BAD_BYTE},
    {"request=other\n\n", POLICY_NOT_POLICY},
    {"protocol_state=RCPT\n\n", POLICY_NOT_POLICY},
};

int main(void)
{
	struct policy_attrs a;
	char big[POLICY_REQ_MAX + 64], out[POLICY_ANSWER_MAX];
	size_t reqlen, n;

	for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
		reqlen = 0;
		CHECK(policyproto_scan(scans[i].in, strlen(scans[i].in), &reqlen) == scans[i].want,
		      "scan %zu", i);
		CHECK(scans[i].want != POLICY_DONE || reqlen == scans[i].reqlen,
		      "scan %zu: reqlen %zu, want %zu", i, reqlen, scans[i].reqlen);
	}
	for (size_t i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
		/* Row 7 holds a NUL: its length is counted to the "\n\n". */
		size_t len = i == 7 ? sizeof(REQ) - 1 + 14 : strlen(parses[i].in);
		enum policy_parse rc = policyproto_parse(parses[i].in, len, &a);

		CHECK(rc == parses[i].want, "parse %zu: %s", i, policyproto_error(rc));
		if (i == 7) {
			CHECK(rc == POLICY_BAD_BYTE, "parse 7: a NUL is a control byte");
			continue;
		}
		if (rc != POLICY_OK || parses[i].want != POLICY_OK)
			continue;
		CHECK(strcmp(a.protocol_state, parses[i].state) == 0, "parse %zu: state", i);
		CHECK(strcmp(a.client_address, parses[i].client) == 0, "parse %zu: client", i);
		CHECK(strcmp(a.client_name, parses[i].name) == 0, "parse %zu: name", i);
		CHECK(strcmp(a.helo_name, parses[i].helo) == 0, "parse %zu: helo", i);
		CHECK(strcmp(a.sender, parses[i].sender) == 0, "parse %zu: sender", i);
		CHECK(strcmp(a.recipient, parses[i].rcpt) == 0, "parse %zu: rcpt", i);
	}

	/* Bounds: a request without its end, a long line, a value over its field. */
	memset(big, 'a', sizeof(big));
	CHECK(policyproto_scan(big, POLICY_REQ_MAX, &reqlen) == POLICY_TOOBIG, "toobig");
	CHECK(policyproto_scan(big, POLICY_REQ_MAX - 1, &reqlen) == POLICY_MORE, "just under");
	n = (size_t)snprintf(big, sizeof(big), REQ "x_long=");
	memset(big + n, 'b', POLICY_LINE_MAX);
	memcpy(big + n + POLICY_LINE_MAX, "\n\n", 2);
	CHECK(policyproto_parse(big, n + POLICY_LINE_MAX + 2, &a) == POLICY_TOO_LONG, "long line");
	n = (size_t)snprintf(big, sizeof(big), REQ "helo_name=");
	memset(big + n, 'c', 300);
	memcpy(big + n + 300, "\n\n", 2);
	CHECK(policyproto_parse(big, n + 302, &a) == POLICY_TOO_LONG, "value over its field");
	n = 0;
	for (int i = 0; i <= POLICY_LINES_MAX; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "x=%d\n", i);
	CHECK(policyproto_parse(big, n, &a) == POLICY_TOO_MANY, "too many lines");

	/* Answers: one line, then the empty one, whatever the text holds. */
	n = policyproto_answer(out, sizeof(out), "DUNNO", NULL);
	CHECK(n == 14 && strcmp(out, "action=DUNNO\n\n") == 0, "dunno: %s", out);
	n = policyproto_answer(out, sizeof(out), "DEFER_IF_PERMIT", "Greylisted\r\naction=OK");
	CHECK(strcmp(out, "action=DEFER_IF_PERMIT Greylisted\n\n") == 0, "cut at CR: %s", out);
	n = policyproto_answer(out, sizeof(out), "550 5.7.1", "a\tb\x01");
	CHECK(strcmp(out, "action=550 5.7.1 a b \n\n") == 0, "control bytes: %s", out);
	memset(big, 'x', 1000);
	big[1000] = '\0';
	n = policyproto_answer(out, sizeof(out), "PREPEND", big);
	CHECK(n == sizeof(out) - 1 && out[n - 1] == '\n' && out[n - 2] == '\n' &&
		  memchr(out, '\n', n - 2) == NULL,
	      "long text cut: %zu", n);
	n = policyproto_answer(out, 8, "DEFER_IF_PERMIT", "x");
	CHECK(n == 7 && out[5] == '\n' && out[6] == '\n', "tiny buffer: %zu", n);
	return check_done("policyproto");
}
