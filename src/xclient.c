/*
 * xclient.c - building XCLIENT commands.
 *
 * Values are xtext-encoded (RFC 3461): the HELO name comes from the client
 * and may hold anything, so it is the one value that must never reach the
 * backend raw. A command is cut into several when the attributes do not fit
 * in 512 bytes; Postfix answers each with a fresh 220 greeting.
 */
#include <stdio.h>
#include <string.h>

#include "netaddr.h"
#include "xclient.h"

int xclient_xtext(const char *in, size_t len, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= '!' && c <= '~' && c != '+' && c != '=') {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= outsz)
				return -1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= outsz)
		return -1;
	out[o] = '\0';
	return (int)o;
}

/* xclient_addr - ADDR/DESTADDR value: "1.2.3.4" or "IPV6:2001:db8::1". */
static void xclient_addr(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	char ip[NETADDR_STRLEN];

	netaddr_ip(sa, ip, sizeof(ip));
	snprintf(buf, bufsz, "%s%s", strchr(ip, ':') ? "IPV6:" : "", ip);
}

int xclient_build(const struct xclient_attrs *a, char *buf, size_t bufsz)
{
	/* Attribute strings: at most 7, each within one command. */
	char attr[8][800];
	char v[780];
	int na = 0, ncmd = 0;
	size_t o = 0, cur = 0;

	if (a->name != NULL && xclient_xtext(a->name, strlen(a->name), v, sizeof(v)) >= 0)
		snprintf(attr[na++], sizeof(attr[0]), "NAME=%s", v);
	else
		snprintf(attr[na++], sizeof(attr[0]), "NAME=[UNAVAILABLE]");
	xclient_addr(a->client, v, sizeof(v));
	snprintf(attr[na++], sizeof(attr[0]), "ADDR=%s", v);
	snprintf(attr[na++], sizeof(attr[0]), "PORT=%u", netaddr_port(a->client));
	if (a->proto != NULL)
		snprintf(attr[na++], sizeof(attr[0]), "PROTO=%s", a->proto);
	if (a->helo != NULL) {
		size_t hl = a->helolen > 255 ? 255 : a->helolen;

		/*
		 * Encoding may triple the length; cut the name until its
		 * attribute fits in a command of its own ("XCLIENT HELO=" + CRLF).
		 */
		while (xclient_xtext(a->helo, hl, v, XCLIENT_CMD_MAX - 15) < 0 && hl > 0)
			hl--;
		snprintf(attr[na++], sizeof(attr[0]), "HELO=%s", v);
	}
	xclient_addr(a->local, v, sizeof(v));
	snprintf(attr[na++], sizeof(attr[0]), "DESTADDR=%s", v);
	snprintf(attr[na++], sizeof(attr[0]), "DESTPORT=%u", netaddr_port(a->local));

	for (int i = 0; i < na; i++) {
		size_t al = strlen(attr[i]);

		/* "XCLIENT" + " attr" + "\r\n" must stay within the limit. */
		if (cur > 0 && cur + 1 + al + 2 > XCLIENT_CMD_MAX) {
			if (o + 2 >= bufsz)
				return -1;
			memcpy(buf + o, "\r\n", 2);
			o += 2;
			cur = 0;
		}
		if (cur == 0) {
			if (o + 7 >= bufsz)
				return -1;
			memcpy(buf + o, "XCLIENT", 7);
			o += 7;
			cur = 7;
			ncmd++;
		}
		if (o + 1 + al >= bufsz)
			return -1;
		buf[o++] = ' ';
		memcpy(buf + o, attr[i], al);
		o += al;
		cur += 1 + al;
	}
	if (o + 3 > bufsz)
		return -1;
	memcpy(buf + o, "\r\n", 2);
	o += 2;
	buf[o] = '\0';
	return ncmd;
}
