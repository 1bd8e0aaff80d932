/*
 * rules.c - S25R and client lists.
 *
 * S25R (rules r0-r6 below, from the published method) looks only at the
 * *verified* reverse name: the caller resolves PTR and confirms it with a
 * forward lookup; without that the name is "unknown", which r0 matches.
 * S25R never rejects: it only marks a client as suspect, to be slowed down.
 *
 * Lists come in three formats, read as their users already write them:
 *   regexp:PATH   Postfix regexp_table(5): "/re/flags ACTION [text]" and
 *                 "!/re/flags ACTION", on the client name; case-insensitive
 *                 unless the i flag toggles it, as in Postfix.
 *   cidr:PATH     Postfix cidr_table(5): "net/len ACTION [text]", on the
 *                 client address (IPv4 and IPv6; "[ipv6]/len" too), and
 *                 "!net/len ACTION" for every address outside net.
 *   postgrey:PATH postgrey's whitelist_clients: "/re/", addresses, CIDR,
 *                 3-octet prefixes, and domains matching their subdomains;
 *                 every entry whitelists.
 * Actions: OK (white), SUSPECT, REJECT [text] (black, 550), 4NN/5NN text
 * (black with that code), DEFER [text] (black, 450), WARN [text] (note and
 * go on), DUNNO (leave this list). First match wins, lists in order.
 *
 * Regular expressions are PCRE2: compiled once at load, matched with one
 * shared match-data block (the daemon is single-threaded).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lines.h"
#include "rules.h"

enum list_type { L_REGEXP, L_CIDR, L_POSTGREY, L_RCPT };
enum entry_kind { E_REGEX, E_CIDR, E_DOMAIN, E_LOCAL, E_ADDR };
enum action { A_OK, A_SUSPECT, A_REJECT, A_WARN, A_DUNNO };

struct entry {
	uint8_t kind;
	uint8_t action;
	uint8_t negate;
	uint8_t family;	    /* E_CIDR: AF_INET or AF_INET6 */
	uint8_t bits;	    /* E_CIDR: prefix length */
	unsigned char net[16];
	int code;	    /* A_REJECT: SMTP code */
	int line;
	pcre2_code *re;	    /* E_REGEX */
	char *text;	    /* E_DOMAIN: the domain; else REJECT/WARN text */
};

struct list {
	char *path;
	enum list_type type;
	struct entry *e;
	size_t n, cap;
};

struct rules {
	struct list *lists;
	int nlists;
	struct list white; /* the operator's entries (mxguardctl add white) */
	pcre2_code *s25r[7];
	pcre2_match_data *md;
};

/* The S25R rules, as published (r1 in its corrected form). */
static const char *const s25r_patterns[7] = {
	"^unknown$",
	"^[^.]*[0-9][^0-9.]+[0-9].*\\.",
	"^[^.]*[0-9]{5}",
	"^([^.]+\\.)?[0-9][^.]*\\.[^.]+\\..+\\.[a-z]",
	"^[^.]*[0-9]\\.[^.]*[0-9]-[0-9]",
	"^[^.]*[0-9]\\.[^.]*[0-9]\\.[^.]+\\..+\\.",
	"^(dhcp|dialup|ppp|[achrsvx]?dsl)[^.]*[0-9]",
};

const char *rules_verdict_name(enum verdict v)
{
	switch (v) {
	case VERDICT_WHITE:
		return "white";
	case VERDICT_BLACK:
		return "black";
	case VERDICT_SUSPECT:
		return "suspect";
	case VERDICT_CLEAN:
		break;
	}
	return "clean";
}

static pcre2_code *rules_compile(const char *pat, size_t len, uint32_t opts, char *why,
				 size_t whysz)
{
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &errcode, &erroff, NULL);

	if (re == NULL) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		snprintf(why, whysz, "bad regular expression at offset %zu: %s", (size_t)erroff,
			 (char *)msg);
	}
	return re;
}

static int rules_match(const struct rules *r, const pcre2_code *re, const char *s)
{
	return pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, r->md, NULL) >= 0;
}

/* rules_action - "OK", "REJECT text", "450 text", ... into e. */
static int rules_action(struct entry *e, char *s, char *why, size_t whysz)
{
	char *word = s, *rest;

	while (*s && !isspace((unsigned char)*s))
		s++;
	rest = s;
	if (*s)
		*s++ = '\0', rest = s;
	while (isspace((unsigned char)*rest))
		rest++;
	e->code = 550;
	if (strcasecmp(word, "OK") == 0 || strcasecmp(word, "PERMIT") == 0) {
		e->action = A_OK;
	} else if (strcasecmp(word, "SUSPECT") == 0) {
		e->action = A_SUSPECT;
	} else if (strcasecmp(word, "REJECT") == 0) {
		e->action = A_REJECT;
	} else if (strcasecmp(word, "DEFER") == 0 || strcasecmp(word, "DEFER_IF_PERMIT") == 0) {
		e->action = A_REJECT;
		e->code = 450;
	} else if (strcasecmp(word, "WARN") == 0) {
		e->action = A_WARN;
	} else if (strcasecmp(word, "DUNNO") == 0) {
		e->action = A_DUNNO;
	} else if (strlen(word) == 3 && (word[0] == '4' || word[0] == '5') &&
		   isdigit((unsigned char)word[1]) && isdigit((unsigned char)word[2])) {
		e->action = A_REJECT;
		e->code = atoi(word);
	} else {
		snprintf(why, whysz,
			 "unknown action '%.40s' (expected OK, SUSPECT, REJECT, DEFER, WARN, DUNNO,"
			 " or a 4NN/5NN code)",
			 word);
		return -1;
	}
	if (*rest && (e->text = strdup(rest)) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	return 0;
}

/* rules_regexp_line - "/re/flags ACTION" or "!/re/flags ACTION". */
static int rules_regexp_line(struct entry *e, char *s, int need_action, char *why, size_t whysz)
{
	uint32_t opts = PCRE2_CASELESS;
	char delim, *end;

	if (*s == '!') {
		e->negate = 1;
		s++;
	}
	delim = *s;
	if (delim == '\0' || isalnum((unsigned char)delim) || isspace((unsigned char)delim)) {
		snprintf(why, whysz, "expected /regexp/ at the start of the line");
		return -1;
	}
	/* The pattern ends at the next unescaped delimiter. */
	for (end = s + 1; *end && *end != delim; end++)
		if (*end == '\\' && end[1])
			end++;
	if (*end != delim) {
		snprintf(why, whysz, "missing closing '%c' of the regular expression", delim);
		return -1;
	}
	char *flags = end + 1;

	for (; *flags && !isspace((unsigned char)*flags); flags++) {
		switch (*flags) {
		case 'i':
			opts ^= PCRE2_CASELESS;
			break;
		case 'x':
			opts |= PCRE2_EXTENDED;
			break;
		case 's':
			opts |= PCRE2_DOTALL;
			break;
		case 'm':
			opts |= PCRE2_MULTILINE;
			break;
		default:
			snprintf(why, whysz, "unknown regexp flag '%c'", *flags);
			return -1;
		}
	}
	e->kind = E_REGEX;
	e->re = rules_compile(s + 1, (size_t)(end - s - 1), opts, why, whysz);
	if (e->re == NULL)
		return -1;
	while (isspace((unsigned char)*flags))
		flags++;
	if (!need_action) {
		e->action = A_OK;
		return 0;
	}
	if (*flags == '\0') {
		snprintf(why, whysz, "missing action after the regular expression");
		return -1;
	}
	return rules_action(e, flags, why, whysz);
}

/*
 * rules_cidr - "a.b.c.d/len", "a.b.c.d", "2001:db8::/32", and with
 * partial_ok postgrey's "a.b.c" (a /24) and "a.b" (a /16).
 */
static int rules_cidr(struct entry *e, const char *s, int partial_ok, char *why, size_t whysz)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	size_t len = strlen(s);
	long bits = -1;

	/* Room for the longest address, "/128", and the ".0.0" a postgrey prefix gains. */
	if (len >= sizeof(buf)) {
		snprintf(why, whysz, "address too long");
		return -1;
	}
	memcpy(buf, s, len + 1);
	if ((slash = strchr(buf, '/')) != NULL) {
		char *end = slash + 1;

		*slash = '\0';
		/* Digits only: strtol would take "-1" (no prefix at all) or " 8". */
		bits = isdigit((unsigned char)slash[1]) ? strtol(slash + 1, &end, 10) : -1;
		if (bits < 0 || *end || end == slash + 1) {
			snprintf(why, whysz, "bad prefix length in '%.60s'", s);
			return -1;
		}
	}
	memset(e->net, 0, sizeof(e->net));
	e->kind = E_CIDR;
	if (strchr(buf, ':')) {
		e->family = AF_INET6;
		if (inet_pton(AF_INET6, buf, e->net) != 1) {
			snprintf(why, whysz, "bad IPv6 address '%.60s'", s);
			return -1;
		}
		if (bits < 0)
			bits = 128;
		if (bits > 128) {
			snprintf(why, whysz, "prefix length over 128 in '%.60s'", s);
			return -1;
		}
	} else {
		int dots = 0;

		for (const char *c = buf; *c; c++)
			dots += *c == '.';
		e->family = AF_INET;
		if (partial_ok && bits < 0 && (dots == 1 || dots == 2)) {
			/* postgrey: "192.0.2" is 192.0.2.0/24, "192.0" is /16. */
			const char *tail = dots == 2 ? ".0" : ".0.0";

			/*
			 * Checked, not assumed: "1." and 51 digits fits buf but not
			 * with the tail, and no IPv4 prefix is longer than 11 bytes.
			 */
			if (len + strlen(tail) >= sizeof(buf) || len > 11) {
				snprintf(why, whysz, "bad IPv4 address '%.60s'", s);
				return -1;
			}
			memcpy(buf + len, tail, strlen(tail) + 1);
			bits = dots == 2 ? 24 : 16;
		}
		if (inet_pton(AF_INET, buf, e->net) != 1) {
			snprintf(why, whysz, "bad IPv4 address '%.60s'", s);
			return -1;
		}
		if (bits < 0)
			bits = 32;
		if (bits > 32) {
			snprintf(why, whysz, "prefix length over 32 in '%.60s'", s);
			return -1;
		}
	}
	e->bits = (uint8_t)bits;
	/* Host bits must be zero, as Postfix requires: a typo otherwise hides. */
	for (int i = e->bits; i < (e->family == AF_INET ? 32 : 128); i++) {
		if (e->net[i / 8] & (0x80 >> (i % 8))) {
			snprintf(why, whysz, "'%.60s' has host bits set (network is not aligned)",
				 s);
			return -1;
		}
	}
	return 0;
}

static int rules_is_address(const char *s)
{
	for (; *s && *s != '/'; s++)
		if (!isxdigit((unsigned char)*s) && *s != '.' && *s != ':')
			return 0;
	return 1;
}

/* rules_postgrey_line - one postgrey whitelist entry (always OK). */
static int rules_postgrey_line(struct entry *e, char *s, char *why, size_t whysz)
{
	char *end = s;

	while (*end && !isspace((unsigned char)*end))
		end++;
	if (*s == '/')
		return rules_regexp_line(e, s, 0, why, whysz);
	*end = '\0';
	e->action = A_OK;
	/* A name made of digits and dots only would be an address: try that first. */
	if (rules_is_address(s) && strpbrk(s, ".:") != NULL &&
	    (strchr(s, ':') || !isalpha((unsigned char)s[strspn(s, "0123456789.")])))
		return rules_cidr(e, s, 1, why, whysz);
	e->kind = E_DOMAIN;
	for (char *c = s; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if ((e->text = strdup(s)) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	return 0;
}

/* rules_rcpt_line - postgrey whitelist_recipients: /re/, user@, user@dom, dom. */
static int rules_rcpt_line(struct entry *e, char *s, char *why, size_t whysz)
{
	char *end = s, *at;

	if (*s == '/')
		return rules_regexp_line(e, s, 0, why, whysz);
	while (*end && !isspace((unsigned char)*end))
		end++;
	*end = '\0';
	for (char *c = s; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	e->action = A_OK;
	at = strchr(s, '@');
	e->kind = at == NULL ? E_DOMAIN : at[1] == '\0' ? E_LOCAL : E_ADDR;
	if ((e->text = strdup(s)) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	return 0;
}

static void rules_entry_free(struct entry *e)
{
	if (e->re)
		pcre2_code_free(e->re);
	free(e->text);
}

static int rules_add(struct list *l, const struct entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct entry *grown = realloc(l->e, cap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		l->e = grown;
		l->cap = cap;
	}
	l->e[l->n++] = *e;
	return 0;
}

/*
 * rules_cidr_pattern - a cidr_table(5) pattern as Postfix reads it:
 * "net/len" or "net", "!" in front for "does not match" (Postfix 3.2),
 * and the address optionally in brackets, "[2001:db8::]/32" or
 * "[2001:db8::1]", as Postfix's other address lists write IPv6.
 */
static int rules_cidr_pattern(struct entry *e, char *pat, char *why, size_t whysz)
{
	char buf[INET6_ADDRSTRLEN + 8];

	if (*pat == '!') {
		e->negate = 1;
		pat++;
	}
	if (*pat == '[') {
		char *close = strchr(pat, ']');

		if (close == NULL) {
			snprintf(why, whysz, "missing ']' in '%.60s'", pat);
			return -1;
		}
		if (close[1] != '\0' && close[1] != '/') {
			snprintf(why, whysz, "garbage after ']' in '%.60s'", pat);
			return -1;
		}
		/* "[addr]/len" and "[addr/len]" both become "addr/len". */
		if (snprintf(buf, sizeof(buf), "%.*s%s", (int)(close - pat - 1), pat + 1,
			     close + 1) >= (int)sizeof(buf)) {
			snprintf(why, whysz, "address too long");
			return -1;
		}
		pat = buf;
	}
	return rules_cidr(e, pat, 0, why, whysz);
}

/* rules_parse_line - one logical line of list l into e. */
static int rules_parse_line(const struct list *l, struct entry *e, char *line, char *why,
			    size_t whysz)
{
	char *sp;

	switch (l->type) {
	case L_REGEXP:
		if (strncasecmp(line, "if ", 3) == 0 || strcasecmp(line, "endif") == 0) {
			snprintf(why, whysz, "if/endif blocks are not supported");
			return -1;
		}
		return rules_regexp_line(e, line, 1, why, whysz);
	case L_CIDR:
		for (sp = line; *sp && !isspace((unsigned char)*sp); sp++)
			;
		if (*sp == '\0') {
			snprintf(why, whysz, "missing action after '%.60s'", line);
			return -1;
		}
		*sp++ = '\0';
		while (isspace((unsigned char)*sp))
			sp++;
		if (rules_cidr_pattern(e, line, why, whysz) < 0)
			return -1;
		return rules_action(e, sp, why, whysz);
	case L_RCPT:
		return rules_rcpt_line(e, line, why, whysz);
	case L_POSTGREY:
		break;
	}
	return rules_postgrey_line(e, line, why, whysz);
}

/* rules_read - one list file (postgrey files have no continuation lines). */
static int rules_read(struct list *l, char *err, size_t errsz)
{
	FILE *fp = fopen(l->path, "r");
	struct lines lr;
	char why[256] = "", *line;
	int lineno, rc;

	if (fp == NULL) {
		snprintf(err, errsz, "%s: cannot open: %s", l->path, strerror(errno));
		return -1;
	}
	lines_init(&lr, fp, l->path, l->type == L_REGEXP || l->type == L_CIDR);
	while ((rc = lines_next(&lr, &line, &lineno, err, errsz)) > 0) {
		struct entry e;

		memset(&e, 0, sizeof(e));
		e.line = lineno;
		if (rules_parse_line(l, &e, line, why, sizeof(why)) < 0 || rules_add(l, &e) < 0) {
			rules_entry_free(&e);
			snprintf(err, errsz, "%s:%d: %s", l->path, lineno,
				 why[0] ? why : "out of memory");
			rc = -1;
			break;
		}
		why[0] = '\0';
	}
	lines_done(&lr);
	fclose(fp);
	return rc;
}

struct rules *rules_load(char *const *specs, int n, char *err, size_t errsz)
{
	struct rules *r = calloc(1, sizeof(*r));
	char why[256];

	if (r == NULL || (r->lists = calloc((size_t)n + 1, sizeof(*r->lists))) == NULL) {
		free(r);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	for (int i = 0; i < 7; i++) {
		r->s25r[i] = rules_compile(s25r_patterns[i], PCRE2_ZERO_TERMINATED, PCRE2_CASELESS,
					   why, sizeof(why));
		if (r->s25r[i] == NULL) {
			snprintf(err, errsz, "internal error: S25R r%d: %s", i, why);
			rules_free(&r);
			return NULL;
		}
	}
	r->white.path = strdup("store:white");
	r->md = pcre2_match_data_create(4, NULL);
	if (r->md == NULL || r->white.path == NULL) {
		snprintf(err, errsz, "out of memory");
		rules_free(&r);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		struct list *l = &r->lists[i];
		const char *colon = strchr(specs[i], ':');
		size_t tl = colon ? (size_t)(colon - specs[i]) : 0;

		r->nlists = i + 1;
		if (colon && tl == 6 && strncmp(specs[i], "regexp", 6) == 0)
			l->type = L_REGEXP;
		else if (colon && tl == 4 && strncmp(specs[i], "cidr", 4) == 0)
			l->type = L_CIDR;
		else if (colon && tl == 8 && strncmp(specs[i], "postgrey", 8) == 0)
			l->type = L_POSTGREY;
		else {
			snprintf(err, errsz,
				 "client list '%s': expected regexp:PATH, cidr:PATH or postgrey:PATH",
				 specs[i]);
			rules_free(&r);
			return NULL;
		}
		if ((l->path = strdup(colon + 1)) == NULL || rules_read(l, err, errsz) < 0) {
			if (l->path == NULL)
				snprintf(err, errsz, "out of memory");
			rules_free(&r);
			return NULL;
		}
	}
	return r;
}

static int rules_cidr_match(const struct entry *e, const struct sockaddr *sa)
{
	const unsigned char *a;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET && e->family == AF_INET)
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6 && e->family == AF_INET6)
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	else
		return 0;
	int full = e->bits / 8, rem = e->bits % 8;

	if (memcmp(a, e->net, (size_t)full) != 0)
		return 0;
	if (rem == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rem));

	return (a[full] & mask) == (e->net[full] & mask);
}

/* rules_domain_match - "example.com" matches itself and "*.example.com". */
static int rules_domain_match(const char *domain, const char *name)
{
	size_t dl = strlen(domain), nl = strlen(name);

	if (nl < dl || strcasecmp(name + nl - dl, domain) != 0)
		return 0;
	return nl == dl || name[nl - dl - 1] == '.';
}

static int rules_entry_match(const struct rules *r, const struct entry *e, const char *name,
			     const struct sockaddr *addr)
{
	int m = 0;

	switch (e->kind) {
	case E_REGEX:
		m = rules_match(r, e->re, name);
		return e->negate ? !m : m;
	case E_CIDR:
		/* "!net": every address outside net, the other family's too, as in Postfix. */
		m = rules_cidr_match(e, addr);
		return e->negate ? !m : m;
	case E_DOMAIN:
		return strcmp(name, "unknown") != 0 && rules_domain_match(e->text, name);
	case E_LOCAL: /* "user@": that local part at any domain */
		return strncasecmp(name, e->text, strlen(e->text)) == 0;
	case E_ADDR:
		return strcasecmp(name, e->text) == 0;
	}
	return 0;
}

int rules_s25r(const struct rules *r, const char *name)
{
	if (name == NULL || *name == '\0')
		name = "unknown";
	/* Never on an IP literal: S25R is about names. */
	if (name[0] == '[')
		name = "unknown";
	for (int i = 0; i < 7; i++)
		if (rules_match(r, r->s25r[i], name))
			return i;
	return -1;
}

/* rules_list_search - one list; 1 if it decided, 0 to go on. */
static int rules_list_search(const struct rules *r, const struct list *l, const char *name,
			     const struct sockaddr *addr, struct classification *out)
{
	for (size_t j = 0; j < l->n; j++) {
		const struct entry *e = &l->e[j];

		if (!rules_entry_match(r, e, name, addr))
			continue;
		if (e->action == A_DUNNO)
			return 0;
		if (e->action == A_WARN) {
			if (!out->warned)
				snprintf(out->warn, sizeof(out->warn), "list:%s:%d%s%s", l->path,
					 e->line, e->text ? " " : "", e->text ? e->text : "");
			out->warned = 1;
			continue;
		}
		if (e->line > 0)
			snprintf(out->reason, sizeof(out->reason), "list:%s:%d", l->path, e->line);
		else
			snprintf(out->reason, sizeof(out->reason), "list:%s:%s", l->path,
				 e->text ? e->text : "?");
		if (e->action == A_OK) {
			out->verdict = VERDICT_WHITE;
		} else if (e->action == A_SUSPECT) {
			out->verdict = VERDICT_SUSPECT;
		} else {
			out->verdict = VERDICT_BLACK;
			out->reply_code = e->code;
			snprintf(out->reply, sizeof(out->reply), "%s",
				 e->text ? e->text : "Access denied");
		}
		return 1;
	}
	return 0;
}

int rules_lists(const struct rules *r, const char *name, const struct sockaddr *addr,
		struct classification *out)
{
	memset(out, 0, sizeof(*out));
	if (name == NULL || *name == '\0')
		name = "unknown";
	if (rules_list_search(r, &r->white, name, addr, out))
		return 1;
	for (int i = 0; i < r->nlists; i++)
		if (rules_list_search(r, &r->lists[i], name, addr, out))
			return 1;
	return 0;
}

void rules_classify(const struct rules *r, const char *name, const struct sockaddr *addr,
		    struct classification *out)
{
	if (rules_lists(r, name, addr, out))
		return;
	if (name == NULL || *name == '\0')
		name = "unknown";
	int rule = rules_s25r(r, name);

	if (rule >= 0) {
		out->verdict = VERDICT_SUSPECT;
		snprintf(out->reason, sizeof(out->reason), "s25r:r%d", rule);
	} else {
		out->verdict = VERDICT_CLEAN;
		snprintf(out->reason, sizeof(out->reason), "s25r:none");
	}
}

int rules_white_add(struct rules *r, const char *entry, char *err, size_t errsz)
{
	char buf[LINES_MAX];
	struct entry e;

	if (entry[0] == '/' || entry[0] == '!' || strlen(entry) >= sizeof(buf) ||
	    strpbrk(entry, " \t\r\n") != NULL) {
		snprintf(err, errsz, "expected an address, a CIDR network or a domain");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", entry);
	memset(&e, 0, sizeof(e));
	if (rules_postgrey_line(&e, buf, err, errsz) < 0) {
		rules_entry_free(&e);
		return -1;
	}
	/* Operator entries carry their own text (the key) instead of a line. */
	if (e.text == NULL && (e.text = strdup(entry)) == NULL) {
		rules_entry_free(&e);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	rules_white_del(r, entry);
	if (rules_add(&r->white, &e) < 0) {
		rules_entry_free(&e);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

int rules_white_del(struct rules *r, const char *entry)
{
	for (size_t i = 0; i < r->white.n; i++) {
		if (r->white.e[i].text != NULL && strcasecmp(r->white.e[i].text, entry) == 0) {
			rules_entry_free(&r->white.e[i]);
			memmove(&r->white.e[i], &r->white.e[i + 1],
				(r->white.n - i - 1) * sizeof(struct entry));
			r->white.n--;
			return 1;
		}
	}
	return 0;
}

struct rules *rules_rcpt_load(char *const *paths, int n, char *err, size_t errsz)
{
	/* postgrey's default: the role addresses RFC 2142 wants reachable. */
	static const char *const builtin[] = {"postmaster@", "abuse@"};
	struct rules *r = rules_load(NULL, 0, err, errsz);

	if (r == NULL)
		return NULL;
	struct list *grown = realloc(r->lists, ((size_t)n + 1) * sizeof(*grown));

	if (grown == NULL) {
		snprintf(err, errsz, "out of memory");
		rules_free(&r);
		return NULL;
	}
	r->lists = grown;
	memset(r->lists, 0, ((size_t)n + 1) * sizeof(*grown));
	r->nlists = 1;
	r->lists[0].type = L_RCPT;
	if ((r->lists[0].path = strdup("builtin")) == NULL)
		goto oom;
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		struct entry e;

		memset(&e, 0, sizeof(e));
		e.kind = E_LOCAL;
		e.action = A_OK;
		e.line = (int)i + 1;
		if ((e.text = strdup(builtin[i])) == NULL || rules_add(&r->lists[0], &e) < 0) {
			free(e.text);
			goto oom;
		}
	}
	for (int i = 0; i < n; i++) {
		struct list *l = &r->lists[i + 1];

		r->nlists = i + 2;
		l->type = L_RCPT;
		if ((l->path = strdup(paths[i])) == NULL)
			goto oom;
		if (rules_read(l, err, errsz) < 0) {
			rules_free(&r);
			return NULL;
		}
	}
	return r;
oom:
	snprintf(err, errsz, "out of memory");
	rules_free(&r);
	return NULL;
}

int rules_rcpt_match(const struct rules *r, const char *rcpt, char *reason, size_t reasonsz)
{
	for (int i = 0; i < r->nlists; i++) {
		const struct list *l = &r->lists[i];

		for (size_t j = 0; j < l->n; j++) {
			const struct entry *e = &l->e[j];
			const char *at = strrchr(rcpt, '@');
			/* A domain entry matches the domain part, and its subdomains. */
			const char *subject = e->kind == E_DOMAIN ? (at ? at + 1 : "") : rcpt;

			if (rules_entry_match(r, e, subject, NULL)) {
				snprintf(reason, reasonsz, "rcpt:%s:%d", l->path, e->line);
				return 1;
			}
		}
	}
	return 0;
}

void rules_free(struct rules **rp)
{
	struct rules *r = *rp;

	*rp = NULL;
	if (r == NULL)
		return;
	for (int i = 0; i < r->nlists; i++) {
		for (size_t j = 0; j < r->lists[i].n; j++)
			rules_entry_free(&r->lists[i].e[j]);
		free(r->lists[i].e);
		free(r->lists[i].path);
	}
	free(r->lists);
	for (size_t j = 0; j < r->white.n; j++)
		rules_entry_free(&r->white.e[j]);
	free(r->white.e);
	free(r->white.path);
	for (int i = 0; i < 7; i++)
		if (r->s25r[i])
			pcre2_code_free(r->s25r[i]);
	if (r->md)
		pcre2_match_data_free(r->md);
	free(r);
}
