/*
 * jsonstr.h - every JSON string mxguard and mxguardctl write, made here
 * (with jansson). Client data is not always UTF-8 (HELO names, log lines,
 * list reasons), and jansson refuses a string that is not: these
 * functions keep each valid UTF-8 sequence and replace each byte that is
 * not part of one by U+FFFD (the replacement character), so the JSON
 * always parses and the readable part of a name stays readable. (Why not
 * "\xNN" text: it would be indistinguishable from a client that sent
 * those four characters, and readers of JSON expect text, not escapes of
 * escapes; U+FFFD is what browsers and Python's errors="replace" show.)
 */
#ifndef MXG_JSONSTR_H
#define MXG_JSONSTR_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/*
 * jsonstr_utf8 - s[0..len) with each byte that does not belong to a valid
 * UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) replaced by U+FFFD, as a new NUL-terminated string the
 * caller frees; *outlen (when not NULL) gets its length. NUL bytes in s
 * are kept. Returns NULL when out of memory.
 */
char *jsonstr_utf8(const char *s, size_t len, size_t *outlen);

/*
 * jsonstr_new - a new json_t string (one reference, the caller's) of
 * s[0..len), its invalid UTF-8 replaced as jsonstr_utf8 does. s may be
 * NULL (len 0): the empty string. Returns NULL when out of memory.
 */
json_t *jsonstr_new(const char *s, size_t len);

/* jsonstr_cstr - jsonstr_new of the NUL-terminated s (NULL: ""). */
json_t *jsonstr_cstr(const char *s);

/*
 * jsonstr_quote - the JSON text of the NUL-terminated s, quotes included
 * ("a\"b"), as a new string the caller frees; control characters,
 * quotes and backslashes escaped, UTF-8 kept as is. For answers written
 * piece by piece. Returns NULL when out of memory.
 */
char *jsonstr_quote(const char *s);

/*
 * jsonstr_dumpf - write v (an object or an array) to fp as one line of
 * JSON, members in the order they were set, then a newline. Returns 0,
 * or -1 when it could not be written (out of memory, an I/O error).
 * v stays the caller's.
 */
int jsonstr_dumpf(const json_t *v, FILE *fp);

#endif
