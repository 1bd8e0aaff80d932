/*
 * config.c - the parameter table and its file reader.
 *
 * Every parameter is declared exactly once in cfg_table below, with its
 * type, embedded default, bounds, and whether a reload (SIGHUP) may change
 * it. The reader, the -o overrides, the -n printer and the reload check are
 * all driven by that table, so a new parameter is one line.
 *
 * File syntax follows Postfix main.cf: "name = value"; lines whose first
 * non-blank character is '#' are comments; a line that starts with white
 * space continues the previous one. Times take a unit (s, m, h, d, w); a bare
 * number is seconds. Lists are separated by commas and/or white space.
 *
 * This module never logs and never exits: errors go back to the caller as
 * "FILE:LINE: message".
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lines.h"

enum cfg_type { T_STR, T_INT, T_TIME, T_ENUM, T_ADDR, T_ADDRLIST };

struct cfg_param {
	const char *name;
	enum cfg_type type;
	const char *def;
	long min, max;		 /* T_INT, T_TIME (seconds) */
	const char *const *enums; /* T_ENUM: NULL-terminated names */
	size_t off;		 /* offset of the field in struct cfg */
	int reloadable;
};

static const char *const proto_names[] = {"proxy2", "proxy1", "xclient", "none", NULL};
static const char *const action_names[] = {"pass", "inspect", NULL};
static const char *const logto_names[] = {"stderr", "syslog", NULL};
static const char *const mode_names[] = {"targrey", "starpit", "rgrey", "warn", NULL};
static const char *const key_names[] = {"auto", "net", "name", NULL};
static const char *const dnsfail_names[] = {"suspect", "pass", "tempfail", NULL};

#define F(field) offsetof(struct cfg, field)
#define DAY (24L * 3600)

static const struct cfg_param cfg_table[] = {
	{"myhostname", T_STR, "", 0, 0, NULL, F(myhostname), 1},
	{"smtp_listen", T_ADDRLIST, "127.0.0.1:2525", 0, 0, NULL, F(smtp_listen), 0},
	{"listen_backlog", T_INT, "0", 0, 65535, NULL, F(listen_backlog), 0},
	{"backend", T_ADDR, "127.0.0.1:25", 0, 0, NULL, F(backend), 1},
	{"backend_protocol", T_ENUM, "proxy2", 0, 0, proto_names, F(backend_protocol), 1},
	{"backend_timeout", T_TIME, "30s", 1, 600, NULL, F(backend_timeout), 1},
	{"default_action", T_ENUM, "pass", 0, 0, action_names, F(default_action), 1},
	{"smtp_timeout", T_TIME, "300s", 1, 3600, NULL, F(smtp_timeout), 1},
	{"relay_timeout", T_TIME, "10m", 10, DAY, NULL, F(relay_timeout), 1},
	{"smtp_error_limit", T_INT, "10", 1, 1000, NULL, F(smtp_error_limit), 1},
	{"max_connections", T_INT, "8000", 1, 1000000, NULL, F(max_connections), 1},
	{"shutdown_timeout", T_TIME, "30s", 0, DAY, NULL, F(shutdown_timeout), 1},
	{"state_dir", T_STR, "var", 0, 0, NULL, F(state_dir), 0},
	{"control_socket", T_STR, "control.sock", 0, 0, NULL, F(control_socket), 0},
	{"run_as", T_STR, "mxguard", 0, 0, NULL, F(run_as), 0},
	{"log_target", T_ENUM, "stderr", 0, 0, logto_names, F(log_target), 0},
	{"client_lists", T_STR, "", 0, 0, NULL, F(client_lists), 1},
	{"mode", T_ENUM, "targrey", 0, 0, mode_names, F(mode), 1},
	/* RFC 5321 gives a client 5 minutes for a RCPT reply: stay well below. */
	{"tarpit_delay", T_TIME, "125s", 1, 280, NULL, F(tarpit_delay), 1},
	{"greylist_delay", T_TIME, "30m", 0, DAY, NULL, F(greylist_delay), 1},
	{"greylist_retries", T_INT, "2", 0, 100, NULL, F(greylist_retries), 1},
	{"greylist_retry_window", T_TIME, "2d", 60, 30 * DAY, NULL, F(greylist_retry_window), 1},
	{"greylist_max_age", T_TIME, "35d", 60, 365 * DAY, NULL, F(greylist_max_age), 1},
	{"awl_count", T_INT, "5", 0, 1000, NULL, F(awl_count), 1},
	{"awl_interval", T_TIME, "1h", 0, DAY, NULL, F(awl_interval), 1},
	{"greylist_key", T_ENUM, "auto", 0, 0, key_names, F(greylist_key), 1},
	{"dns_resolvers", T_STR, "", 0, 0, NULL, F(dns_resolvers), 0},
	{"dns_timeout", T_TIME, "3s", 1, 30, NULL, F(dns_timeout), 0},
	{"dns_failure_action", T_ENUM, "suspect", 0, 0, dnsfail_names, F(dns_failure_action), 1},
	{"helo_lists", T_STR, "", 0, 0, NULL, F(helo_lists), 1},
	{"recipient_whitelist", T_STR, "", 0, 0, NULL, F(recipient_whitelist), 1},
	{"dnsbl_sites", T_STR, "", 0, 0, NULL, F(dnsbl_sites), 1},
	{"dnsbl_threshold", T_INT, "1", 1, 1000, NULL, F(dnsbl_threshold), 1},
	{"dnswl_threshold", T_INT, "-1", -1000, -1, NULL, F(dnswl_threshold), 1},
	{"sender_ns_lists", T_STR, "", 0, 0, NULL, F(sender_ns_lists), 1},
};
#define CFG_NPARAMS (sizeof(cfg_table) / sizeof(cfg_table[0]))

#define FIELD(cfg, p, type) ((type *)((char *)(cfg) + (p)->off))
#define CFIELD(cfg, p, type) ((const type *)((const char *)(cfg) + (p)->off))

static const struct cfg_param *cfg_find(const char *name)
{
	for (size_t i = 0; i < CFG_NPARAMS; i++)
		if (strcmp(cfg_table[i].name, name) == 0)
			return &cfg_table[i];
	return NULL;
}

/* cfg_time - "300", "300s", "5m", "2h", "1d", "1w" to seconds. */
static int cfg_time(const char *s, long *out)
{
	char *end;
	long v, mult = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = DAY;
		break;
	case 'w':
		mult = 7 * DAY;
		break;
	default:
		return -1;
	}
	if (*end && end[1] != '\0')
		return -1;
	if (v > LONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* cfg_set - parse value for parameter p into cfg. Returns 0, or -1 with err. */
static int cfg_set(struct cfg *cfg, const struct cfg_param *p, const char *value, char *err,
		   size_t errsz)
{
	long v;
	char *end;

	switch (p->type) {
	case T_STR: {
		char *copy = strdup(value);

		if (copy == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		if (strpbrk(copy, "\r\n")) {
			snprintf(err, errsz, "%s: line breaks are not allowed", p->name);
			free(copy);
			return -1;
		}
		free(*FIELD(cfg, p, char *));
		*FIELD(cfg, p, char *) = copy;
		return 0;
	}
	case T_INT:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0') {
			snprintf(err, errsz, "%s: bad number '%s'", p->name, value);
			return -1;
		}
		if (v < p->min || v > p->max) {
			snprintf(err, errsz, "%s: %ld is out of range %ld..%ld", p->name, v, p->min,
				 p->max);
			return -1;
		}
		*FIELD(cfg, p, int) = (int)v;
		return 0;
	case T_TIME:
		if (cfg_time(value, &v) < 0) {
			snprintf(err, errsz, "%s: bad time '%s' (expected e.g. 300s, 5m, 2h, 1d)",
				 p->name, value);
			return -1;
		}
		if (v < p->min || v > p->max) {
			snprintf(err, errsz, "%s: %lds is out of range %lds..%lds", p->name, v,
				 p->min, p->max);
			return -1;
		}
		*FIELD(cfg, p, int) = (int)v;
		return 0;
	case T_ENUM:
		for (int i = 0; p->enums[i]; i++) {
			if (strcmp(p->enums[i], value) == 0) {
				*FIELD(cfg, p, int) = i;
				return 0;
			}
		}
		{
			size_t o = (size_t)snprintf(err, errsz, "%s: bad value '%s' (expected",
						    p->name, value);
			for (int i = 0; p->enums[i] && o < errsz; i++)
				o += (size_t)snprintf(err + o, errsz - o, "%s %s",
						      i ? "," : "", p->enums[i]);
			if (o < errsz)
				snprintf(err + o, errsz - o, ")");
		}
		return -1;
	case T_ADDR: {
		char why[200];

		if (netaddr_parse(value, FIELD(cfg, p, struct netaddr), why, sizeof(why)) < 0) {
			snprintf(err, errsz, "%s: %s", p->name, why);
			return -1;
		}
		return 0;
	}
	case T_ADDRLIST: {
		struct netaddr *list = FIELD(cfg, p, struct netaddr);
		char buf[4096], why[200], *tok, *save = NULL;
		int n = 0;

		if (strlen(value) >= sizeof(buf)) {
			snprintf(err, errsz, "%s: value too long", p->name);
			return -1;
		}
		strcpy(buf, value);
		for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if (n == CFG_MAX_LISTEN) {
				snprintf(err, errsz, "%s: more than %d addresses", p->name,
					 CFG_MAX_LISTEN);
				return -1;
			}
			if (netaddr_parse(tok, &list[n], why, sizeof(why)) < 0) {
				snprintf(err, errsz, "%s: %s", p->name, why);
				return -1;
			}
			n++;
		}
		if (n == 0) {
			snprintf(err, errsz, "%s: at least one address is needed", p->name);
			return -1;
		}
		/* Only smtp_listen is a list today; its count lives beside it. */
		cfg->smtp_listen_n = n;
		return 0;
	}
	}
	snprintf(err, errsz, "%s: internal error: bad type", p->name);
	return -1;
}

/* cfg_assign - "name" and "value" (both trimmed) into cfg, with the table. */
static int cfg_assign(struct cfg *cfg, const char *name, const char *value, char *err,
		      size_t errsz)
{
	const struct cfg_param *p = cfg_find(name);

	if (p == NULL) {
		snprintf(err, errsz, "unknown parameter '%s'", name);
		return -1;
	}
	return cfg_set(cfg, p, value, err, errsz);
}

/* cfg_split - "name = value" in place; returns 0 or -1 with err. */
static int cfg_split(char *line, char **name, char **value, char *err, size_t errsz)
{
	char *eq = strchr(line, '=');

	if (eq == NULL) {
		snprintf(err, errsz, "missing '=' (expected 'name = value')");
		return -1;
	}
	*eq = '\0';
	*name = lines_trim(line);
	*value = lines_trim(eq + 1);
	if (**name == '\0') {
		snprintf(err, errsz, "missing parameter name before '='");
		return -1;
	}
	for (const char *c = *name; *c; c++) {
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_')) {
			snprintf(err, errsz, "bad parameter name '%.64s'", *name);
			return -1;
		}
	}
	return 0;
}

/* cfg_read_file - apply every logical line of fp; errors name the first line. */
static int cfg_read_file(struct cfg *cfg, FILE *fp, const char *path, char *err, size_t errsz)
{
	struct lines lr;
	char why[512], *line, *name, *value;
	int lineno, rc;

	lines_init(&lr, fp, path, 1);
	while ((rc = lines_next(&lr, &line, &lineno, err, errsz)) > 0) {
		if (cfg_split(line, &name, &value, why, sizeof(why)) < 0 ||
		    cfg_assign(cfg, name, value, why, sizeof(why)) < 0) {
			snprintf(err, errsz, "%s:%d: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	lines_done(&lr);
	return rc;
}

struct cfg *cfg_load(const char *path, int missing_ok, char *const *overrides, int noverrides,
		     char *err, size_t errsz)
{
	struct cfg *cfg = calloc(1, sizeof(*cfg));
	char why[512];

	if (cfg == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	cfg->refs = 1;
	for (size_t i = 0; i < CFG_NPARAMS; i++) {
		if (cfg_set(cfg, &cfg_table[i], cfg_table[i].def, why, sizeof(why)) < 0)
			goto bad_default;
	}
	if (path != NULL) {
		FILE *fp = fopen(path, "r");

		if (fp == NULL) {
			if (!(missing_ok && errno == ENOENT)) {
				snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
				goto fail;
			}
		} else {
			int rc = cfg_read_file(cfg, fp, path, err, errsz);

			fclose(fp);
			if (rc < 0)
				goto fail;
		}
	}
	for (int i = 0; i < noverrides; i++) {
		char copy[LINES_MAX + 1], *name, *value;

		snprintf(copy, sizeof(copy), "%s", overrides[i]);
		if (cfg_split(copy, &name, &value, why, sizeof(why)) < 0 ||
		    cfg_assign(cfg, name, value, why, sizeof(why)) < 0) {
			snprintf(err, errsz, "-o %s: %s", overrides[i], why);
			goto fail;
		}
	}
	if (cfg->state_dir[0] == '\0') {
		snprintf(err, errsz, "state_dir: must not be empty");
		goto fail;
	}
	if (cfg->myhostname[0] == '\0') {
		char host[256];

		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		free(cfg->myhostname);
		if ((cfg->myhostname = strdup(host)) == NULL)
			goto fail;
	}
	for (const char *c = cfg->myhostname; *c; c++) {
		if (!isgraph((unsigned char)*c)) {
			snprintf(err, errsz, "myhostname: '%s' is not a host name",
				 cfg->myhostname);
			goto fail;
		}
	}
	return cfg;

bad_default:
	snprintf(err, errsz, "internal error: bad default: %s", why);
fail:
	cfg_unref(&cfg);
	return NULL;
}

/* cfg_format - the canonical text of one parameter's value. */
static void cfg_format(const struct cfg *cfg, const struct cfg_param *p, char *buf, size_t bufsz)
{
	switch (p->type) {
	case T_STR:
		snprintf(buf, bufsz, "%s", *CFIELD(cfg, p, char *const));
		break;
	case T_INT:
		snprintf(buf, bufsz, "%d", *CFIELD(cfg, p, int));
		break;
	case T_TIME: {
		/* The largest exact unit: 35d reads better than 3024000s. */
		int v = *CFIELD(cfg, p, int);

		if (v > 0 && v % (int)DAY == 0)
			snprintf(buf, bufsz, "%dd", v / (int)DAY);
		else if (v > 0 && v % 3600 == 0)
			snprintf(buf, bufsz, "%dh", v / 3600);
		else if (v > 0 && v % 60 == 0)
			snprintf(buf, bufsz, "%dm", v / 60);
		else
			snprintf(buf, bufsz, "%ds", v);
		break;
	}
	case T_ENUM:
		snprintf(buf, bufsz, "%s", p->enums[*CFIELD(cfg, p, int)]);
		break;
	case T_ADDR:
		netaddr_format((const struct sockaddr *)&CFIELD(cfg, p, struct netaddr)->ss, buf,
			       bufsz);
		break;
	case T_ADDRLIST: {
		const struct netaddr *list = CFIELD(cfg, p, struct netaddr);
		size_t o = 0;

		buf[0] = '\0';
		for (int i = 0; i < cfg->smtp_listen_n && o < bufsz; i++) {
			char one[NETADDR_STRLEN];

			netaddr_format((const struct sockaddr *)&list[i].ss, one, sizeof(one));
			o += (size_t)snprintf(buf + o, bufsz - o, "%s%s", i ? ", " : "", one);
		}
		break;
	}
	}
}

void cfg_print(const struct cfg *cfg, FILE *fp)
{
	char buf[CFG_MAX_LISTEN * NETADDR_STRLEN + 64];

	for (size_t i = 0; i < CFG_NPARAMS; i++) {
		cfg_format(cfg, &cfg_table[i], buf, sizeof(buf));
		fprintf(fp, "%s = %s\n", cfg_table[i].name, buf);
	}
}

int cfg_keep_fixed(struct cfg *fresh, const struct cfg *old, void (*note)(const char *name))
{
	char a[CFG_MAX_LISTEN * NETADDR_STRLEN + 64], b[sizeof(a)], why[256];
	int n = 0;

	for (size_t i = 0; i < CFG_NPARAMS; i++) {
		const struct cfg_param *p = &cfg_table[i];

		if (p->reloadable)
			continue;
		cfg_format(old, p, a, sizeof(a));
		cfg_format(fresh, p, b, sizeof(b));
		if (strcmp(a, b) == 0)
			continue;
		/* Re-parsing the canonical text restores the old value exactly. */
		if (cfg_set(fresh, p, a, why, sizeof(why)) == 0) {
			note(p->name);
			n++;
		}
	}
	return n;
}

struct cfg *cfg_ref(struct cfg *cfg)
{
	cfg->refs++;
	return cfg;
}

void cfg_unref(struct cfg **cfgp)
{
	struct cfg *cfg = *cfgp;

	*cfgp = NULL;
	if (cfg == NULL || --cfg->refs > 0)
		return;
	for (size_t i = 0; i < CFG_NPARAMS; i++)
		if (cfg_table[i].type == T_STR)
			free(*FIELD(cfg, &cfg_table[i], char *));
	free(cfg);
}

int cfg_split_list(char *value, char **words, int max)
{
	char *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(value, ", \t", &save); tok && n < max;
	     tok = strtok_r(NULL, ", \t", &save))
		words[n++] = tok;
	return n;
}

void cfg_control_path(const struct cfg *cfg, char *buf, size_t bufsz)
{
	if (cfg->control_socket[0] == '/')
		snprintf(buf, bufsz, "%s", cfg->control_socket);
	else
		snprintf(buf, bufsz, "%s/%s", cfg->state_dir, cfg->control_socket);
}
