/*
 * test_smtpcmd.c - command line splitting and parsing, table-driven.
 */
#include <string.h>

#include "check.h"
#include "smtpcmd.h"

static const struct {
	const char *in;
	enum smtpline want;
	size_t linelen, consumed;
} scans[] = {
	{"EHLO a\r\n", SMTPLINE_OK, 6, 8},
	{"EHLO a\n", SMTPLINE_BARE_LF, 6, 7},
	{"EHLO a", SMTPLINE_MORE, 0, 0},
	{"\r\n", SMTPLINE_OK, 0, 2},
	{"\n", SMTPLINE_BARE_LF, 0, 1},
	{"NOOP\r\nQUIT\r\n", SMTPLINE_OK, 4, 6},
	{"A\rB\r\n", SMTPLINE_OK, 3, 5},
};

static const struct {
	const char *in;
	enum smtpcmd_status want;
	enum smtp_verb verb;
	const char *arg;
} parses[] = {
	{"EHLO client.example", SMTPCMD_OK, SMTP_EHLO, "client.example"},
	{"ehlo   client.example  ", SMTPCMD_OK, SMTP_EHLO, "client.example"},
	{"HELO x", SMTPCMD_OK, SMTP_HELO, "x"},
	{"EHLO", SMTPCMD_SYNTAX, SMTP_EHLO, ""},
	{"MAIL FROM:<a@b.example>", SMTPCMD_OK, SMTP_MAIL, "FROM:<a@b.example>"},
	{"mail from: <a@b.example> SIZE=100 BODY=8BITMIME", SMTPCMD_OK, SMTP_MAIL,
	 "from: <a@b.example> SIZE=100 BODY=8BITMIME"},
	{"MAIL FROM:<>", SMTPCMD_OK, SMTP_MAIL, "FROM:<>"},
	/* Postfix takes a bare address by default (strict_rfc821_envelopes = no). */
	{"MAIL FROM:a@b", SMTPCMD_OK, SMTP_MAIL, "FROM:a@b"},
	{"MAIL FROM: a@b SIZE=10", SMTPCMD_OK, SMTP_MAIL, "FROM: a@b SIZE=10"},
	{"RCPT TO:x@y", SMTPCMD_OK, SMTP_RCPT, "TO:x@y"},
	{"MAIL FROM:", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
	{"MAIL FROM:  ", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
	{"MAIL FROM:>a", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
	{"MAIL TO:<a@b>", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
	{"MAIL FROM:<a@b", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
	{"MAIL", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
	{"RCPT TO:<postmaster>", SMTPCMD_OK, SMTP_RCPT, "TO:<postmaster>"},
	{"RCPT FROM:<x@y>", SMTPCMD_SYNTAX, SMTP_RCPT, NULL},
	{"DATA", SMTPCMD_OK, SMTP_DATA, ""},
	{"DATA now", SMTPCMD_SYNTAX, SMTP_DATA, NULL},
	{"RSET", SMTPCMD_OK, SMTP_RSET, ""},
	{"NOOP anything", SMTPCMD_OK, SMTP_NOOP, "anything"},
	{"QUIT", SMTPCMD_OK, SMTP_QUIT, ""},
	{"STARTTLS", SMTPCMD_OK, SMTP_STARTTLS, ""},
	{"STARTTLS x", SMTPCMD_SYNTAX, SMTP_STARTTLS, NULL},
	{"AUTH PLAIN AGFAAGI=", SMTPCMD_OK, SMTP_AUTH, "PLAIN AGFAAGI="},
	{"AUTH", SMTPCMD_SYNTAX, SMTP_AUTH, NULL},
	{"XYZZY", SMTPCMD_UNKNOWN, SMTP_UNKNOWN, NULL},
	{"", SMTPCMD_UNKNOWN, SMTP_UNKNOWN, NULL},
	{"EHLOX a", SMTPCMD_UNKNOWN, SMTP_UNKNOWN, NULL},
	{"GET / HTTP/1.0", SMTPCMD_UNKNOWN, SMTP_UNKNOWN, NULL},
};

int main(void)
{
	static char big[SMTP_AUTH_LINE_MAX + 10];
	size_t ll = 0, used = 0;

	for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
		enum smtpline got = smtpcmd_scan(scans[i].in, strlen(scans[i].in), &ll, &used);

		CHECK(got == scans[i].want, "scan %zu: got %d", i, got);
		if (got == SMTPLINE_OK || got == SMTPLINE_BARE_LF) {
			CHECK(ll == scans[i].linelen, "scan %zu: linelen %zu", i, ll);
			CHECK(used == scans[i].consumed, "scan %zu: consumed %zu", i, used);
		}
	}
	/* The limit: 2048 bytes with CRLF pass (Postfix's), 2049 do not. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 2046, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 2048, &ll, &used) == SMTPLINE_OK && ll == 2046, "2048 bytes");
	memset(big, 'a', sizeof(big));
	memcpy(big + 2047, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 2049, &ll, &used) == SMTPLINE_TOO_LONG, "2049 bytes");
	CHECK(smtpcmd_scan(big, 2047, &ll, &used) == SMTPLINE_MORE, "2047 bytes, no LF yet");
	/* A DSN RCPT line of 1,000 bytes (RFC 3461) is a line. */
	memcpy(big, "RCPT TO:<a@b> ORCPT=rfc822;", 27);
	memcpy(big + 998, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 1000, &ll, &used) == SMTPLINE_OK && ll == 998, "DSN line");
	/* AUTH: an initial response up to 12288 bytes (RFC 4954). */
	memset(big, 'A', sizeof(big));
	memcpy(big, "AUTH PLAIN ", 11);
	memcpy(big + 12286, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 12288, &ll, &used) == SMTPLINE_OK && ll == 12286, "AUTH 12288");
	memset(big + 12286, 'A', 2);
	memcpy(big + 12287, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 12289, &ll, &used) == SMTPLINE_TOO_LONG, "AUTH 12289");
	memcpy(big, "NOOP ", 5);
	CHECK(smtpcmd_scan(big, 12289, &ll, &used) == SMTPLINE_TOO_LONG, "only AUTH");
	{
		static const struct {
			const char *in;
			int want;
		} pipes[] = {
			{"RCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 0},
			{"MAIL FROM:<x@y>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c", 0}, /* partial line */
			{"RSET\r\nMAIL FROM:<x@y>\r\nRCPT TO:<a@b>\r\nQUIT\r\n", 0},
			{"DATA\r\nSubject: hi\r\n", -1},	/* text before 354 */
			{"DATA\r\nR", -1},
			{"STARTTLS\r\n", -1},
			{"XCLIENT ADDR=192.0.2.1\r\n", -1},
			{"GET / HTTP/1.0\r\n", -1},
			{"RCPT TO:<a@b>\r\nBDAT 5 LAST\r\nhello", 0},
		};

		for (size_t i = 0; i < sizeof(pipes) / sizeof(pipes[0]); i++) {
			struct smtpcmd_pipe p = {0, 0, 0};
			size_t len = strlen(pipes[i].in);
			int got = smtpcmd_pipe_check(pipes[i].in, len, &p);

			CHECK(got == pipes[i].want, "pipe %zu: got %d", i, got);
			/* The same bytes one at a time give the same answer. */
			struct smtpcmd_pipe q = {0, 0, 0};
			int inc = 0;

			for (size_t n = 1; n <= len && inc == 0; n++)
				inc = smtpcmd_pipe_check(pipes[i].in, n, &q);
			CHECK(inc == pipes[i].want, "pipe %zu byte by byte: got %d", i, inc);
		}
	}
	CHECK(smtpcmd_pipe_group(SMTP_RCPT) == 1 && smtpcmd_pipe_group(SMTP_DATA) == 2 &&
		      smtpcmd_pipe_group(SMTP_STARTTLS) == 0,
	      "RFC 2920 groups");

	for (size_t i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
		struct smtpcmd cmd;
		enum smtpcmd_status st = smtpcmd_parse(parses[i].in, strlen(parses[i].in), &cmd);

		CHECK(st == parses[i].want, "parse '%s': status %d", parses[i].in, st);
		if (parses[i].want != SMTPCMD_UNKNOWN)
			CHECK(cmd.verb == parses[i].verb, "parse '%s': verb %d", parses[i].in,
			      cmd.verb);
		if (parses[i].arg != NULL)
			CHECK(cmd.arglen == strlen(parses[i].arg) &&
				      memcmp(cmd.arg, parses[i].arg, cmd.arglen) == 0,
			      "parse '%s': arg '%.*s'", parses[i].in, (int)cmd.arglen, cmd.arg);
	}
	{
		struct smtpcmd cmd;
		const char nul[] = "EHLO a\0b";

		CHECK(smtpcmd_parse(nul, sizeof(nul) - 1, &cmd) == SMTPCMD_NUL, "NUL byte");
	}
	CHECK(strcmp(smtpcmd_usage(SMTP_MAIL), "MAIL FROM:<address>") == 0, "usage");
	return check_done("smtpcmd");
}
