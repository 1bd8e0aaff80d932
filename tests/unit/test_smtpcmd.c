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
	{"MAIL FROM:a@b", SMTPCMD_SYNTAX, SMTP_MAIL, NULL},
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
	char big[SMTP_LINE_MAX + 10];
	size_t ll = 0, used = 0;

	for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
		enum smtpline got = smtpcmd_scan(scans[i].in, strlen(scans[i].in), &ll, &used);

		CHECK(got == scans[i].want, "scan %zu: got %d", i, got);
		if (got == SMTPLINE_OK || got == SMTPLINE_BARE_LF) {
			CHECK(ll == scans[i].linelen, "scan %zu: linelen %zu", i, ll);
			CHECK(used == scans[i].consumed, "scan %zu: consumed %zu", i, used);
		}
	}
	/* The limit: 512 bytes with CRLF pass, 513 do not. */
	memset(big, 'a', sizeof(big));
	memcpy(big + 510, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 512, &ll, &used) == SMTPLINE_OK && ll == 510, "512 bytes");
	memset(big, 'a', sizeof(big));
	memcpy(big + 511, "\r\n", 2);
	CHECK(smtpcmd_scan(big, 513, &ll, &used) == SMTPLINE_TOO_LONG, "513 bytes");
	CHECK(smtpcmd_scan(big, 511, &ll, &used) == SMTPLINE_MORE, "511 bytes, no LF yet");

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
