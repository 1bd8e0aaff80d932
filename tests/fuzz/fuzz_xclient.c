/*
 * fuzz_xclient.c - libFuzzer target: XCLIENT commands built from what a
 * client controls (its HELO/EHLO argument, any bytes) and what the DNS
 * gave (its verified name), through xclient_build and xclient_xtext.
 *
 * Input: byte 0 picks the address families and PROTO, bytes 1-4 the two
 * ports, byte 5 the length of the name, then the name, then the HELO
 * argument (the rest). The name is used only when it is what dns.c lets
 * through (1 to 253 letters, digits, '-', '_' and '.'), else NULL, as
 * for a client without a verified name.
 *
 * Every command must be "XCLIENT" and attributes, at most XCLIENT_CMD_MAX
 * bytes with its CRLF, printable ASCII only, as many as the count says;
 * the HELO value must be the xtext of a prefix of the argument; xtext
 * itself must decode back to its input.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* unxtext - decode s[0..n) into out; its length, or -1 if not xtext. */
static int unxtext(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			if (i + 2 >= n)
				return -1;
			if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return -1;
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else if (s[i] < '!' || s[i] > '~' || s[i] == '=') {
			return -1;
		} else {
			out[o++] = s[i];
		}
	}
	return (int)o;
}

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static void addr(struct sockaddr_storage *ss, int v6, uint16_t port, const uint8_t *seed)
{
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memset(&s6->sin6_addr, seed[0], 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memset(&s4->sin_addr, seed[0], 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const protos[] = {NULL, "SMTP", "ESMTP", NULL};
	static char buf[4 * XCLIENT_CMD_MAX], dec[4096], x[4 * 4096];
	struct sockaddr_storage client, local;
	struct xclient_attrs a;
	char *name = NULL, *helo;
	size_t nlen, hlen;
	int ncmd, lines = 0, n;

	if (size < 6)
		return 0;
	nlen = data[5];
	if (nlen > size - 6)
		nlen = size - 6;
	hlen = size - 6 - nlen;
	addr(&client, data[0] & 1, (uint16_t)(data[1] << 8 | data[2]), data + 1);
	addr(&local, data[0] & 2, (uint16_t)(data[3] << 8 | data[4]), data + 3);
	if (name_ok((const char *)data + 6, nlen)) {
		if ((name = malloc(nlen + 1)) == NULL)
			abort();
		memcpy(name, data + 6, nlen);
		name[nlen] = '\0';
	}
	/* The argument as the dialogue holds it: no NUL after it. */
	if ((helo = malloc(hlen ? hlen : 1)) == NULL)
		abort();
	memcpy(helo, data + 6 + nlen, hlen);

	/* xtext alone, into a buffer it may or may not fit. */
	n = xclient_xtext(helo, hlen, x, (size_t)(data[0] >> 2) * 64 + 1);
	if (n >= 0 && (unxtext(x, (size_t)n, dec) != (int)hlen || memcmp(dec, helo, hlen) != 0))
		__builtin_trap();

	memset(&a, 0, sizeof(a));
	a.client = (struct sockaddr *)&client;
	a.local = (struct sockaddr *)&local;
	a.name = name;
	a.helo = data[0] & 4 ? NULL : helo;
	a.helolen = hlen;
	a.proto = protos[(data[0] >> 3) & 3];
	ncmd = xclient_build(&a, buf, sizeof(buf));
	if (ncmd < 1)
		__builtin_trap(); /* 4 commands' worth always holds them */
	for (const char *p = buf, *e; *p != '\0'; p = e + 2) {
		if ((e = strstr(p, "\r\n")) == NULL || e - p + 2 > XCLIENT_CMD_MAX ||
		    strncmp(p, "XCLIENT ", 8) != 0)
			__builtin_trap();
		for (const char *c = p; c < e; c++)
			if (*c < ' ' || *c > '~')
				__builtin_trap();
		lines++;
		if (a.helo != NULL) {
			const char *h = NULL;

			for (const char *c = p; c + 6 <= e; c++)
				if (memcmp(c, " HELO=", 6) == 0) {
					h = c + 6;
					break;
				}
			if (h != NULL) {
				size_t vl = strcspn(h, " \r");
				int dl = unxtext(h, vl, dec);

				if (dl < 0 || (size_t)dl > hlen ||
				    memcmp(dec, helo, (size_t)dl) != 0)
					__builtin_trap();
			}
		}
	}
	if (lines != ncmd)
		__builtin_trap();
	free(name);
	free(helo);
	return 0;
}
