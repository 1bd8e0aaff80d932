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

enum cfg_type { T_STR, T_INT, T_TIME, T_MSEC, T_ENUM, T_ADDR, T_ADDRLIST };

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
static const char *const logto_names[] = {"stderr", "syslog", "journal", NULL};
static const char *const mode_names[] = {"targrey", "starpit", "rgrey", "warn", NULL};
static const char *const key_names[] = {"auto", "net", "name", NULL};
static const char *const dnsfail_names[] = {"suspect", "pass", "tempfail", NULL};
static const char *const yesno_names[] = {"no", "yes", NULL};
static const char *const firewall_names[] = {"none", "nftables", NULL};
static const char *const atksvc_names[] = {"known", "normal", NULL};
static const char *const atksmtp_names[] = {"suspect", "normal", NULL};
static const char *const polfail_names[] = {"defer", "dunno", NULL};

#define F(field) offsetof(struct cfg, field)
#define DAY (24L * 3600)

static const struct cfg_param cfg_table[] = {
	{"myhostname", T_STR, "", 0, 0, NULL, F(myhostname), 1},
	{"smtp_listen", T_ADDRLIST, "127.0.0.1:2525", 0, 0, NULL, F(smtp_listen), 0},
	{"listen_backlog", T_INT, "0", 0, 65535, NULL, F(listen_backlog), 0},
	/* Processes sharing the listeners (SO_REUSEPORT): a number, or auto (one per CPU). */
	{"workers", T_STR, "1", 0, 0, NULL, F(workers), 0},
	{"backend", T_ADDR, "127.0.0.1:25", 0, 0, NULL, F(backend), 1},
	{"backend_protocol", T_ENUM, "proxy2", 0, 0, proto_names, F(backend_protocol), 1},
	{"backend_timeout", T_TIME, "30s", 1, 600, NULL, F(backend_timeout), 1},
	{"default_action", T_ENUM, "pass", 0, 0, action_names, F(default_action), 1},
	{"smtp_timeout", T_TIME, "300s", 1, 3600, NULL, F(smtp_timeout), 1},
	{"relay_timeout", T_TIME, "10m", 10, DAY, NULL, F(relay_timeout), 1},
	/* Absolute bounds: trickling one byte at a time must not hold a slot. */
	{"dialogue_timeout", T_TIME, "10m", 10, DAY, NULL, F(dialogue_timeout), 1},
	{"relay_max_time", T_TIME, "2h", 0, 7 * DAY, NULL, F(relay_max_time), 1},
	{"survivor_timeout", T_TIME, "30s", 0, 3600, NULL, F(survivor_timeout), 1},
	/* Bytes queued in all relays together (Postfix style: a plain number). */
	{"relay_memory_limit", T_INT, "268435456", 1048576, 2147483647L, NULL,
	 F(relay_memory_limit), 1},
	{"smtp_error_limit", T_INT, "10", 1, 1000, NULL, F(smtp_error_limit), 1},
	{"max_connections", T_INT, "8000", 1, 1000000, NULL, F(max_connections), 1},
	{"shutdown_timeout", T_TIME, "30s", 0, DAY, NULL, F(shutdown_timeout), 1},
	{"state_dir", T_STR, "/var/lib/mxguard", 0, 0, NULL, F(state_dir), 0},
	{"control_socket", T_STR, "control.sock", 0, 0, NULL, F(control_socket), 0},
	{"run_as", T_STR, "mxguard", 0, 0, NULL, F(run_as), 0},
	{"log_target", T_ENUM, "stderr", 0, 0, logto_names, F(log_target), 0},
	{"client_lists", T_STR, "", 0, 0, NULL, F(client_lists), 1},
	{"mode", T_ENUM, "targrey", 0, 0, mode_names, F(mode), 1},
	/* RFC 5321 gives a client 5 minutes for a RCPT reply: stay well below. */
	{"tarpit_delay", T_TIME, "125s", 1, 280, NULL, F(tarpit_delay), 1},
	{"greylist_delay", T_TIME, "30m", 0, DAY, NULL, F(greylist_delay), 1},
	/* postscreen's pregreet test for suspects; 0: off (it delays their mail). */
	{"greet_wait", T_TIME, "0", 0, 60, NULL, F(greet_wait), 1},
	{"greylist_retries", T_INT, "2", 0, 100, NULL, F(greylist_retries), 1},
	{"greylist_retry_window", T_TIME, "2d", 60, 30 * DAY, NULL, F(greylist_retry_window), 1},
	{"greylist_max_age", T_TIME, "35d", 60, 365 * DAY, NULL, F(greylist_max_age), 1},
	{"awl_count", T_INT, "5", 0, 1000, NULL, F(awl_count), 1},
	{"awl_interval", T_TIME, "1h", 0, DAY, NULL, F(awl_interval), 1},
	{"greylist_key", T_ENUM, "auto", 0, 0, key_names, F(greylist_key), 1},
	/* A suspect whose sender domain's SPF passes is keyed "spf:<domain>". */
	{"greylist_spf", T_ENUM, "yes", 0, 0, yesno_names, F(greylist_spf), 1},
	{"dns_resolvers", T_STR, "", 0, 0, NULL, F(dns_resolvers), 0},
	{"dns_timeout", T_TIME, "3s", 1, 30, NULL, F(dns_timeout), 0},
	{"dns_failure_action", T_ENUM, "suspect", 0, 0, dnsfail_names, F(dns_failure_action), 1},
	{"helo_lists", T_STR, "", 0, 0, NULL, F(helo_lists), 1},
	{"recipient_whitelist", T_STR, "", 0, 0, NULL, F(recipient_whitelist), 1},
	{"dnsbl_sites", T_STR, "", 0, 0, NULL, F(dnsbl_sites), 1},
	{"dnsbl_threshold", T_INT, "1", 1, 1000, NULL, F(dnsbl_threshold), 1},
	{"dnswl_threshold", T_INT, "-1", -1000, -1, NULL, F(dnswl_threshold), 1},
	{"sender_ns_lists", T_STR, "", 0, 0, NULL, F(sender_ns_lists), 1},
	/* The shield: admission at accept. */
	{"allow_clients", T_STR, "127.0.0.1 ::1", 0, 0, NULL, F(allow_clients), 1},
	{"block_clients", T_STR, "", 0, 0, NULL, F(block_clients), 1},
	{"conn_per_source", T_INT, "50", 0, 1000000, NULL, F(conn_per_source), 1},
	{"conn_per_prefix", T_INT, "200", 0, 1000000, NULL, F(conn_per_prefix), 1},
	{"rate_per_source", T_INT, "0", 0, 1000000, NULL, F(rate_per_source), 1},
	{"rate_per_prefix", T_INT, "0", 0, 1000000, NULL, F(rate_per_prefix), 1},
	{"prefix_v4", T_INT, "24", 8, 32, NULL, F(prefix_v4), 0},
	{"prefix_v6", T_INT, "64", 16, 128, NULL, F(prefix_v6), 0},
	/* Mail from anywhere must reach port 25: no country filter by default. */
	{"smtp_countries", T_STR, "", 0, 0, NULL, F(smtp_countries), 1},
	{"smtp_bogus_check", T_ENUM, "no", 0, 0, yesno_names, F(smtp_bogus_check), 1},
	{"smtp_shield", T_ENUM, "yes", 0, 0, yesno_names, F(smtp_shield), 1},
	{"smtp_refuse_temp", T_STR, "421 4.7.0 Too many connections from your address, try again later",
	 0, 0, NULL, F(smtp_refuse_temp), 1},
	{"smtp_refuse_perm", T_STR, "554 5.7.1 Service refused to your address", 0, 0, NULL,
	 F(smtp_refuse_perm), 1},
	/* The detector and the attack policy. */
	{"flood_window", T_TIME, "10s", 1, 3600, NULL, F(flood_window), 1},
	{"flood_threshold", T_INT, "100", 2, 1000000, NULL, F(flood_threshold), 1},
	{"block_time", T_TIME, "10m", 1, 30 * DAY, NULL, F(block_time), 1},
	{"block_time_max", T_TIME, "1d", 1, 365 * DAY, NULL, F(block_time_max), 1},
	{"block_memory", T_TIME, "1d", 0, 365 * DAY, NULL, F(block_memory), 1},
	{"netblock_threshold", T_INT, "4", 0, 16, NULL, F(netblock_threshold), 1},
	{"ddos_window", T_TIME, "60s", 1, 3600, NULL, F(ddos_window), 1},
	{"ddos_threshold", T_INT, "500", 2, 100000000, NULL, F(ddos_threshold), 1},
	{"ddos_release", T_INT, "250", 1, 100000000, NULL, F(ddos_release), 1},
	{"ddos_quiet", T_TIME, "5m", 1, DAY, NULL, F(ddos_quiet), 1},
	{"attack_service_policy", T_ENUM, "known", 0, 0, atksvc_names, F(attack_service_policy), 1},
	{"attack_countries", T_STR, "", 0, 0, NULL, F(attack_countries), 1},
	{"attack_smtp_policy", T_ENUM, "suspect", 0, 0, atksmtp_names, F(attack_smtp_policy), 1},
	{"attack_limit_divisor", T_INT, "4", 1, 1000, NULL, F(attack_limit_divisor), 1},
	{"block_burst", T_INT, "10", 1, 1000000, NULL, F(block_burst), 1},
	/* Notices to the admin. */
	{"notify_recipient", T_STR, "", 0, 0, NULL, F(notify_recipient), 1},
	{"notify_sender", T_STR, "", 0, 0, NULL, F(notify_sender), 1},
	{"notify_relay", T_STR, "", 0, 0, NULL, F(notify_relay), 1},
	{"notify_command", T_STR, "", 0, 0, NULL, F(notify_command), 1},
	{"notify_interval", T_TIME, "10m", 0, DAY, NULL, F(notify_interval), 1},
	/* Kernel-level blocking, countries, SYN-flood awareness. */
	{"firewall", T_ENUM, "none", 0, 0, firewall_names, F(firewall), 0},
	{"firewall_table", T_STR, "mxguard", 0, 0, NULL, F(firewall_table), 0},
	/* Confinement of the network process (seccomp filter and Landlock). */
	{"seccomp", T_ENUM, "yes", 0, 0, yesno_names, F(seccomp), 0},
	{"geo_database", T_STR, "/usr/share/tor/geoip /usr/share/tor/geoip6", 0, 0, NULL,
	 F(geo_database), 0},
	{"synwatch_interval", T_TIME, "10s", 0, 3600, NULL, F(synwatch_interval), 1},
	/* Metrics and the shared store. */
	{"metrics_listen", T_STR, "", 0, 0, NULL, F(metrics_listen), 0},
	{"store", T_STR, "lmdb", 0, 0, NULL, F(store), 0},
	{"store_timeout", T_MSEC, "50ms", 1, 10000, NULL, F(store_timeout), 1},
	{"store_cache_size", T_INT, "100000", 0, 100000000, NULL, F(store_cache_size), 0},
	/* The Postfix policy service (policy.c): listeners fixed, answers reloadable. */
	{"policy_listen", T_STR, "", 0, 0, NULL, F(policy_listen), 0},
	{"policy_fail_action", T_ENUM, "defer", 0, 0, polfail_names, F(policy_fail_action), 1},
	{"policy_greylist_text", T_STR, "Greylisted, please try again later", 0, 0, NULL,
	 F(policy_greylist_text), 1},
	{"policy_prepend", T_ENUM, "no", 0, 0, yesno_names, F(policy_prepend), 1},
	/* Postfix closes an idle policy connection after 300s: outlast it. */
	{"policy_timeout", T_TIME, "330s", 1, 3600, NULL, F(policy_timeout), 1},
};
#define CFG_NPARAMS (sizeof(cfg_table) / sizeof(cfg_table[0]))
_Static_assert(CFG_NPARAMS <= CFG_PARAMS_MAX, "raise CFG_PARAMS_MAX in config.h");

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
	case T_MSEC:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || !(*end == '\0' || strcmp(end, "ms") == 0 ||
					       strcmp(end, "s") == 0)) {
			snprintf(err, errsz, "%s: bad time '%s' (expected e.g. 50ms, 2s)", p->name,
				 value);
			return -1;
		}
		if (*end == 's')
			v = v > LONG_MAX / 1000 ? LONG_MAX : v * 1000;
		if (v < p->min || v > p->max) {
			snprintf(err, errsz, "%s: %ldms is out of range %ldms..%ldms", p->name, v,
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

/* cfg_addrs - "a:p,b:p" into list (at most CFG_MAX_LISTEN). Returns the count or -1. */
static int cfg_addrs(const char *value, struct netaddr *list, char *err, size_t errsz)
{
	char buf[1024], why[200], *tok, *save = NULL;
	int n = 0;

	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) {
		snprintf(err, errsz, "address list too long");
		return -1;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == CFG_MAX_LISTEN) {
			snprintf(err, errsz, "more than %d addresses", CFG_MAX_LISTEN);
			return -1;
		}
		if (netaddr_parse(tok, &list[n], why, sizeof(why)) < 0) {
			snprintf(err, errsz, "%s", why);
			return -1;
		}
		n++;
	}
	return n;
}

/* cfg_word_enum - value among names (NULL-terminated); -1 if none. */
static int cfg_word_enum(const char *value, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], value) == 0)
			return i;
	return -1;
}

static const char *const refuse_names[] = {"rst", "close", NULL};

int cfg_service_parse(struct cfg_service *sv, const char *value, char *err, size_t errsz)
{
	static const char *const svc_proto_names[] = {"proxy2", "proxy1", "none", NULL};
	static const int svc_protos[] = {BACKEND_PROXY2, BACKEND_PROXY1, BACKEND_NONE};
	struct {
		const char *key;
		int *field;
	} limits[] = {
		{"conn_per_source", &sv->conn_per_source},
		{"conn_per_prefix", &sv->conn_per_prefix},
		{"rate_per_source", &sv->rate_per_source},
		{"rate_per_prefix", &sv->rate_per_prefix},
	};
	char buf[LINES_MAX + 1], *tok, *save = NULL;
	int have_backend = 0;

	snprintf(sv->group, sizeof(sv->group), "services");
	sv->nlisten = 0;
	sv->proxy = BACKEND_PROXY2;
	sv->bogus = 0;
	sv->shield = 1;
	sv->refuse = REFUSE_RST;
	sv->timeout = 3600;
	sv->conn_per_source = sv->conn_per_prefix = -1;
	sv->rate_per_source = sv->rate_per_prefix = -1;
	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) {
		snprintf(err, errsz, "value too long");
		return -1;
	}
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '='), *v, why[256];
		int e = 0;

		if (eq == NULL) {
			snprintf(err, errsz, "'%.64s': expected key=value", tok);
			return -1;
		}
		*eq = '\0';
		v = eq + 1;
		if (strcmp(tok, "listen") == 0) {
			if ((sv->nlisten = cfg_addrs(v, sv->listen, why, sizeof(why))) < 0) {
				snprintf(err, errsz, "listen: %s", why);
				return -1;
			}
		} else if (strcmp(tok, "backend") == 0) {
			if (netaddr_parse(v, &sv->backend, why, sizeof(why)) < 0) {
				snprintf(err, errsz, "backend: %s", why);
				return -1;
			}
			have_backend = 1;
		} else if (strcmp(tok, "proxy") == 0) {
			if ((e = cfg_word_enum(v, svc_proto_names)) < 0)
				goto bad_word;
			sv->proxy = svc_protos[e];
		} else if (strcmp(tok, "group") == 0) {
			if (*v == '\0' || strlen(v) >= sizeof(sv->group))
				goto bad_word;
			snprintf(sv->group, sizeof(sv->group), "%s", v);
		} else if (strcmp(tok, "countries") == 0) {
			char *copy = strdup(v);

			if (copy == NULL) {
				snprintf(err, errsz, "out of memory");
				return -1;
			}
			/* CC lists are comma separated inside one word. */
			for (char *c = copy; *c; c++)
				if (*c == ',')
					*c = ' ';
			free(sv->countries);
			sv->countries = copy;
		} else if (strcmp(tok, "bogus") == 0) {
			if ((sv->bogus = cfg_word_enum(v, yesno_names)) < 0)
				goto bad_word;
		} else if (strcmp(tok, "shield") == 0) {
			if ((sv->shield = cfg_word_enum(v, yesno_names)) < 0)
				goto bad_word;
		} else if (strcmp(tok, "refuse") == 0) {
			if ((sv->refuse = cfg_word_enum(v, refuse_names)) < 0)
				goto bad_word;
		} else if (strcmp(tok, "timeout") == 0) {
			long secs;

			if (cfg_time(v, &secs) < 0 || secs < 10 || secs > DAY)
				goto bad_word;
			sv->timeout = (int)secs;
		} else {
			size_t i;

			for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
				if (strcmp(tok, limits[i].key) == 0) {
					char *end;
					long n;

					errno = 0;
					n = strtol(v, &end, 10);
					if (errno || end == v || *end || n < 0 || n > 1000000)
						goto bad_word;
					*limits[i].field = (int)n;
					break;
				}
			}
			if (i == sizeof(limits) / sizeof(limits[0])) {
				snprintf(err, errsz, "unknown key '%.64s' (expected listen, backend, "
						     "proxy, group, countries, bogus, shield, refuse, timeout, "
						     "conn_per_source, conn_per_prefix, "
						     "rate_per_source, rate_per_prefix)",
					 tok);
				return -1;
			}
		}
		continue;
	bad_word:
		snprintf(err, errsz, "%s: bad value '%.64s'", tok, v);
		return -1;
	}
	if (sv->nlisten == 0 || !have_backend) {
		snprintf(err, errsz, "listen= and backend= are required");
		return -1;
	}
	return 0;
}

/* cfg_service_set - "service_NAME = value": add or replace service NAME. */
static int cfg_service_set(struct cfg *cfg, const char *name, const char *value, char *err,
			   size_t errsz)
{
	struct cfg_service fresh = {0}, *sv = NULL;
	char why[400];

	if (*name == '\0' || strlen(name) >= sizeof(fresh.name)) {
		snprintf(err, errsz, "service name must be 1 to %d characters",
			 CFG_NAME_MAX - 1);
		return -1;
	}
	for (int i = 0; i < cfg->nservices; i++)
		if (strcmp(cfg->services[i].name, name) == 0)
			sv = &cfg->services[i];
	if (sv == NULL && cfg->nservices == CFG_MAX_SERVICES) {
		snprintf(err, errsz, "more than %d services", CFG_MAX_SERVICES);
		return -1;
	}
	snprintf(fresh.name, sizeof(fresh.name), "%s", name);
	if (cfg_service_parse(&fresh, value, why, sizeof(why)) < 0) {
		free(fresh.countries);
		snprintf(err, errsz, "service_%s: %s", name, why);
		return -1;
	}
	if ((fresh.text = strdup(value)) == NULL) {
		free(fresh.countries);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (sv == NULL) {
		sv = &cfg->services[cfg->nservices++];
	} else {
		free(sv->text);
		free(sv->countries);
	}
	*sv = fresh;
	return 0;
}

/* cfg_assign - "name" and "value" (both trimmed) into cfg, with the table. */
static int cfg_assign(struct cfg *cfg, const char *name, const char *value, char *err,
		      size_t errsz)
{
	const struct cfg_param *p = cfg_find(name);

	if (p == NULL && strncmp(name, "service_", 8) == 0)
		return cfg_service_set(cfg, name + 8, value, err, errsz);
	if (p == NULL) {
		snprintf(err, errsz, "unknown parameter '%s'", name);
		return -1;
	}
	/* Marked even when the value equals the default: postconf -n shows it too. */
	cfg->explicit[p - cfg_table] = 1;
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
	cfg->file_params = 0;
	while ((rc = lines_next(&lr, &line, &lineno, err, errsz)) > 0) {
		if (cfg_split(line, &name, &value, why, sizeof(why)) < 0 ||
		    cfg_assign(cfg, name, value, why, sizeof(why)) < 0) {
			snprintf(err, errsz, "%s:%d: %s", path, lineno, why);
			rc = -1;
			break;
		}
		cfg->file_params++;
	}
	lines_done(&lr);
	return rc;
}

/*
 * cfg_covers - 1 if a connection to backend would reach listener: the same
 * address and port, or a wildcard listener of the backend's family on that
 * port (IPv6 listeners are IPV6_V6ONLY, see listen.c).
 */
static int cfg_covers(const struct netaddr *listener, const struct netaddr *backend)
{
	static const unsigned char any4[16] = {[10] = 0xff, [11] = 0xff};
	static const unsigned char any6[16];
	const struct sockaddr *l = &listener->ss.sa, *b = &backend->ss.sa;
	struct ipkey lk, bk;

	if (l->sa_family == 0 || b->sa_family == 0 || netaddr_port(l) != netaddr_port(b))
		return 0;
	netaddr_key(l, &lk);
	netaddr_key(b, &bk);
	if (memcmp(lk.b, bk.b, sizeof(lk.b)) == 0)
		return 1;
	if (l->sa_family == AF_INET && memcmp(lk.b, any4, sizeof(any4)) == 0)
		return netaddr_key_is_v4(&bk);
	if (l->sa_family == AF_INET6 && memcmp(lk.b, any6, sizeof(any6)) == 0)
		return !netaddr_key_is_v4(&bk);
	return 0;
}

/*
 * cfg_loop - the first listener that backend would reach ("service
 * NAME"/"smtp_listen" into *what), or NULL.
 */
static const struct netaddr *cfg_loop(const struct cfg *cfg, const struct netaddr *backend,
				      const char **what)
{
	for (int i = 0; i < cfg->smtp_listen_n; i++) {
		if (cfg_covers(&cfg->smtp_listen[i], backend)) {
			*what = "smtp_listen";
			return &cfg->smtp_listen[i];
		}
	}
	for (int s = 0; s < cfg->nservices; s++) {
		for (int i = 0; i < cfg->services[s].nlisten; i++) {
			if (cfg_covers(&cfg->services[s].listen[i], backend)) {
				*what = cfg->services[s].name; /* the service's listen= */
				return &cfg->services[s].listen[i];
			}
		}
	}
	return NULL;
}

/* l_prefix - how a listener's parameter name starts ("service_" for a service's). */
static const char *l_prefix(const struct cfg *cfg, const struct netaddr *l)
{
	return l >= cfg->smtp_listen && l < cfg->smtp_listen + CFG_MAX_LISTEN ? "" : "service_";
}

/*
 * cfg_check_loops - refuse a backend that is one of our own listeners: each
 * client would be handed to mxguard again, and again, until the descriptors
 * run out (one client fanned out into 300 self-connections).
 */
/*
 * cfg_workers - workers = N (1..CFG_MAX_WORKERS) or auto: one per online
 * CPU, within the same bound.
 */
static int cfg_workers(struct cfg *cfg, char *err, size_t errsz)
{
	long n;
	char *end;

	if (strcmp(cfg->workers, "auto") == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->nworkers = n < 1 ? 1 : n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (int)n;
		return 0;
	}
	errno = 0;
	n = strtol(cfg->workers, &end, 10);
	if (errno != 0 || end == cfg->workers || *end != '\0' || n < 1 || n > CFG_MAX_WORKERS) {
		snprintf(err, errsz, "workers: '%.40s' is not auto or a number from 1 to %d",
			 cfg->workers, CFG_MAX_WORKERS);
		return -1;
	}
	cfg->nworkers = (int)n;
	return 0;
}

int cfg_worker_share(const struct cfg *cfg, int total)
{
	int n = cfg->nworkers > 1 ? cfg->nworkers : 1;

	return total / n + (total % n != 0);
}

static int cfg_check_loops(const struct cfg *cfg, char *err, size_t errsz)
{
	char a[NETADDR_STRLEN], b[NETADDR_STRLEN];
	const struct netaddr *l;
	const char *what = "";

	if ((l = cfg_loop(cfg, &cfg->backend, &what)) != NULL) {
		snprintf(err, errsz,
			 "backend %s is mxguard's own listener %s (%s%s): each client would be "
			 "handed back to mxguard in a loop",
			 netaddr_format(&cfg->backend.ss.sa, a, sizeof(a)),
			 netaddr_format(&l->ss.sa, b, sizeof(b)), l_prefix(cfg, l), what);
		return -1;
	}
	for (int s = 0; s < cfg->nservices; s++) {
		const struct netaddr *be = &cfg->services[s].backend;

		if ((l = cfg_loop(cfg, be, &what)) != NULL) {
			snprintf(err, errsz,
				 "service_%s: backend %s is mxguard's own listener %s (%s%s): each "
				 "client would be handed back to mxguard in a loop",
				 cfg->services[s].name, netaddr_format(&be->ss.sa, a, sizeof(a)),
				 netaddr_format(&l->ss.sa, b, sizeof(b)), l_prefix(cfg, l), what);
			return -1;
		}
	}
	return 0;
}

int cfg_warnings(const struct cfg *cfg, void (*warn)(const char *text))
{
	int n = 0;

	if (cfg->backend_protocol == BACKEND_NONE) {
		warn("backend_protocol = none: the backend sees mxguard's own address as the "
		     "client's, and Postfix's default mynetworks (and any XCLIENT or relay "
		     "permission given to that address) then trusts every client: use proxy2, "
		     "proxy1 or xclient, or make sure the backend grants mxguard's address "
		     "nothing");
		n++;
	}
	return n;
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
	cfg->file_params = -1;
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
	/* It goes into every greeting and reply: a host name, and one that fits. */
	if (strlen(cfg->myhostname) > CFG_HOSTNAME_MAX) {
		snprintf(err, errsz, "myhostname: '%.40s...' is %zu bytes long (at most %d)",
			 cfg->myhostname, strlen(cfg->myhostname), CFG_HOSTNAME_MAX);
		goto fail;
	}
	for (const char *c = cfg->myhostname; *c; c++) {
		if (!isgraph((unsigned char)*c)) {
			snprintf(err, errsz, "myhostname: '%.64s' is not a host name",
				 cfg->myhostname);
			goto fail;
		}
	}
	if (cfg_workers(cfg, err, errsz) < 0 || cfg_check_loops(cfg, err, errsz) < 0)
		goto fail;
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
	case T_MSEC:
		snprintf(buf, bufsz, "%dms", *CFIELD(cfg, p, int));
		break;
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

void cfg_print(const struct cfg *cfg, FILE *fp, int all)
{
	char buf[LINES_MAX + 1]; /* a string value is at most a logical line */

	for (size_t i = 0; i < CFG_NPARAMS; i++) {
		if (!all && !cfg->explicit[i])
			continue;
		cfg_format(cfg, &cfg_table[i], buf, sizeof(buf));
		fprintf(fp, "%s = %s\n", cfg_table[i].name, buf);
	}
	for (int i = 0; i < cfg->nservices; i++)
		fprintf(fp, "service_%s = %s\n", cfg->services[i].name, cfg->services[i].text);
}

static void cfg_services_free(struct cfg *cfg)
{
	for (int i = 0; i < cfg->nservices; i++) {
		free(cfg->services[i].text);
		free(cfg->services[i].countries);
	}
	cfg->nservices = 0;
}

/* cfg_services_same - the same services, written the same way, in the same order. */
static int cfg_services_same(const struct cfg *a, const struct cfg *b)
{
	if (a->nservices != b->nservices)
		return 0;
	for (int i = 0; i < a->nservices; i++)
		if (strcmp(a->services[i].name, b->services[i].name) != 0 ||
		    strcmp(a->services[i].text, b->services[i].text) != 0)
			return 0;
	return 1;
}

int cfg_keep_fixed(struct cfg *fresh, const struct cfg *old, void (*note)(const char *name))
{
	char a[LINES_MAX + 1], b[sizeof(a)], why[256];
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
	/* Services own listening sockets: they change only with a restart. */
	if (!cfg_services_same(fresh, old)) {
		cfg_services_free(fresh);
		for (int i = 0; i < old->nservices; i++)
			if (cfg_service_set(fresh, old->services[i].name, old->services[i].text, why,
					    sizeof(why)) < 0)
				break;
		note("service_*");
		n++;
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
	cfg_services_free(cfg);
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
