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
#define CFG_MAX_SERVICES 16
#define CFG_MAX_WORKERS 64
#define CFG_NAME_MAX 32
#define CFG_PARAMS_MAX 128 /* room in struct cfg's explicit[] (config.c checks) */

enum backend_proto { BACKEND_PROXY2, BACKEND_PROXY1, BACKEND_XCLIENT, BACKEND_NONE };
enum default_action { ACTION_PASS, ACTION_INSPECT };
enum engine_mode { MODE_TARGREY, MODE_STARPIT, MODE_RGREY, MODE_WARN };
enum grey_keying { KEY_AUTO, KEY_NET, KEY_NAME };
enum dns_failure { DNSFAIL_SUSPECT, DNSFAIL_PASS, DNSFAIL_TEMPFAIL };
enum refuse_how { REFUSE_RST, REFUSE_CLOSE };
enum firewall_kind { FIREWALL_NONE, FIREWALL_NFTABLES };
enum attack_svc_policy { ATTACK_SVC_KNOWN, ATTACK_SVC_NORMAL };
enum attack_smtp_policy { ATTACK_SMTP_SUSPECT, ATTACK_SMTP_NORMAL };
enum policy_fail { POLICY_FAIL_DEFER, POLICY_FAIL_DUNNO };

/*
 * A guarded non-SMTP service ("service_NAME = listen=... backend=... ..."):
 * accepted, admitted, then relayed to its backend with a PROXY header or
 * none. Limits left at -1 take the global value.
 */
struct cfg_service {
	char name[CFG_NAME_MAX];
	char group[CFG_NAME_MAX];  /* detector group; default "services" */
	char *text;		   /* the value as written (for -n and reload) */
	struct netaddr listen[CFG_MAX_LISTEN];
	int nlisten;
	struct netaddr backend;
	int proxy;		   /* BACKEND_PROXY2, BACKEND_PROXY1 or BACKEND_NONE */
	char *countries;	   /* "CC !CC ..." or NULL: no country filter */
	int bogus;		   /* refuse RFC 6890 special-purpose sources */
	int shield;		   /* dynamic blocks and attack policy apply */
	int refuse;		   /* enum refuse_how */
	int timeout;		   /* idle seconds in the relay (IMAP IDLE: 29 min) */
	int conn_per_source, conn_per_prefix, rate_per_source, rate_per_prefix;
};

/*
 * A loaded configuration. Reference counted: a reload installs a new one
 * while connections that started under the old one keep theirs.
 */
struct cfg {
	int refs;
	int file_params; /* parameters the file set (0: empty); -1: no file read */
	unsigned char explicit[CFG_PARAMS_MAX]; /* by table index: set by the file or -o */
	char *myhostname;
	struct netaddr smtp_listen[CFG_MAX_LISTEN];
	int smtp_listen_n;
	int listen_backlog;
	char *workers;	 /* "N" or "auto", as written */
	int nworkers;	 /* processes serving the listeners (1..CFG_MAX_WORKERS) */
	struct netaddr backend;
	int backend_protocol; /* enum backend_proto */
	int backend_timeout;  /* seconds */
	int default_action;   /* enum default_action */
	int smtp_timeout;
	int relay_timeout;
	int dialogue_timeout;	/* seconds from accept to hand-off, at most */
	int relay_max_time;	/* seconds of an SMTP relay, at most; 0: no bound */
	int survivor_timeout;	/* a tarpit survivor's first bytes after hand-off */
	int relay_memory_limit; /* bytes queued in all relays together */
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
	int greet_wait;		   /* seconds a suspect's final 220 is held; 0: off */
	int greylist_retries;
	int greylist_retry_window;
	int greylist_max_age;
	int awl_count;
	int awl_interval;	   /* at most one counted success per interval */
	int greylist_key;	   /* enum grey_keying */
	int greylist_spf;	   /* key by "spf:<domain>" when SPF passes (grey.c) */
	char *dns_resolvers;	   /* "ip[:port] ..." or empty: resolv.conf */
	int dns_timeout;	   /* seconds per attempt */
	int dns_failure_action;	   /* enum dns_failure */
	char *helo_lists;	   /* "regexp:PATH ..." on the HELO name */
	char *recipient_whitelist; /* postgrey whitelist_recipients files */
	char *dnsbl_sites;	   /* postscreen syntax: domain[=filter][*weight] */
	int dnsbl_threshold;	   /* score >= this: black */
	int dnswl_threshold;	   /* score <= this (and < 0): white */
	char *sender_ns_lists;	   /* lists on the NS names of the sender domain */
	/* The shield: admission at accept (shield.c, shield_lists.c, srclimit.c, block.c). */
	struct cfg_service services[CFG_MAX_SERVICES];
	int nservices;
	char *allow_clients;	   /* never blocked, never limited */
	char *block_clients;	   /* static blocks: addresses, CIDRs, cidr:PATH */
	int conn_per_source;	   /* concurrent connections; 0: no limit */
	int conn_per_prefix;
	int rate_per_source;	   /* connections per minute; 0: no limit */
	int rate_per_prefix;
	int prefix_v4;		   /* prefix length of a "network" */
	int prefix_v6;
	char *smtp_countries;	   /* country filter on SMTP listeners (default none) */
	int smtp_bogus_check;
	int smtp_shield;
	char *smtp_refuse_temp;	   /* reply to a limited or blocked SMTP client */
	char *smtp_refuse_perm;	   /* reply to a statically refused SMTP client */
	/* The detector (detect.c) and the attack policy (shield_attack.c). */
	int flood_window;	   /* one-source window, seconds */
	int flood_threshold;	   /* attempts in flood_window that block */
	int block_time;		   /* first block; doubles per repeat */
	int block_time_max;
	int block_memory;	   /* how long an offence counts as a repeat */
	int netblock_threshold;	   /* addresses of a network blocked: block it (0: never) */
	int ddos_window;
	int ddos_threshold;	   /* distinct sources per group: attack */
	int ddos_release;	   /* below this: converging */
	int ddos_quiet;		   /* converging this long: normal */
	int attack_service_policy; /* enum attack_svc_policy */
	char *attack_countries;	   /* countries still admitted to services */
	int attack_smtp_policy;	   /* enum attack_smtp_policy */
	int attack_limit_divisor;  /* limits are divided by this in an attack */
	int block_burst;	   /* blocks within a minute that make a notice */
	/* Notices (notify.c). */
	char *notify_recipient;	   /* empty: notices only in the log */
	char *notify_sender;	   /* empty: mxguard@myhostname */
	char *notify_relay;	   /* "ip:port"; empty: the backend */
	char *notify_command;	   /* executed without a shell */
	int notify_interval;	   /* at most one notice per kind per interval */
	/* Kernel-level blocking (fw_nft.c) and SYN-flood awareness. */
	int firewall;		   /* enum firewall_kind */
	char *firewall_table;
	int seccomp;		   /* confine the network process (sandbox.c) */
	char *geo_database;	   /* tor geoip files or one .mmdb */
	int synwatch_interval;	   /* seconds; 0: off */
	/* Metrics and the shared store. */
	char *metrics_listen;	   /* "ip:port"; empty: off */
	char *store;		   /* "lmdb" or "redis://..." */
	int store_timeout;	   /* milliseconds */
	int store_cache_size;	   /* records kept locally for a Redis outage */
	/* The Postfix policy service (policy.c). */
	char *policy_listen;	   /* "host:port unix:PATH ..."; empty: off */
	int policy_fail_action;	   /* enum policy_fail: store or DNS failure */
	char *policy_greylist_text; /* the text after DEFER_IF_PERMIT */
	int policy_prepend;	   /* PREPEND X-Greylist: on a suspect's pass */
	int policy_timeout;	   /* idle seconds of a policy connection */
};

/*
 * cfg_load - build a configuration from the embedded defaults, then the file
 * at path (skipped when path is NULL, or when it does not exist and
 * missing_ok is set), then the "name=value" overrides. Returns a new
 * configuration with one reference, or NULL with "FILE:LINE: message" (or
 * "-o name=value: message") in err. Besides each value, the whole is
 * checked: myhostname at most CFG_HOSTNAME_MAX bytes of printable ASCII,
 * and no backend that is one of mxguard's own listeners.
 */
struct cfg *cfg_load(const char *path, int missing_ok, char *const *overrides, int noverrides,
		     char *err, size_t errsz);

/* The longest myhostname: a DNS name in text form (RFC 1035 2.3.4). */
#define CFG_HOSTNAME_MAX 253

/*
 * cfg_warnings - call warn() once for each setting that is valid but
 * dangerous (backend_protocol = none: the backend sees mxguard's address,
 * which Postfix's default mynetworks trusts). Returns how many.
 */
int cfg_warnings(const struct cfg *cfg, void (*warn)(const char *text));

/*
 * cfg_print - the effective configuration, one "name = value" per line, in
 * the table's order: every parameter when all is set (mxguard -n -a), else
 * only those the file or an -o override set, as postconf -n does (services
 * are always printed: they have no default).
 */
void cfg_print(const struct cfg *cfg, FILE *fp, int all);

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

/*
 * cfg_service_parse - the value of a service_NAME parameter into sv (name
 * set by the caller). Returns 0, or -1 with a message in err.
 */
int cfg_service_parse(struct cfg_service *sv, const char *value, char *err, size_t errsz);

/* cfg_control_path - the control socket path (relative names under state_dir). */
void cfg_control_path(const struct cfg *cfg, char *buf, size_t bufsz);

/*
 * cfg_worker_share - one worker's share of a host-wide bound (total over
 * the workers, rounded up): max_connections with workers = N.
 */
int cfg_worker_share(const struct cfg *cfg, int total);

#endif
