/*
 * config.h - mxguard's parameters: one declarative table, a Postfix-like
 * "name = value" file reader, -o overrides, and printing of the effective
 * configuration (mxguard -n).
 */
#ifndef MXG_CONFIG_H
#define MXG_CONFIG_H

#include <stdio.h>

#include "log.h"
#include "netaddr.h"

#define CFG_MAX_LISTEN 16

enum backend_proto { BACKEND_PROXY2, BACKEND_PROXY1, BACKEND_XCLIENT, BACKEND_NONE };
enum default_action { ACTION_PASS, ACTION_INSPECT };
enum engine_mode { MODE_TARGREY, MODE_STARPIT, MODE_RGREY, MODE_WARN };
enum grey_keying { KEY_AUTO, KEY_NET, KEY_NAME };
enum dns_failure { DNSFAIL_SUSPECT, DNSFAIL_PASS, DNSFAIL_TEMPFAIL };

/*
 * A loaded configuration. Reference counted: a reload installs a new one
 * while connections that started under the old one keep theirs.
 */
struct cfg {
	int refs;
	char *myhostname;
	struct netaddr smtp_listen[CFG_MAX_LISTEN];
	int smtp_listen_n;
	int listen_backlog;
	struct netaddr backend;
	int backend_protocol; /* enum backend_proto */
	int backend_timeout;  /* seconds */
	int default_action;   /* enum default_action */
	int smtp_timeout;
	int relay_timeout;
	int smtp_error_limit;
	int max_connections;
	int shutdown_timeout;
	char *state_dir;
	char *control_socket;
	char *run_as;
	int log_target; /* enum log_target */
	char *client_lists; /* "regexp:PATH, cidr:PATH, postgrey:PATH" */
	/* The taRgrey engine (default_action = inspect). */
	int mode;		   /* enum engine_mode */
	int tarpit_delay;	   /* seconds */
	int greylist_delay;
	int greylist_retries;
	int greylist_retry_window;
	int greylist_max_age;
	int awl_count;
	int awl_interval;	   /* at most one counted success per interval */
	int greylist_key;	   /* enum grey_keying */
	char *dns_resolvers;	   /* "ip[:port] ..." or empty: resolv.conf */
	int dns_timeout;	   /* seconds per attempt */
	int dns_failure_action;	   /* enum dns_failure */
	char *helo_lists;	   /* "regexp:PATH ..." on the HELO name */
	char *recipient_whitelist; /* postgrey whitelist_recipients files */
	char *dnsbl_sites;	   /* postscreen syntax: domain[=filter][*weight] */
	int dnsbl_threshold;	   /* score >= this: black */
	int dnswl_threshold;	   /* score <= this (and < 0): white */
	char *sender_ns_lists;	   /* lists on the NS names of the sender domain */
};

/*
 * cfg_load - build a configuration from the embedded defaults, then the file
 * at path (skipped when path is NULL, or when it does not exist and
 * missing_ok is set), then the "name=value" overrides. Returns a new
 * configuration with one reference, or NULL with "FILE:LINE: message" (or
 * "-o name=value: message") in err.
 */
struct cfg *cfg_load(const char *path, int missing_ok, char *const *overrides, int noverrides,
		     char *err, size_t errsz);

/* cfg_print - the effective configuration, one "name = value" per parameter. */
void cfg_print(const struct cfg *cfg, FILE *fp);

/*
 * cfg_keep_fixed - for a reload: every parameter that cannot change without
 * a restart and differs between old and fresh is reset in fresh to the old
 * value, and its name passed to note(). Returns how many were reset.
 */
int cfg_keep_fixed(struct cfg *fresh, const struct cfg *old, void (*note)(const char *name));

struct cfg *cfg_ref(struct cfg *cfg);
/* cfg_unref - drop one reference; frees on the last; sets *cfgp to NULL. */
void cfg_unref(struct cfg **cfgp);

/*
 * cfg_split_list - split a list value (commas and/or white space) in place
 * into at most max words. Returns the number of words.
 */
int cfg_split_list(char *value, char **words, int max);

/* cfg_control_path - the control socket path (relative names under state_dir). */
void cfg_control_path(const struct cfg *cfg, char *buf, size_t bufsz);

#endif
