/*
 * ctl_json.c - mxguardctl's JSON (ctl_json.h). Only what the daemon
 * (control.c) writes needs to be read, but nothing read is trusted: depth
 * is bounded by J_DEPTH_MAX, every string escape is checked, and nothing
 * read (client names, list reasons) can send escape sequences to the
 * terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_json.h"

#define J_DEPTH_MAX 32

void ctl_json_string(FILE *fp, const char *s)
{
	putc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			putc(c, fp);
	}
	putc('"', fp);
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

static void j_space(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n')
		(*p)++;
}

/*
 * j_string - read a string at *p (the opening quote). Code points are
 * stored as UTF-8; the C0 and C1 control characters become '?', so that
 * nothing read from the daemon (client names, list reasons) can send
 * escape sequences to the terminal.
 */
static char *j_string(const char **p)
{
	const char *s = *p + 1;
	size_t cap = strlen(s) + 1, o = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	for (; *s != '"'; s++) {
		unsigned cp = (unsigned char)*s;
		int escaped = *s == '\\';

		if (*s == '\0')
			goto bad;
		if (escaped) {
			s++;
			switch (*s) {
			case 'n':
				cp = '\n';
				break;
			case 't':
				cp = '\t';
				break;
			case 'r':
				cp = '\r';
				break;
			case 'b':
				cp = '\b';
				break;
			case 'f':
				cp = '\f';
				break;
			case '"':
			case '\\':
			case '/':
				cp = (unsigned char)*s;
				break;
			case 'u': {
				char hex[5];
				char *end;

				if (strlen(s + 1) < 4)
					goto bad;
				memcpy(hex, s + 1, 4);
				hex[4] = '\0';
				cp = (unsigned)strtoul(hex, &end, 16);
				if (*end != '\0')
					goto bad;
				s += 4;
				break;
			}
			default:
				goto bad;
			}
		}
		if (cp < 0x20 || cp == 0x7f || (escaped && cp >= 0x80 && cp < 0xa0) ||
		    (cp >= 0xd800 && cp < 0xe000))
			cp = '?';
		/* A \uXXXX escape takes 6 input bytes: its UTF-8 (at most 3) fits. */
		if (cp < 0x80 || !escaped) {
			out[o++] = (char)cp;
		} else if (cp < 0x800) {
			out[o++] = (char)(0xc0 | cp >> 6);
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[o++] = (char)(0xe0 | cp >> 12);
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	out[o] = '\0';
	*p = s + 1;
	return out;
bad:
	free(out);
	return NULL;
}

static struct jv *j_value(const char **p, int depth);

/* j_members - the elements of an array or object, after its opening bracket. */
static int j_members(const char **p, struct jv *v, int depth)
{
	char close = v->type == J_OBJ ? '}' : ']';
	struct jv **tail = &v->child;

	j_space(p);
	if (**p == close) {
		(*p)++;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		struct jv *e;

		j_space(p);
		if (v->type == J_OBJ) {
			if (**p != '"' || (key = j_string(p)) == NULL)
				return -1;
			j_space(p);
			if (**p != ':') {
				free(key);
				return -1;
			}
			(*p)++;
		}
		if ((e = j_value(p, depth + 1)) == NULL) {
			free(key);
			return -1;
		}
		e->key = key;
		*tail = e;
		tail = &e->next;
		j_space(p);
		if (**p == ',') {
			(*p)++;
			continue;
		}
		if (**p != close)
			return -1;
		(*p)++;
		return 0;
	}
}

static struct jv *j_value(const char **p, int depth)
{
	struct jv *v;

	if (depth > J_DEPTH_MAX)
		return NULL;
	j_space(p);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	if (**p == '{' || **p == '[') {
		v->type = **p == '{' ? J_OBJ : J_ARR;
		(*p)++;
		if (j_members(p, v, depth) < 0)
			goto bad;
	} else if (**p == '"') {
		v->type = J_STR;
		if ((v->str = j_string(p)) == NULL)
			goto bad;
	} else if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
		v->type = J_BOOL;
		v->num = **p == 't';
		*p += **p == 't' ? 4 : 5;
	} else if (strncmp(*p, "null", 4) == 0) {
		v->type = J_NULL;
		*p += 4;
	} else {
		char *end;

		v->type = J_NUM;
		v->num = strtod(*p, &end);
		if (end == *p)
			goto bad;
		*p = end;
	}
	return v;
bad:
	ctl_json_free(v);
	return NULL;
}

/* ctl_json_parse - the one JSON value in text (trailing white space allowed), or NULL. */
struct jv *ctl_json_parse(const char *text)
{
	const char *p = text;
	struct jv *v = j_value(&p, 0);

	j_space(&p);
	if (v != NULL && *p != '\0') {
		ctl_json_free(v);
		return NULL;
	}
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
