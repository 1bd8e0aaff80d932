/*
 * ctl_json.c - mxguardctl's JSON (ctl_json.h). jansson parses; this file
 * copies what it parsed into the tree the views walk (struct jv), with
 * the checks the views count on: depth bounded by CTL_JSON_DEPTH, and
 * nothing read (client names, list reasons) able to send escape sequences
 * to the terminal. Only what the daemon (control.c) writes needs to be
 * read, but nothing read is trusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_json.h"
#include "jsonstr.h"

void ctl_json_string(FILE *fp, const char *s)
{
	char *q = jsonstr_quote(s);

	fputs(q != NULL ? q : "\"\"", fp);
	free(q);
}

void ctl_json_free(struct jv *v)
{
	while (v != NULL) {
		struct jv *next = v->next;

		ctl_json_free(v->child);
		free(v->key);
		free(v->str);
		free(v);
		v = next;
	}
}

/*
 * j_text - a copy of s (valid UTF-8: jansson checked it) with the C0 and
 * C1 control characters and DEL replaced by '?', so that nothing read
 * from the daemon can drive the terminal. C1 is U+0080..U+009F, in UTF-8
 * 0xC2 0x80..0x9F: both bytes become one '?'.
 */
static char *j_text(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *out = malloc(len + 1);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f) {
			out[o++] = '?';
			i++;
		} else {
			out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

/* j_copy - the tree of jansson value j, or NULL (too deep, out of memory). */
static struct jv *j_copy(json_t *j, int depth)
{
	struct jv *v, **tail;

	if (depth > CTL_JSON_DEPTH || (v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	tail = &v->child;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *m;

		v->type = J_OBJ;
		json_object_foreach(j, key, m)
		{
			struct jv *e = j_copy(m, depth + 1);

			if (e == NULL)
				goto bad;
			*tail = e;
			tail = &e->next;
			if ((e->key = j_text(key)) == NULL)
				goto bad;
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;

		v->type = J_ARR;
		json_array_foreach(j, i, m)
		{
			struct jv *e = j_copy(m, depth + 1);

			if (e == NULL)
				goto bad;
			*tail = e;
			tail = &e->next;
		}
		break;
	}
	case JSON_STRING:
		v->type = J_STR;
		if ((v->str = j_text(json_string_value(j))) == NULL)
			goto bad;
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		v->type = J_NUM;
		v->num = json_number_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		v->type = J_BOOL;
		v->num = json_is_true(j);
		break;
	case JSON_NULL:
		v->type = J_NULL;
		break;
	}
	return v;
bad:
	ctl_json_free(v);
	return NULL;
}

struct jv *ctl_json_parse(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *j;
	struct jv *v;

	if (len > CTL_JSON_MAX)
		return NULL;
	/*
	 * Any value, not only an object or array: the caller checks the
	 * type. Strings with \u0000 are refused (JSON_ALLOW_NUL unset): the
	 * tree holds C strings.
	 */
	if ((j = json_loadb(text, len, JSON_DECODE_ANY, &jerr)) == NULL)
		return NULL;
	v = j_copy(j, 0);
	json_decref(j);
	return v;
}

/* ctl_json_get - the member key of object o, or NULL. */
const struct jv *ctl_json_get(const struct jv *o, const char *key)
{
	if (o == NULL || o->type != J_OBJ)
		return NULL;
	for (const struct jv *m = o->child; m != NULL; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

double ctl_json_num(const struct jv *o, const char *key)
{
	const struct jv *m = ctl_json_get(o, key);

	return m != NULL && (m->type == J_NUM || m->type == J_BOOL) ? m->num : 0;
}

const char *ctl_json_str(const struct jv *o, const char *key)
{
	const struct jv *m = ctl_json_get(o, key);

	return m != NULL && m->type == J_STR ? m->str : "";
}
