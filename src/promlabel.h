/*
 * promlabel.h - a Prometheus label value, escaped. Lives at the bottom
 * so that every module writing metric lines (metrics.c, and the shield's
 * per-group lines) escapes its labels the same way, whatever layer it is
 * in: one name with a quote must not break the whole scrape.
 */
#ifndef MXG_PROMLABEL_H
#define MXG_PROMLABEL_H

struct evbuffer;

/*
 * promlabel_add - append s (NUL-terminated; NULL: "") to b as the inside
 * of a label value, quotes not included: backslash, double quote and
 * newline escaped as the text exposition format says, and invalid UTF-8
 * replaced by U+FFFD (jsonstr_utf8) since the format is UTF-8. Out of
 * memory, the value is left empty.
 */
void promlabel_add(struct evbuffer *b, const char *s);

#endif
