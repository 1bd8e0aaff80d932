/*
 * ctl_json.h - mxguardctl's JSON: the daemon's answers read by jansson
 * and handed to the views as a small tree of values (bounded in size and
 * depth; a malformed answer is an error, never a crash), and the one
 * writer the error messages need, a JSON string (jsonstr.c).
 */
#ifndef MXG_CTL_JSON_H
#define MXG_CTL_JSON_H

#include <stddef.h>
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
 * ctl_json_parse - the one JSON value in text[0..len) (white space around
 * it allowed), or NULL when it is not one, is longer than CTL_JSON_MAX,
 * nests deeper than CTL_JSON_DEPTH (or out of memory). Strings and member
 * names are UTF-8 with the C0 and C1 control characters and DEL replaced
 * by '?'. The caller frees the tree with ctl_json_free (NULL is fine).
 */
#define CTL_JSON_MAX (64 << 20) /* CTL_ANSWER_MAX: the longest answer read */
#define CTL_JSON_DEPTH 32
struct jv *ctl_json_parse(const char *text, size_t len);
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

/*
 * ctl_json_string - write s to fp as a JSON string, quotes included
 * (jsonstr_quote: invalid UTF-8 becomes U+FFFD).
 */
void ctl_json_string(FILE *fp, const char *s);

#endif
