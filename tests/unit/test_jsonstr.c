/*
 * test_jsonstr.c - jsonstr.c and promlabel.c on a table of byte strings:
 * valid UTF-8 kept, each invalid byte (overlong forms, surrogates, code
 * points above U+10FFFF, truncated and stray continuation bytes) replaced
 * by U+FFFD, and the JSON text and label escapes that come out of them.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "check.h"
#include "jsonstr.h"
#include "promlabel.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

static const struct {
	const char *in, *out;
} utf8_cases[] = {
    {"", ""},
    {"mx1.example.org", "mx1.example.org"},
    {"h\xc3\xa9llo", "h\xc3\xa9llo"},					/* é kept */
    {"\xe2\x82\xac \xf0\x9f\x93\xa7", "\xe2\x82\xac \xf0\x9f\x93\xa7"}, /* € and U+1F4E7 */
    {"\xef\xbf\xbd", "\xef\xbf\xbd"},					/* U+FFFD itself */
    {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},				/* U+10FFFF, the last one */
    {"a\xff"
     "b",
     "a" R "b"},				       /* a byte never in UTF-8 */
    {"\x80", R},				       /* a stray continuation */
    {"\xc0\xaf", R R},				       /* overlong '/' */
    {"\xe0\x80\xaf", R R R},			       /* overlong, 3 bytes */
    {"\xed\xa0\x80", R R R},			       /* a surrogate (U+D800) */
    {"\xf4\x90\x80\x80", R R R R},		       /* above U+10FFFF */
    {"\xc3", R},				       /* truncated at the end */
    {"\xe2\x82x", R R "x"},			       /* truncated in the middle */
    {"\xc3\xa9\xff\xc3\xa9", "\xc3\xa9" R "\xc3\xa9"}, /* one bad byte between good ones */
};

static const struct {
	const char *in, *json, *label;
} quote_cases[] = {
    {"plain", "\"plain\"", "plain"},
    {"we\"ird\\", "\"we\\\"ird\\\\\"", "we\\\"ird\\\\"},
    {"a\nb\tc", "\"a\\nb\\tc\"", "a\\nb\tc"},
    {"\x1b[2J", "\"\\u001B[2J\"", "\x1b[2J"},
    {"\xc3\xa9\xff", "\"\xc3\xa9" R "\"", "\xc3\xa9" R},
};

int main(void)
{
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		size_t n = 0;
		char *out = jsonstr_utf8(utf8_cases[i].in, strlen(utf8_cases[i].in), &n);
		json_t *v = jsonstr_cstr(utf8_cases[i].in);

		CHECK(out != NULL && strcmp(out, utf8_cases[i].out) == 0 &&
			  n == strlen(utf8_cases[i].out),
		      "case %zu: got \"%s\"", i, out ? out : "(null)");
		/* jansson takes what came out as a string: it is valid UTF-8. */
		CHECK(v != NULL && strcmp(json_string_value(v), utf8_cases[i].out) == 0,
		      "case %zu: json_t", i);
		free(out);
		json_decref(v);
	}
	for (size_t i = 0; i < sizeof(quote_cases) / sizeof(quote_cases[0]); i++) {
		char *q = jsonstr_quote(quote_cases[i].in);
		struct evbuffer *b = evbuffer_new();
		char label[256] = "";
		json_t *back;

		promlabel_add(b, quote_cases[i].in);
		evbuffer_remove(b, label, sizeof(label) - 1);
		CHECK(q != NULL && strcmp(q, quote_cases[i].json) == 0, "quote %zu: got %s", i,
		      q ? q : "(null)");
		CHECK(strcmp(label, quote_cases[i].label) == 0, "label %zu: got %s", i, label);
		/* What jsonstr_quote wrote, jansson reads back. */
		back = q ? json_loads(q, JSON_DECODE_ANY, NULL) : NULL;
		CHECK(back != NULL && json_is_string(back), "quote %zu: does not parse", i);
		json_decref(back);
		evbuffer_free(b);
		free(q);
	}
	{
		/* An embedded NUL is kept (a C string would stop there). */
		json_t *v = jsonstr_new("a\0b", 3);

		CHECK(v != NULL && json_string_length(v) == 3, "NUL kept");
		json_decref(v);
		v = jsonstr_new(NULL, 0);
		CHECK(v != NULL && strcmp(json_string_value(v), "") == 0, "NULL is \"\"");
		json_decref(v);
	}
	return check_done("jsonstr");
}
