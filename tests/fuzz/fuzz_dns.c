/*
 * fuzz_dns.c - libFuzzer target: DNS answers as mxguard consumes them.
 * Any zone on the Internet (a client's PTR zone, a sender's domain, a
 * DNSBL) writes what the resolver passes on, so every byte is hostile.
 *
 * The first byte picks the query type (modulo 7: A, AAAA, PTR, NS, MX,
 * TXT, SPF), the rest is the raw wire message given to dns_parse_answer(),
 * which runs c-ares's parser and then mxguard's own checks and copies, as
 * for an answer from the network. The message is copied to a heap block
 * of its exact size so that a read past it is caught. (c-ares itself is
 * not instrumented: its reads are not checked here, mxguard's are.)
 *
 * Properties of what comes out, whatever goes in:
 *   - DNS_OK has 1 to DNS_ANSWER_MAXN items; NONE and FAIL have none;
 *     the TTL is 0 on FAIL, 300 on NONE, at most 86400 on OK;
 *   - A and AAAA: exactly 4 or 16 bytes per address;
 *   - PTR, NS, MX: n packed host names filling len exactly, each 1 to 253
 *     bytes of lower-case letters, digits, '-', '_' and '.', labels of 1
 *     to 63, no trailing dot;
 *   - TXT: n strings of at most 255 printable ASCII bytes;
 *   - SPF: n strings, each "" or a printable "v=spf1" record (a space or
 *     its end after the version) of at most 1024 bytes;
 *   - the same input gives the same answer twice.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int types[] = {1, 28, 12, 2, 15, 16, DNS_T_SPF};

/* host_ok - a normalised host name: lower case, bounded labels, no trailing dot. */
static int host_ok(const char *s, size_t len)
{
	size_t label = 0;

	if (len < 1 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

static int printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

/* check - the properties above of one answer to a query of type. */
static void check(int type, enum dns_status st, const unsigned char *out, int n, size_t len,
		  unsigned ttl)
{
	const char *p = (const char *)out;
	size_t used = 0;

	if (n < 0 || n > DNS_ANSWER_MAXN || len > DNS_ANSWER_DATA)
		__builtin_trap();
	if (st == DNS_OK ? n < 1 || ttl > 86400 : n != 0 || len != 0)
		__builtin_trap();
	if ((st == DNS_NONE && ttl != 300) || (st == DNS_FAIL && ttl != 0))
		__builtin_trap();
	if (st != DNS_OK && st != DNS_NONE && st != DNS_FAIL)
		__builtin_trap();
	if (type == 1 || type == 28) {
		if (len != (size_t)n * (type == 1 ? 4 : 16))
			__builtin_trap();
		return;
	}
	if (st == DNS_OK && ttl != 3600)
		__builtin_trap();
	for (int i = 0; i < n; i++) {
		size_t l;

		if (used >= len || memchr(p + used, '\0', len - used) == NULL)
			__builtin_trap();
		l = strlen(p + used);
		if (!printable(p + used, l))
			__builtin_trap();
		if ((type == 12 || type == 2 || type == 15) && !host_ok(p + used, l))
			__builtin_trap();
		if (type == 16 && l > 255)
			__builtin_trap();
		if (type == DNS_T_SPF && l > 0 &&
		    (l > 1024 || strncasecmp(p + used, "v=spf1", 6) != 0 ||
		     (l > 6 && p[used + 6] != ' ')))
			__builtin_trap();
		used += l + 1;
	}
	if (used != len)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char out[DNS_ANSWER_DATA], again[DNS_ANSWER_DATA];
	unsigned char *msg;
	enum dns_status st, st2;
	size_t len, len2;
	unsigned ttl, ttl2;
	int type, n, n2;

	if (size < 1 || size - 1 > 65535)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	if ((msg = malloc(size - 1 ? size - 1 : 1)) == NULL)
		abort();
	memcpy(msg, data + 1, size - 1);
	st = dns_parse_answer(type, msg, (int)(size - 1), out, sizeof(out), &n, &len, &ttl);
	check(type, st, out, n, len, ttl);
	st2 = dns_parse_answer(type, msg, (int)(size - 1), again, sizeof(again), &n2, &len2, &ttl2);
	if (st2 != st || n2 != n || len2 != len || ttl2 != ttl || memcmp(out, again, len) != 0)
		__builtin_trap();
	free(msg);
	return 0;
}
