/*
 * ctl_explain.c - mxguardctl explain: the daemon's one-address answer
 * shown to people (see ctl_explain.h).
 *
 * The answer is walked generically: each member of the top object that is
 * an object becomes a section, its members lines "key  value" (nested
 * objects as "a.b", arrays of records one line each), aligned on the
 * longest key of the section; scalars of the top come first. So a member
 * the daemon adds later shows without a change here, and the text holds
 * exactly what --json holds. Times (first, last, until, expires) are
 * written as UTC dates. Control characters never reach the terminal: the
 * JSON reader replaced them (ctl_json.c).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_explain.h"
#include "ctl_json.h"

#define CTL_EXPLAIN_NAME_MAX 253 /* explain.h: EXPLAIN_NAME_MAX */
#define CTL_EXPLAIN_LINES 256	 /* lines of one section, at most */
#define CTL_EXPLAIN_KEY 64
#define CTL_EXPLAIN_VALUE 512

const char *ctl_explain_args(int argc, char **argv)
{
	unsigned char a[16];

	if (argc < 1 || argc > 2)
		return "explain: expected ADDR [NAME]";
	if (inet_pton(AF_INET, argv[0], a) != 1 && inet_pton(AF_INET6, argv[0], a) != 1)
		return "explain: ADDR is not an IP address";
	if (argc == 2) {
		if (strlen(argv[1]) > CTL_EXPLAIN_NAME_MAX)
			return "explain: NAME longer than 253 characters";
		for (const char *p = argv[1]; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
				return "explain: NAME must be a host name (letters, digits, '-', "
				       "'_', '.')";
	}
	return NULL;
}

/* One section's lines, printed once its longest key is known. */
struct ctl_section {
	char key[CTL_EXPLAIN_LINES][CTL_EXPLAIN_KEY];
	char value[CTL_EXPLAIN_LINES][CTL_EXPLAIN_VALUE];
	int n;
};

static int ctl_is_time(const char *key)
{
	return key != NULL && (strcmp(key, "first") == 0 || strcmp(key, "last") == 0 ||
			       strcmp(key, "until") == 0 || strcmp(key, "expires") == 0);
}

/* ctl_scalar - v (not an object or array) as text; key decides whether it is a time. */
static void ctl_scalar(const struct jv *v, const char *key, char *buf, size_t bufsz)
{
	switch (v->type) {
	case J_NULL:
		snprintf(buf, bufsz, "-");
		break;
	case J_BOOL:
		snprintf(buf, bufsz, "%s", v->num != 0 ? "yes" : "no");
		break;
	case J_NUM:
		if (ctl_is_time(key) && v->num > 0 && v->num < 253402300799.0) {
			time_t t = (time_t)v->num;
			struct tm tm;

			gmtime_r(&t, &tm);
			strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
		} else {
			snprintf(buf, bufsz, "%.0f", v->num);
		}
		break;
	case J_STR:
		snprintf(buf, bufsz, "%s", v->str);
		break;
	default:
		snprintf(buf, bufsz, "...");
		break;
	}
}

/* ctl_inline - an object as "k=v k=v" on one line (a record of a list). */
static void ctl_inline(const struct jv *o, char *buf, size_t bufsz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (const struct jv *m = o->child; m != NULL && len < bufsz; m = m->next) {
		char val[CTL_EXPLAIN_VALUE];

		ctl_scalar(m, m->key, val, sizeof(val));
		len += (size_t)snprintf(buf + len, bufsz - len, "%s%s=%s", len ? " " : "",
					m->key ? m->key : "?", val);
	}
}

static void ctl_add(struct ctl_section *s, const char *key, const char *value)
{
	if (s->n >= CTL_EXPLAIN_LINES)
		return;
	snprintf(s->key[s->n], CTL_EXPLAIN_KEY, "%s", key);
	snprintf(s->value[s->n], CTL_EXPLAIN_VALUE, "%s", value);
	s->n++;
}

/* ctl_flatten - the members of o into s, nested keys joined by dots. */
static void ctl_flatten(struct ctl_section *s, const char *prefix, const struct jv *o)
{
	for (const struct jv *m = o->child; m != NULL; m = m->next) {
		char key[CTL_EXPLAIN_KEY], val[CTL_EXPLAIN_VALUE];

		snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "",
			 m->key ? m->key : "?");
		if (m->type == J_OBJ) {
			ctl_flatten(s, key, m);
		} else if (m->type == J_ARR) {
			if (m->child == NULL)
				ctl_add(s, key, "none");
			for (const struct jv *e = m->child; e != NULL; e = e->next) {
				if (e->type == J_OBJ)
					ctl_inline(e, val, sizeof(val));
				else
					ctl_scalar(e, NULL, val, sizeof(val));
				ctl_add(s, key, val);
			}
		} else {
			ctl_scalar(m, m->key, val, sizeof(val));
			ctl_add(s, key, val);
		}
	}
}

static void ctl_print(const char *title, const struct ctl_section *s)
{
	int w = 0;

	for (int i = 0; i < s->n; i++)
		if ((int)strlen(s->key[i]) > w)
			w = (int)strlen(s->key[i]);
	if (title != NULL)
		printf("\n%s\n", title);
	for (int i = 0; i < s->n; i++)
		printf("%s%-*s  %s\n", title != NULL ? "  " : "", w, s->key[i], s->value[i]);
}

int ctl_explain_view(struct ctl *ctl, const char *line)
{
	struct ctl_section *s;
	char *answer;
	struct jv *v;
	int rc;

	if (ctl->json)
		return ctl_io_action(ctl, line);
	if ((rc = ctl_io_call(ctl, line, &answer)) != CTL_OK ||
	    (rc = ctl_io_parse(ctl, answer, &v)) != CTL_OK)
		return rc;
	if (v->type != J_OBJ || (s = calloc(1, sizeof(*s))) == NULL) {
		ctl_json_free(v);
		return ctl_io_fail(ctl, CTL_EFAIL, "malformed answer from mxguard at %s",
				   ctl->path);
	}
	/* The scalars of the top first (address), then each object as a section. */
	for (const struct jv *m = v->child; m != NULL; m = m->next) {
		char val[CTL_EXPLAIN_VALUE];

		if (m->type == J_OBJ || m->type == J_ARR || strcmp(m->key, "ok") == 0)
			continue;
		ctl_scalar(m, m->key, val, sizeof(val));
		ctl_add(s, m->key, val);
	}
	ctl_print(NULL, s);
	for (const struct jv *m = v->child; m != NULL; m = m->next) {
		if (m->type != J_OBJ && m->type != J_ARR)
			continue;
		s->n = 0;
		if (m->type == J_OBJ) {
			ctl_flatten(s, "", m);
		} else {
			/* A list at the top (recent): one line per element. */
			struct jv one = *m, wrap;

			one.next = NULL;
			memset(&wrap, 0, sizeof(wrap));
			wrap.type = J_OBJ;
			wrap.child = &one;
			ctl_flatten(s, "", &wrap);
		}
		ctl_print(m->key, s);
	}
	free(s);
	ctl_json_free(v);
	return CTL_OK;
}
