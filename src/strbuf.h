/*
 * strbuf.h - a growing string: the notice texts and mails (notify.c) and
 * the nftables command batches (fw_nft.c) are built in one. The text is
 * always NUL-terminated. Running out of memory is remembered (oom): later
 * additions do nothing, and the caller checks once at the end.
 */
#ifndef MXG_STRBUF_H
#define MXG_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;    /* NULL until the first addition; the caller frees it */
	size_t len; /* bytes in s, the NUL not counted */
	size_t cap;
	int oom; /* an addition failed: s holds what came before it */
};

#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

/* strbuf_add - append len bytes of data. Returns 0, or -1 when out of memory. */
int strbuf_add(struct strbuf *b, const void *data, size_t len);

/* strbuf_str - append the string s. Returns 0 or -1 as strbuf_add. */
int strbuf_str(struct strbuf *b, const char *s);

/* strbuf_printf - append the whole formatted text. Returns 0 or -1 as strbuf_add. */
int strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* strbuf_free - free the text; b is empty (and usable) again. */
void strbuf_free(struct strbuf *b);

#endif
