/*
 * strbuf.c - a growing string (see strbuf.h). The capacity doubles, so
 * building a text of n bytes copies O(n) bytes in all.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

#define STRBUF_FIRST 1024

/* strbuf_room - make room for len more bytes and the NUL. Returns 0 or -1. */
static int strbuf_room(struct strbuf *b, size_t len)
{
	size_t cap;
	char *s;

	if (b->oom)
		return -1;
	if (len < b->cap - b->len)
		return 0;
	if (len > (size_t)-1 / 4 - b->len) {
		b->oom = 1;
		return -1;
	}
	cap = b->cap ? b->cap : STRBUF_FIRST;
	while (cap - b->len <= len)
		cap *= 2;
	if ((s = realloc(b->s, cap)) == NULL) {
		b->oom = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

int strbuf_add(struct strbuf *b, const void *data, size_t len)
{
	if (strbuf_room(b, len) < 0)
		return -1;
	memcpy(b->s + b->len, data, len);
	b->len += len;
	b->s[b->len] = '\0';
	return 0;
}

int strbuf_str(struct strbuf *b, const char *s)
{
	return strbuf_add(b, s, strlen(s));
}

int strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return -1;
	/* First try in the room there is; measure, grow and format again only when short. */
	va_start(ap, fmt);
	n = vsnprintf(b->s != NULL ? b->s + b->len : NULL, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return 0;
	}
	if (strbuf_room(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void strbuf_free(struct strbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}
