/*
 * ctl_json.h - mxguardctl's JSON: a small reader for the daemon's answers
 * (a tree of values, bounded in depth; a malformed answer is an error,
 * never a crash) and the one writer it needs, a JSON string.
 */
#ifndef MXG_CTL_JSON_H
#define MXG_CTL_JSON_H

#include <stdio.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype type;
	char *key;	  /* member name, inside an object */
	char *str;	  /* J_STR */
	double num;	  /* J_NUM; J_BOOL: 0 or 1 */
	struct jv *child; /* J_ARR, J_OBJ: the first element */
	struct jv *next;  /* the next element of the parent */
};

/*
 * ctl_json_parse - the one JSON value in text (trailing white space
 * allowed), or NULL when it is not one (or out of memory). Strings are
 * UTF-8 with the C0 and C1 control characters replaced by '?'. The caller
 * frees the tree with ctl_json_free (NULL is fine).
 */
struct jv *ctl_json_parse(const char *text);
void ctl_json_free(struct jv *v);

/*
 * ctl_json_get - the member key of object o, or NULL (also when o is NULL
 * or not an object). ctl_json_num: its number (a boolean is 0 or 1), 0
 * when absent or of another type; ctl_json_str: its string, "" when
 * absent or of another type. The results point into o.
 */
const struct jv *ctl_json_get(const struct jv *o, const char *key);
double ctl_json_num(const struct jv *o, const char *key);
const char *ctl_json_str(const struct jv *o, const char *key);

/* ctl_json_string - write s to fp as a JSON string, quotes included. */
void ctl_json_string(FILE *fp, const char *s);

#endif
