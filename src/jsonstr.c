/*
 * jsonstr.c - JSON strings from hostile bytes (jsonstr.h). The UTF-8
 * check is done here rather than left to jansson, which only accepts or
 * refuses a whole string: one stray byte in a HELO name must not cost the
 * whole name, nor the answer it is part of.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstr.h"

/*
 * jsonstr_seq - the length of the valid UTF-8 sequence at s[0..left), or
 * 0 when the byte at s does not start one (RFC 3629, table 3-7 of the
 * Unicode standard: the second byte's range depends on the first).
 */
static size_t jsonstr_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0; /* a continuation byte, C0/C1 (overlong), F5..FF */
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (left < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

char *jsonstr_utf8(const char *s, size_t len, size_t *outlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;
	char *out;

	/* U+FFFD is 3 bytes: at most three times the input. */
	if (len > (SIZE_MAX - 1) / 3 || (out = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = jsonstr_seq(u + i, len - i);

		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, u + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

json_t *jsonstr_new(const char *s, size_t len)
{
	size_t n;
	char *fixed;
	json_t *v;

	if (s == NULL || len == 0)
		return json_string("");
	if ((fixed = jsonstr_utf8(s, len, &n)) == NULL)
		return NULL;
	/* Checked above: jansson need not check it again. */
	v = json_stringn_nocheck(fixed, n);
	free(fixed);
	return v;
}

json_t *jsonstr_cstr(const char *s)
{
	return jsonstr_new(s, s != NULL ? strlen(s) : 0);
}

char *jsonstr_quote(const char *s)
{
	json_t *v = jsonstr_cstr(s);
	char *text;

	if (v == NULL)
		return NULL;
	/* JSON_ENCODE_ANY: a bare string is not a JSON document for jansson. */
	text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(v);
	return text;
}

int jsonstr_dumpf(const json_t *v, FILE *fp)
{
	if (json_dumpf(v, fp, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0 || putc('\n', fp) == EOF)
		return -1;
	return 0;
}
