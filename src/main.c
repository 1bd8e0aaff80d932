/*
 * NAME
 *	mxguard - front-line guard for Internet mail servers
 * SYNOPSIS
 *	mxguard [-c file] [-o name=value]... [-n [-a]] [-V] [-h]
 * DESCRIPTION
 *	main.c starts the daemon: configuration, listening sockets and the
 *	state directory while still privileged, then the privilege drop,
 *	then one event loop until SIGTERM. SIGHUP reloads the configuration
 *	without touching a connection.
 *	-n runs start-up's checks of the configuration (mxg_check) with
 *	start-up's own functions, and prints the parameters set (-a: all).
 * DIAGNOSTICS
 *	Configuration and environment errors are fatal at start (exit 1)
 *	and leave the running configuration in place on reload. -n exits 1
 *	with the message start-up would give.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "mxg_build.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "conn.h"
#include "control.h"
#include "fw.h"
#include "grey.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "mxguard.h"
#include "notify.h"
#include "policy.h"
#include "probe.h"
#include "relay.h"
#include "sandbox.h"
#include "service.h"
#include "shield.h"
#include "smtp.h"
#include "store.h"
#include "synwatch.h"
#include "worker.h"
#include "wshm.h"

#define MAX_OVERRIDES 64
/* Descriptors kept free of clients: listeners, control, metrics, store, DNS, helpers. */
#define MXG_FD_RESERVE 64

static void mxg_notify(const char *state)
{
#if HAVE_SYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

/* usage - to stdout with status 0 when asked for (-h, --help), else to stderr with 2. */
static void usage(FILE *fp, int status)
{
	fprintf(fp, "usage: mxguard [-c file] [-o name=value]... [-n [-a]] [-V] [-h]\n"
		    "  -c file        configuration file (default " MXG_DEFAULT_CONFIG ")\n"
		    "  -o name=value  override a parameter (repeatable)\n"
		    "  -n             check the configuration as start-up does (lists,\n"
		    "                 addresses, run_as, store, DNSBL filters), print the\n"
		    "                 parameters it sets (like postconf -n) and exit\n"
		    "  -a             with -n: print every parameter, defaults included\n"
		    "  -V             print the version and exit\n"
		    "  -h, --help     print this help and exit\n");
	exit(status);
}

static void mxg_note_fixed(const char *name)
{
	log_warn("reload: %s changed; it takes effect only after a restart", name);
}

static void mxg_check_warn(const char *text)
{
	fprintf(stderr, "mxguard: warning: %s\n", text);
}

static void mxg_log_warn(const char *text)
{
	log_warn("%s", text);
}

int mxg_reload(struct mxg *mxg, char *err, size_t errsz)
{
	struct cfg *fresh = cfg_load(mxg->cfg_path, mxg->cfg_missing_ok, mxg->overrides,
				     mxg->noverrides, err, errsz);

	if (fresh == NULL) {
		log_warn("reload failed, keeping the running configuration: %s", err);
		return -1;
	}
	/*
	 * A file caught while an editor or a deployment rewrites it is often
	 * empty: read as such it would silently bring back every default (the
	 * backend, myhostname, the lists). Nobody means that by a reload.
	 */
	if (fresh->file_params == 0 || (fresh->file_params < 0 && mxg->cfg->file_params >= 0)) {
		snprintf(err, errsz, "%s %s", mxg->cfg_path,
			 fresh->file_params == 0 ? "sets no parameter (empty or truncated?)"
						 : "has gone");
		log_warn("reload refused, keeping the running configuration: %s", err);
		cfg_unref(&fresh);
		return -1;
	}
	/* Prepared first: the engine commits to fresh when it accepts it. */
	if (shield_prepare(mxg, fresh, err, errsz) < 0 ||
	    (mxg->engine != NULL && grey_reload(mxg->engine, fresh, err, errsz) < 0)) {
		shield_abort(mxg);
		log_warn("reload failed, keeping the running configuration: %s", err);
		cfg_unref(&fresh);
		return -1;
	}
	mxg_notify("RELOADING=1");
	cfg_keep_fixed(fresh, mxg->cfg, mxg_note_fixed);
	shield_commit(mxg, fresh);
	/* Live connections keep their own reference to the old one. */
	cfg_unref(&mxg->cfg);
	mxg->cfg = fresh;
	probe_kick(mxg->probe);
	log_info("reloaded configuration from %s",
		 mxg->cfg_path ? mxg->cfg_path : "embedded defaults");
	mxg_notify("READY=1");
	return 0;
}

/* mxg_verdict_counted - a connection's first verdict, in its listener's counters. */
static void mxg_verdict_counted(struct conn *c, int verdict)
{
	/* A policy request has no listener of its own: the engine's totals count it. */
	if (c->lst != NULL)
		c->lst->stats.verdicts[verdict]++;
}

/* mxg_decided - a decision goes to the dialogue, or to the policy service that asked. */
static void mxg_decided(struct conn *c, int outcome, const char *reply)
{
	if (policy_is_request(c))
		policy_decided(c, outcome, reply);
	else
		smtp_decided(c, outcome, reply);
}

/* mxg_lost - a decision that could not be queued: its owner ends the connection. */
static void mxg_lost(struct conn *c)
{
	if (policy_is_request(c))
		policy_lost(c);
	else
		conn_close(c, END_CLIENT_ERROR);
}

/* What the engine reports to the layers above it (grey.h). */
static const struct grey_hooks mxg_grey_hooks = {
    .decided = mxg_decided,
    .greet_settled = smtp_greet_settled,
    .name_known = handoff_name_known,
    .counted = mxg_verdict_counted,
    .lost = mxg_lost,
};

static void mxg_fw_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mxg *mxg = arg;

	fw_poll(mxg->fw);
	/* After the helper's death its descriptor is gone: stop watching it. */
	if (fw_fd(mxg->fw) < 0)
		event_del(event_base_get_running_event(mxg->base));
}

static void mxg_hup_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[512];

	mxg_reload(arg, err, sizeof(err));
}

static void mxg_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mxg *mxg = arg;

	log_warn("shutdown_timeout reached: closing %d remaining connections", mxg->nconns);
	conn_kill_all(mxg);
	event_base_loopexit(mxg->base, NULL);
}

static void mxg_term_cb(evutil_socket_t sig, short what, void *arg)
{
	struct mxg *mxg = arg;
	struct timeval tv = {mxg->cfg->shutdown_timeout, 0};

	if (mxg->stopping)
		return;
	mxg->stopping = 1;
	mxg_notify("STOPPING=1");
	log_info("stopping on signal %d: %d connections to finish within %ds", (int)sig,
		 mxg->nconns, mxg->cfg->shutdown_timeout);
	listen_close(mxg);
	policy_close(mxg);
	control_close(&mxg->control);
	conn_shutdown_all(mxg);
	event_base_once(mxg->base, -1, EV_TIMEOUT, mxg_deadline_cb, mxg, &tv);
	conn_maybe_exit(mxg);
}

/*
 * mxg_can_write - may uid:gid create files in dir? Asked with their
 * filesystem ids (which also leave root's file capabilities aside).
 */
static int mxg_can_write(const char *dir, uid_t uid, gid_t gid)
{
	gid_t ogid = (gid_t)setfsgid(gid);
	uid_t ouid = (uid_t)setfsuid(uid);
	int rc = faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS);

	setfsuid(ouid);
	setfsgid(ogid);
	return rc;
}

/*
 * mxg_mkdirs - mkdir -p; when we are root, the last directory is handed to
 * uid/gid only if this call created it. An existing directory is used as it
 * is: it may be shared (a root-owned 1777 one) and is the admin's to set up,
 * so it is an error at start if uid:gid cannot write it.
 */
static int mxg_mkdirs(const char *path, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	char buf[1024];
	int created = 0;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		snprintf(err, errsz, "%.200s: path too long", path);
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		created = mkdir(buf, 0750) == 0;
		if (!created && errno != EEXIST) {
			snprintf(err, errsz, "cannot create directory %.200s: %s", buf,
				 strerror(errno));
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	if (created && getuid() == 0 && chown(path, uid, gid) < 0) {
		snprintf(err, errsz, "chown %.200s: %s", path, strerror(errno));
		return -1;
	}
	if (!created && mxg_can_write(path, uid, gid) < 0) {
		snprintf(err, errsz,
			 "%.200s: not writable by uid %lu (run_as): %s; mxguard hands over only the"
			 " directories it creates: chown this one or remove it",
			 path, (unsigned long)uid, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * mxg_raise_nofile - raise the descriptor limit to its hard limit, and set
 * mxg->conn_cap, the clients the limit can carry: every client in the
 * relay costs two descriptors, and MXG_FD_RESERVE (listeners, the control
 * and metrics sockets, the store, DNS, the helpers; the policy service's
 * connections when it is on) must stay free. Past the cap a client is
 * refused at accept (overload, 421), instead of the process running out of
 * descriptors: then every accept fails, the control socket's included, and
 * the operator loses mxguardctl when it is most needed.
 */
static void mxg_raise_nofile(struct mxg *mxg)
{
	const struct cfg *cfg = mxg->cfg;
	struct rlimit rl;
	rlim_t reserve = MXG_FD_RESERVE + (cfg->policy_listen[0] != '\0' ? POLICY_MAX_CONNS : 0);

	mxg->conn_cap = INT_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return;
	mxg->conn_cap = rl.rlim_cur > reserve + 2 ? (int)((rl.rlim_cur - reserve) / 2) : 1;
	/* With workers each process has the limit, and serves its share. */
	int share = cfg_worker_share(cfg, cfg->max_connections);

	if (share > mxg->conn_cap)
		log_warn("max_connections = %d (%d per process) needs about %llu descriptors, but"
			 " the limit is %lu: at most %d clients are taken per process, the next"
			 " are refused (421); raise LimitNOFILE",
			 cfg->max_connections, share,
			 (unsigned long long)((rlim_t)share * 2 + reserve),
			 (unsigned long)rl.rlim_cur, mxg->conn_cap);
}

/*
 * mxg_user - run_as looked up; *pw is NULL when run_as is empty (keep the
 * invoking user). Returns 0, or -1 with start-up's message in err.
 */
static int mxg_user(const struct cfg *cfg, struct passwd **pw, char *err, size_t errsz)
{
	*pw = NULL;
	if (cfg->run_as[0] == '\0')
		return 0;
	if ((*pw = getpwnam(cfg->run_as)) == NULL) {
		snprintf(err, errsz,
			 "run_as: no such user '%s' (create it, or set run_as = to keep the"
			 " invoking user)",
			 cfg->run_as);
		return -1;
	}
	return 0;
}

/*
 * mxg_check - what start-up would refuse in cfg beyond cfg_load's own
 * checks, in start-up's order and with its own functions (no second copy
 * of a check): run_as, metrics_listen, the store spec, the engine's lists,
 * DNSBL filters and resolvers, the shield's lists. Nothing is bound or
 * opened but list files. Not checked: what depends on the moment (a port
 * in use, state_dir's permissions, the Redis server being up) and that
 * run_as needs root (mxguard -n is fine as any user). Returns 0, or -1
 * with start-up's message in err.
 */
static int mxg_check(const struct cfg *cfg, char *err, size_t errsz)
{
	struct passwd *pw;
	struct netaddr maddr;
	struct store_spec sp;

	if (mxg_user(cfg, &pw, err, errsz) < 0)
		return -1;
	if (cfg->metrics_listen[0] != '\0' &&
	    metrics_listen_parse(cfg->metrics_listen, &maddr, err, errsz) < 0)
		return -1;
	if (store_kind_spec_parse(cfg->store, &sp, err, errsz) < 0)
		return -1;
	store_kind_spec_free(&sp);
	if (grey_check(cfg, err, errsz) < 0 || policy_check(cfg, err, errsz) < 0)
		return -1;
	return shield_check(cfg, err, errsz);
}

/* mxg_drop - become run_as for good, or stay who we are when it is empty. */
static void mxg_drop(const struct cfg *cfg, const struct passwd *pw)
{
	if (pw == NULL) {
		if (geteuid() == 0)
			log_warn("run_as is empty: running as root; this is for tests, not for"
				 " production");
		return;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		log_fatal("cannot drop privileges to %s: %s", cfg->run_as, strerror(errno));
	if (pw->pw_uid != 0 && setuid(0) == 0)
		log_fatal("privileges could be regained after dropping them to %s", cfg->run_as);
}

/* The engine's per-connection state: lookups cancelled at the last reply, freed at close. */
static const struct conn_phase mxg_engine_phase = {
    .name = "engine",
    .finish = grey_conn_free,
    .release = grey_conn_free,
};

/*
 * mxg_phases - tell the connection layer who keeps what per connection.
 * At close, the shield's counts go first (as the accept loop took them),
 * then the engine's lookups, then the phases' own state.
 */
static void mxg_phases(void)
{
	conn_phase_add(&listen_phase);
	conn_phase_add(&mxg_engine_phase);
	conn_phase_add(&smtp_phase);
	conn_phase_add(&service_phase);
	conn_phase_add(&relay_phase);
	conn_phase_add(&handoff_phase);
}

int main(int argc, char **argv)
{
	struct mxg mxg;
	char *overrides[MAX_OVERRIDES];
	int noverrides = 0, check = 0, all = 0, ch;
	const char *path = NULL;
	char err[1024];
	struct passwd *pw = NULL;
	uid_t uid = getuid();
	gid_t gid = getgid();

	/* GNU-style --help, the one long option (getopt would call it "-" "-help"). */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0)
			usage(stdout, 0);
	while ((ch = getopt(argc, argv, "ac:o:nVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'o':
			if (noverrides == MAX_OVERRIDES) {
				fprintf(stderr, "mxguard: too many -o options\n");
				return 2;
			}
			overrides[noverrides++] = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'a':
			all = 1;
			break;
		case 'V':
			printf("mxguard %s\n", MXG_VERSION);
			return 0;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc || (all && !check))
		usage(stderr, 2);

	memset(&mxg, 0, sizeof(mxg));
	/*
	 * A fixed mmap threshold: the shield's tables double as sources come,
	 * and glibc's sliding threshold would put the next sizes on the heap,
	 * where the halves they replace stay resident. Fixed, every table of
	 * 128 KB or more is its own mapping and goes back to the kernel when
	 * it is replaced.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	hist_init(&mxg.stats.tarpit_drop_time, hist_bounds_tarpit, hist_nbounds_tarpit);
	hist_init(&mxg.stats.dns_latency, hist_bounds_latency, hist_nbounds_latency);
	hist_init(&mxg.stats.backend_latency, hist_bounds_latency, hist_nbounds_latency);
	/* Without -c, a missing default file means the embedded defaults. */
	mxg.cfg_missing_ok = path == NULL;
	mxg.cfg_path = path ? path : MXG_DEFAULT_CONFIG;
	mxg.overrides = overrides;
	mxg.noverrides = noverrides;
	mxg.cfg =
	    cfg_load(mxg.cfg_path, mxg.cfg_missing_ok, overrides, noverrides, err, sizeof(err));
	if (mxg.cfg == NULL) {
		fprintf(stderr, "mxguard: %s\n", err);
		return 1;
	}
	if (check) {
		if (mxg_check(mxg.cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "mxguard: %s\n", err);
			cfg_unref(&mxg.cfg);
			return 1;
		}
		cfg_warnings(mxg.cfg, mxg_check_warn);
		cfg_print(mxg.cfg, stdout, all);
		cfg_unref(&mxg.cfg);
		return 0;
	}
	log_init("mxguard", (enum log_target)mxg.cfg->log_target);
	cfg_warnings(mxg.cfg, mxg_log_warn);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The checks of -n before anything is bound: a configuration that
	 * start-up would refuse later never opens port 25 for a moment (a
	 * client or a monitor would see a server that then vanishes).
	 */
	if (mxg_check(mxg.cfg, err, sizeof(err)) < 0)
		log_fatal("%s", err);

	if (mxg_user(mxg.cfg, &pw, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (pw != NULL) {
		if (geteuid() != 0)
			log_fatal("run_as = %s needs mxguard to start as root (or set run_as = to"
				  " keep the invoking user)",
				  mxg.cfg->run_as);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	mxg_raise_nofile(&mxg);
	if (mxg_mkdirs(mxg.cfg->state_dir, uid, gid, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (mxg.cfg->control_socket[0] == '/') {
		/* e.g. /run/mxguard/control.sock: /run is emptied at boot. */
		char dir[1024], *slash;

		snprintf(dir, sizeof(dir), "%s", mxg.cfg->control_socket);
		slash = strrchr(dir, '/');
		*slash = '\0';
		if (dir[0] != '\0' && mxg_mkdirs(dir, uid, gid, err, sizeof(err)) < 0)
			log_fatal("%s", err);
	}
	if (listen_open(&mxg, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (policy_open(&mxg, uid, gid, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (metrics_open(&mxg, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if ((mxg.control = control_open(&mxg, uid, gid, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	control_set_reload(mxg.control, worker_reload);
	if (mxg.cfg->firewall == FIREWALL_NFTABLES) {
		uint16_t ports[CFG_MAX_LISTEN * (CFG_MAX_SERVICES + 1)];
		int nports =
		    shield_fw_ports(mxg.cfg, ports, (int)(sizeof(ports) / sizeof(ports[0])));

		/* The helper keeps CAP_NET_ADMIN; this process gives everything up. */
		mxg.fw = fw_start(mxg.cfg->firewall_table, ports, nports, mxg.cfg->run_as, err,
				  sizeof(err));
		if (mxg.fw == NULL)
			log_fatal("%s", err);
	}
	/*
	 * Everything is bound: with workers > 1 this process becomes their
	 * master here, and each worker goes on below, as the one process does
	 * with workers = 1.
	 */
	if ((mxg.wshm = wshm_new(mxg.cfg->nworkers, mxg.nlisteners, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	worker_fork(&mxg, mxg_notify);
	mxg_drop(mxg.cfg, pw);

	mxg.base = event_base_new();
	if (mxg.base == NULL)
		log_fatal("cannot create the event loop");
	mxg.started = time(NULL);
	struct event *hup = evsignal_new(mxg.base, SIGHUP, mxg_hup_cb, &mxg);
	struct event *term = evsignal_new(mxg.base, SIGTERM, mxg_term_cb, &mxg);
	struct event *intr = evsignal_new(mxg.base, SIGINT, mxg_term_cb, &mxg);

	if (hup == NULL || term == NULL || intr == NULL || evsignal_add(hup, NULL) < 0 ||
	    evsignal_add(term, NULL) < 0 || evsignal_add(intr, NULL) < 0)
		log_fatal("cannot install signal handlers");
	mxg_phases();
	if (listen_start(&mxg) < 0 || policy_start(&mxg) < 0 ||
	    (mxg.control != NULL && control_start(mxg.control) < 0))
		log_fatal("cannot serve the listening sockets");
	if (metrics_start(&mxg, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	/* The kernel counters are the host's: one worker reads and reports them. */
	if (mxg.worker == 0)
		mxg.synwatch = synwatch_start(&mxg);
	/* After the privilege drop: the store's files belong to run_as. */
	mxg.store = store_open(mxg.base, mxg.cfg->store, mxg.cfg->state_dir, mxg.cfg->store_timeout,
			       mxg.cfg->store_cache_size, err, sizeof(err));
	if (mxg.store == NULL)
		log_fatal("%s", err);
	if ((mxg.engine = grey_new(&mxg, mxg.store, &mxg_grey_hooks, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	if ((mxg.notify = notify_new(&mxg)) == NULL)
		log_fatal("cannot create the notifier");
	if ((mxg.shield = shield_new(&mxg, err, sizeof(err))) == NULL)
		log_fatal("%s", err);
	struct event *fwev = NULL;

	/* The nftables helper's reports (a failed batch, its death) are logged at once. */
	if (mxg.fw != NULL && fw_fd(mxg.fw) >= 0) {
		fwev = event_new(mxg.base, fw_fd(mxg.fw), EV_READ | EV_PERSIST, mxg_fw_cb, &mxg);
		if (fwev == NULL || event_add(fwev, NULL) < 0)
			log_fatal("cannot watch the firewall helper");
	}
	mxg.probe = probe_new(&mxg);
	if (worker_started(&mxg) < 0)
		log_fatal("worker %d: cannot join the other workers", mxg.worker);
	/*
	 * Last of the start-up: every listener bound, the store open, the
	 * helpers (nftables, notify_command) forked. From here on no exec,
	 * no new privileges, only the files the reloads need.
	 */
	sandbox_enter(mxg.cfg,
		      path != NULL || access(mxg.cfg_path, F_OK) == 0 ? mxg.cfg_path : NULL);
	if (mxg.wk != NULL) {
		log_info("worker %d ready: mxguard %s", mxg.worker, MXG_VERSION);
	} else {
		log_info("ready: mxguard %s, default_action=%s, backend %s", MXG_VERSION,
			 mxg.cfg->default_action == ACTION_INSPECT ? "inspect" : "pass",
			 netaddr_format((struct sockaddr *)&mxg.cfg->backend.ss, err,
					sizeof(err)));
		mxg_notify("READY=1");
	}

	event_base_dispatch(mxg.base);

	worker_stop(&mxg);
	conn_kill_all(&mxg);
	listen_close(&mxg);
	policy_close(&mxg);
	metrics_close(&mxg);
	control_close(&mxg.control);
	probe_free(&mxg.probe);
	synwatch_stop(&mxg.synwatch);
	shield_free(&mxg.shield);
	if (fwev != NULL)
		event_free(fwev);
	fw_stop(&mxg.fw);
	notify_free(&mxg.notify);
	/*
	 * The store first: requests still in flight may report to the
	 * engine's counters (greyrec.c) as it closes.
	 */
	store_close(&mxg.store);
	grey_free(&mxg.engine);
	event_free(hup);
	event_free(term);
	event_free(intr);
	free(mxg.listeners);
	cfg_unref(&mxg.cfg);
	event_base_free(mxg.base);
	log_info("stopped");
	return 0;
}
