/*
 * test_wire.c - what mxguard sends to and reads from the backend: PROXY
 * headers, XCLIENT commands, SMTP replies, EHLO capabilities; plus address
 * parsing and log escaping; and the client's lines kept for the replay.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "conn.h"
#include "log.h"
#include "netaddr.h"
#include "proxy.h"
#include "reply.h"
#include "xclient.h"

static struct netaddr addr(const char *s)
{
	struct netaddr na;
	char err[200];

	if (netaddr_parse(s, &na, err, sizeof(err)) < 0)
		fprintf(stderr, "bad test address %s: %s\n", s, err);
	return na;
}

#define SA(na) ((const struct sockaddr *)&(na).ss)

static void test_netaddr(void)
{
	struct netaddr na;
	char err[200], buf[NETADDR_STRLEN];

	CHECK(netaddr_parse("127.0.0.1:2525", &na, err, sizeof(err)) == 0, "%s", err);
	CHECK(strcmp(netaddr_format(SA(na), buf, sizeof(buf)), "127.0.0.1:2525") == 0, "%s", buf);
	CHECK(netaddr_parse("[::1]:25", &na, err, sizeof(err)) == 0, "%s", err);
	CHECK(strcmp(netaddr_format(SA(na), buf, sizeof(buf)), "[::1]:25") == 0, "%s", buf);
	CHECK(netaddr_parse("::1:25", &na, err, sizeof(err)) < 0, "IPv6 without brackets");
	CHECK(netaddr_parse("127.0.0.1", &na, err, sizeof(err)) < 0, "no port");
	CHECK(netaddr_parse("127.0.0.1:0", &na, err, sizeof(err)) < 0, "port 0");
	CHECK(netaddr_parse("127.0.0.1:65536", &na, err, sizeof(err)) < 0, "port too big");
	CHECK(netaddr_parse("localhost:25", &na, err, sizeof(err)) < 0, "names are refused");
	CHECK(netaddr_parse("[::1:25", &na, err, sizeof(err)) < 0, "unclosed bracket");
}

static void test_proxy(void)
{
	struct netaddr c4 = addr("127.1.2.3:40000"), l4 = addr("127.0.0.1:2525");
	struct netaddr c6 = addr("[2001:db8::1]:40000"), l6 = addr("[2001:db8::2]:25");
	char buf[PROXY_HDR_MAX];
	struct proxy_info pi;
	int n;

	n = proxy_v1(buf, sizeof(buf), SA(c4), SA(l4));
	CHECK(n > 0 && strncmp(buf, "PROXY TCP4 127.1.2.3 127.0.0.1 40000 2525\r\n", (size_t)n) == 0,
	      "v1: %.*s", n, buf);
	CHECK(proxy_parse((unsigned char *)buf, (size_t)n, &pi) == PROXY_DONE && pi.version == 1 &&
		      pi.len == (size_t)n,
	      "v1 parses back");
	CHECK(memcmp(&((struct sockaddr_in *)&pi.src)->sin_addr,
		     &((struct sockaddr_in *)&c4.ss)->sin_addr, 4) == 0,
	      "v1 source address");
	n = proxy_v1(buf, sizeof(buf), SA(c6), SA(l6));
	CHECK(n > 0 && strncmp(buf, "PROXY TCP6 2001:db8::1 2001:db8::2 40000 25\r\n", (size_t)n) == 0,
	      "v1 v6: %.*s", n, buf);

	n = proxy_v2(buf, sizeof(buf), SA(c4), SA(l4));
	CHECK(n == 28, "v2 TCP4 length %d", n);
	CHECK((unsigned char)buf[12] == 0x21 && buf[13] == 0x11, "v2 command/family");
	CHECK(proxy_parse((unsigned char *)buf, (size_t)n, &pi) == PROXY_DONE && pi.version == 2 &&
		      !pi.local,
	      "v2 parses back");
	CHECK(((struct sockaddr_in *)&pi.src)->sin_port == htons(40000), "v2 source port");
	CHECK(proxy_parse((unsigned char *)buf, 20, &pi) == PROXY_MORE, "v2 truncated");
	n = proxy_v2(buf, sizeof(buf), SA(c6), SA(l6));
	CHECK(n == 52, "v2 TCP6 length %d", n);
	CHECK(proxy_parse((unsigned char *)buf, (size_t)n, &pi) == PROXY_DONE &&
		      pi.src.ss_family == AF_INET6,
	      "v2 v6 parses back");
	/* Mixed families cannot be described: LOCAL. */
	n = proxy_v2(buf, sizeof(buf), SA(c4), SA(l6));
	CHECK(n == 16 && (unsigned char)buf[12] == 0x20, "mixed families give LOCAL");
	CHECK(proxy_parse((const unsigned char *)"GET / HTTP/1.0\r\n", 16, &pi) == PROXY_BAD, "garbage");
	CHECK(proxy_parse((const unsigned char *)"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", 36, &pi) ==
		      PROXY_BAD,
	      "v1 port out of range");
}

static void test_xclient(void)
{
	struct netaddr c4 = addr("127.1.2.3:40000"), l4 = addr("127.0.0.1:2525");
	struct netaddr c6 = addr("[2001:db8::1]:40000"), l6 = addr("[2001:db8::2]:25");
	struct xclient_attrs xa = {SA(c4), SA(l4), NULL, "client.example", 14, "ESMTP"};
	char buf[4096], x[64];
	char helo[300];
	int n;

	n = xclient_build(&xa, buf, sizeof(buf));
	CHECK(n == 1, "one command");
	CHECK(strcmp(buf, "XCLIENT NAME=[UNAVAILABLE] ADDR=127.1.2.3 PORT=40000 PROTO=ESMTP "
			  "HELO=client.example DESTADDR=127.0.0.1 DESTPORT=2525\r\n") == 0,
	      "%s", buf);
	xa.client = SA(c6);
	xa.local = SA(l6);
	n = xclient_build(&xa, buf, sizeof(buf));
	CHECK(n == 1 && strstr(buf, " ADDR=IPV6:2001:db8::1 ") != NULL, "IPv6: %s", buf);
	CHECK(xclient_xtext("a+b=c d\r", 8, x, sizeof(x)) > 0 && strcmp(x, "a+2Bb+3Dc+20d+0D") == 0,
	      "xtext: %s", x);
	/* A long hostile HELO: cut at 255, encoded, and the commands split. */
	memset(helo, '=', sizeof(helo));
	xa.helo = helo;
	xa.helolen = sizeof(helo);
	n = xclient_build(&xa, buf, sizeof(buf));
	CHECK(n == 3, "split into %d commands", n);
	for (char *line = buf, *end; (end = strstr(line, "\r\n")) != NULL; line = end + 2)
		CHECK(end + 2 - line <= XCLIENT_CMD_MAX && strncmp(line, "XCLIENT ", 8) == 0,
		      "command of %d bytes", (int)(end + 2 - line));
	CHECK(strstr(buf, "HELO=+3D+3D") != NULL, "HELO encoded: %s", buf);
	CHECK(strcspn(strstr(buf, "HELO="), "\r ") == 5 + 165 * 3, "HELO cut to fit: %zu",
	      strcspn(strstr(buf, "HELO="), "\r "));
}

static void test_reply(void)
{
	static const char ehlo[] = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
				   "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-XCLIENT NAME ADDR\r\n"
				   "250-XFORWARD NAME\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
				   "250-DSN\r\n250 CHUNKING\r\n";
	struct reply r;
	char caps[512];

	CHECK(reply_parse("220 mx ESMTP\r\n", 14, &r) == REPLY_DONE && r.code == 220 && r.len == 14,
	      "one line");
	CHECK(reply_parse("220-mx\r\n220 ok\r\nEXTRA", 22, &r) == REPLY_DONE && r.len == 16 &&
		      r.nlines == 2,
	      "two lines, stops at the end of the reply");
	CHECK(reply_parse("220-mx\r\n22", 10, &r) == REPLY_MORE, "incomplete");
	CHECK(reply_parse("220-mx\r\n250 x\r\n", 15, &r) == REPLY_BAD, "codes differ");
	CHECK(reply_parse("hello\r\n", 7, &r) == REPLY_BAD, "not a reply");
	CHECK(reply_parse("220\r\n", 5, &r) == REPLY_DONE && r.code == 220, "bare code");
	CHECK(reply_parse("220 a\n", 6, &r) == REPLY_DONE, "LF only");
	CHECK(reply_parse("620 a\r\n", 7, &r) == REPLY_BAD, "no such class");
	CHECK(reply_parse(ehlo, sizeof(ehlo) - 1, &r) == REPLY_DONE && r.nlines == 12, "EHLO");
	CHECK(reply_has_ext(ehlo, sizeof(ehlo) - 1, "XCLIENT"), "XCLIENT offered");
	CHECK(!reply_has_ext(ehlo, sizeof(ehlo) - 1, "AUTH"), "AUTH not offered");
	CHECK(reply_ehlo_caps(ehlo, sizeof(ehlo) - 1, caps, sizeof(caps)) == 7, "7 kept");
	CHECK(strcmp(caps, "PIPELINING\nSIZE 10240000\nSTARTTLS\nENHANCEDSTATUSCODES\n8BITMIME\n"
			   "DSN\nCHUNKING\n") == 0,
	      "kept: %s", caps);
	{
		char lines[REPLY_LINES_MAX * 8 + 16];
		size_t o = 0;

		for (int i = 0; i <= REPLY_LINES_MAX; i++)
			o += (size_t)snprintf(lines + o, sizeof(lines) - o, "250-x\r\n");
		CHECK(reply_parse(lines, o, &r) == REPLY_BAD, "too many lines");
	}
	{
		static char longline[REPLY_LINE_MAX + 10];

		memset(longline, 'x', sizeof(longline));
		memcpy(longline, "250 ", 4);
		CHECK(reply_parse(longline, sizeof(longline), &r) == REPLY_BAD, "line too long");
	}
}

static void test_escape(void)
{
	char out[64];

	CHECK(strcmp(log_escape(out, sizeof(out), "EHLO \x01\r\n", 8), "EHLO \\x01\\x0d\\x0a") == 0,
	      "%s", out);
	CHECK(strcmp(log_escape(out, sizeof(out), "a\"b\\c", 5), "a\\x22b\\x5cc") == 0, "%s", out);
	CHECK(strcmp(log_escape(out, 8, "abcdefghij", 10), "abcd...") == 0, "cut: %s", out);
	CHECK(strcmp(log_escape(out, 2, "abc", 3), "") == 0, "tiny buffer: %s", out);
}

/*
 * The HELO, MAIL and pending lines that the hand-off replays share one
 * allocation (conn_line_set): each keeps its text whatever happens to the
 * others, forgetting one keeps the rest, and all gone frees it (run under
 * valgrind or ASan for the memory side).
 */
static void test_lines(void)
{
	struct conn c;
	char big[600];

	memset(&c, 0, sizeof(c));
	CHECK(conn_line_set(&c, CONN_MAIL, "MAIL FROM:<a@b.test>", 20) == 0, "mail first");
	CHECK(c.helo == NULL && strcmp(c.mail, "MAIL FROM:<a@b.test>\r\n") == 0 && !c.pending,
	      "only mail: %s", c.mail);
	CHECK(conn_line_set(&c, CONN_HELO, "EHLO x", 6) == 0, "helo after mail");
	CHECK(conn_line_set(&c, CONN_PENDING, "RCPT TO:<c@d.test>xx", 18) == 0, "pending");
	CHECK(strcmp(c.helo, "EHLO x\r\n") == 0 &&
		  strcmp(c.mail, "MAIL FROM:<a@b.test>\r\n") == 0 &&
		  strcmp(c.pending, "RCPT TO:<c@d.test>\r\n") == 0,
	      "three lines, len bytes each: %s|%s|%s", c.helo, c.mail, c.pending);
	CHECK(c.mail == c.helo + 9 && c.pending == c.mail + 23, "packed in one block");
	memset(big, 'm', sizeof(big));
	CHECK(conn_line_set(&c, CONN_MAIL, big, sizeof(big)) == 0, "a longer mail");
	CHECK(strlen(c.mail) == sizeof(big) + 2 && strcmp(c.helo, "EHLO x\r\n") == 0 &&
		  strcmp(c.pending, "RCPT TO:<c@d.test>\r\n") == 0,
	      "the others kept across a replacement");
	CHECK(conn_line_set(&c, CONN_HELO, NULL, 0) == 0 && c.helo == NULL &&
		  strlen(c.mail) == sizeof(big) + 2 &&
		  strcmp(c.pending, "RCPT TO:<c@d.test>\r\n") == 0,
	      "forgetting the first line keeps the rest");
	CHECK(conn_line_set(&c, CONN_MAIL, NULL, 0) == 0 && c.mail == NULL &&
		  strcmp(c.pending, "RCPT TO:<c@d.test>\r\n") == 0,
	      "forgetting the middle line keeps the last");
	CHECK(conn_line_set(&c, CONN_MAIL, NULL, 0) == 0 && c.mail == NULL, "forgetting twice");
	CHECK(conn_line_set(&c, CONN_PENDING, NULL, 0) == 0 && !c.helo && !c.mail && !c.pending,
	      "all forgotten");
	CHECK(conn_line_set(&c, CONN_HELO, "HELO y", 6) == 0 &&
		  conn_line_set(&c, CONN_PENDING, "QUIT", 4) == 0,
	      "set again");
	conn_lines_free(&c);
	CHECK(!c.helo && !c.mail && !c.pending, "freed");
}

int main(void)
{
	test_netaddr();
	test_proxy();
	test_xclient();
	test_reply();
	test_escape();
	test_lines();
	return check_done("wire");
}
