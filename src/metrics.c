/*
 * NAME
 *	metrics - histograms and the Prometheus text endpoint
 * SYNOPSIS
 *	metrics_listen = 127.0.0.1:9425
 *	curl http://127.0.0.1:9425/metrics
 * DESCRIPTION
 *	The daemon counts where things happen (struct mxg_stats in mxguard.h,
 *	struct listener_stats in listener.h, hist_observe() in hist.c); this module
 *	only renders those numbers, plus a few gauges it reads at scrape time
 *	(connections by stage from mxg->conns, the listening sockets' accept
 *	queues from TCP_INFO, the kernel's TcpExt counters, the store).
 *
 *	The endpoint is the smallest HTTP/1.x server that Prometheus needs:
 *	one request per connection, GET /metrics answered 200 in the text
 *	exposition format 0.0.4, any other path 404, any other method 405,
 *	then Connection: close. It is not a web server: the request headers
 *	are read into at most METRICS_REQ_MAX bytes within METRICS_TIMEOUT
 *	seconds, and at most METRICS_CLIENTS scrapers are served at once, so
 *	a client that never finishes its headers costs a bounded amount of
 *	memory and time and cannot starve the mail ports.
 *
 *	The socket is bound in metrics_open(), before the privilege drop,
 *	so a port below 1024 works; it is served from metrics_start().
 * DIAGNOSTICS
 *	Bind errors are fatal at start (the caller exits). Scrape errors
 *	only close that scrape's connection.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "kstat.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "mxg_build.h"
#include "mxguard.h"
#include "netaddr.h"
#include "policy.h"
#include "promlabel.h"
#include "rules.h"
#include "shield.h"
#include "store.h"
#include "synwatch.h"
#include "wshm.h"

#define METRICS_REQ_MAX 8192 /* request line and headers */
#define METRICS_TIMEOUT 5    /* seconds to send the request, and to take the answer */
#define METRICS_CLIENTS 32   /* scrapes served at once; more are closed at once */

struct metrics_client {
	struct metrics *m;
	struct metrics_client *prev, *next;
	struct bufferevent *bev;
	struct event *deadline; /* the whole exchange, however slowly it trickles */
};

struct metrics {
	struct mxg *mxg;
	struct netaddr addr;
	char name[NETADDR_STRLEN];
	int fd; /* bound and listening; owned by evl once served */
	struct evconnlistener *evl;
	struct metrics_client *clients;
	int nclients;
	uint64_t scrapes;
	struct listen_pause pause; /* after an accept error (listen.c) */
};

/* ---- rendering ---- */

static void metrics_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP mxguard_%s %s\n# TYPE mxguard_%s %s\n", name, help, name,
			    type);
}

/* metrics_u64 - one sample; label may be NULL, value is escaped. */
static void metrics_u64(struct evbuffer *b, const char *name, const char *label, const char *value,
			uint64_t v)
{
	evbuffer_add_printf(b, "mxguard_%s", name);
	if (label != NULL) {
		evbuffer_add_printf(b, "{%s=\"", label);
		promlabel_add(b, value);
		evbuffer_add(b, "\"}", 2);
	}
	evbuffer_add_printf(b, " %llu\n", (unsigned long long)v);
}

static void metrics_hist(struct evbuffer *b, const char *name, const char *help,
			 const struct hist *h)
{
	uint64_t cum = 0;

	metrics_head(b, name, "histogram", help);
	for (int i = 0; i < h->nbounds; i++) {
		cum += h->counts[i];
		evbuffer_add_printf(b, "mxguard_%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i],
				    (unsigned long long)cum);
	}
	cum += h->counts[h->nbounds];
	evbuffer_add_printf(b, "mxguard_%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	evbuffer_add_printf(b, "mxguard_%s_sum %.6f\nmxguard_%s_count %llu\n", name, h->sum, name,
			    (unsigned long long)h->count);
}

/* The per-listener counters (summed over the workers: lst), one family each. */
static void metrics_listeners(struct evbuffer *b, const struct mxg *mxg,
			      const struct wshm_listener *lst)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
	    {"connections_accepted_total",
	     "Connections taken into service (refusals not included).",
	     offsetof(struct listener_stats, accepted)},
	    {"connections_refused_total", "Connections refused at accept.",
	     offsetof(struct listener_stats, refused)},
	    {"connections_passed_total", "Connections that reached the relay to the backend.",
	     offsetof(struct listener_stats, passed)},
	};

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		metrics_head(b, fam[f].name, "counter", fam[f].help);
		for (int i = 0; i < mxg->nlisteners; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&lst[i].stats + fam[f].off, sizeof(v));
			metrics_u64(b, fam[f].name, "listener", mxg->listeners[i].name, v);
		}
	}
	metrics_head(b, "listener_verdicts_total", "counter",
		     "Classified connections by listener and verdict.");
	for (int i = 0; i < mxg->nlisteners; i++) {
		const struct listener *l = &mxg->listeners[i];

		for (int v = 0; v < 4; v++) {
			evbuffer_add(b, "mxguard_listener_verdicts_total{listener=\"", 42);
			promlabel_add(b, l->name);
			evbuffer_add_printf(b, "\",verdict=\"%s\"} %llu\n",
					    rules_verdict_name((enum verdict)v),
					    (unsigned long long)lst[i].stats.verdicts[v]);
		}
	}
}

/* metrics_queues - each listener's accept queue now (TCP_INFO, kstat.c). */
static void metrics_queues(struct evbuffer *b, const struct mxg *mxg)
{
	static const char *const fam[2][2] = {
	    {"listen_queue", "Connections waiting in the listener's accept queue."},
	    {"listen_backlog", "The listener's accept queue limit."},
	};

	for (int f = 0; f < 2; f++) {
		metrics_head(b, fam[f][0], "gauge", fam[f][1]);
		for (int i = 0; i < mxg->nlisteners; i++) {
			const struct listener *l = &mxg->listeners[i];
			uint32_t queue, backlog;

			/* Closed on SIGTERM: no queue to show. */
			if (l->fd < 0 || kstat_listen_queue(l->fd, &queue, &backlog) < 0)
				continue;
			metrics_u64(b, fam[f][0], "listener", l->name, f == 0 ? queue : backlog);
		}
	}
}

/*
 * metrics_kernel - the TcpExt counters read now, not synwatch's last
 * reading: a scrape wants the current value, and Prometheus computes the
 * moves itself. They are the whole host's (the network namespace's).
 */
static void metrics_kernel(struct evbuffer *b, const struct mxg *mxg)
{
	const struct synwatch_view *v = synwatch_view(mxg->synwatch);
	struct kstat_counters kc;
	char err[256];

	if (kstat_counters_read(&kc, err, sizeof(err)) == 0) {
		metrics_head(b, "kernel_tcpext_total", "counter",
			     "Kernel TcpExt counters (host-wide) about listen queues and SYN"
			     " cookies.");
		for (int i = 0; i < KSTAT_NCOUNTERS; i++)
			if (kc.have[i])
				metrics_u64(b, "kernel_tcpext_total", "counter", kstat_names[i],
					    kc.value[i]);
	}
	if (v != NULL) {
		metrics_head(b, "synwatch_warnings_total", "counter",
			     "SYN-flood and accept-queue warnings logged.");
		metrics_u64(b, "synwatch_warnings_total", NULL, NULL, v->warnings);
	}
}

/*
 * metrics_shield - the shield's attack state and block gauges (shield.c);
 * the counters of blocks and refusals are rendered from struct mxg_stats.
 */
static void metrics_shield(struct evbuffer *b, const struct mxg *mxg)
{
	shield_metrics(mxg, b);
}

static void metrics_store(struct evbuffer *b, const struct mxg *mxg)
{
	struct store *s = mxg->store;
	struct store_status st;

	if (s == NULL)
		return;
	memset(&st, 0, sizeof(st));
	store_status(s, &st);
	metrics_head(b, "store_info", "gauge", "The store backend in use (value 1).");
	metrics_u64(b, "store_info", "backend", st.backend != NULL ? st.backend : "unknown", 1);
	metrics_head(b, "store_connected", "gauge", "1 when the store is reachable.");
	metrics_u64(b, "store_connected", NULL, NULL, (uint64_t)(st.connected != 0));
	metrics_head(b, "store_fallback", "gauge", "1 while decisions are made locally.");
	metrics_u64(b, "store_fallback", NULL, NULL, (uint64_t)(st.fallback != 0));
	metrics_head(b, "store_fallbacks_total", "counter", "Fallbacks to local decisions.");
	metrics_u64(b, "store_fallbacks_total", NULL, NULL, st.fallbacks);
	metrics_head(b, "store_timeouts_total", "counter",
		     "Store lookups answered locally after store_timeout.");
	metrics_u64(b, "store_timeouts_total", NULL, NULL, st.timeouts);
	metrics_head(b, "store_replay_pending", "gauge",
		     "Writes waiting for the shared store to come back.");
	metrics_u64(b, "store_replay_pending", NULL, NULL, st.replay_pending);
}

/* metrics_policy - the policy service's answers (policy_listen), when it is on. */
static void metrics_policy(struct evbuffer *b, const struct mxg *mxg)
{
	uint64_t counts[POLICY_NACTIONS];
	int conns;

	if (mxg->policy == NULL)
		return;
	policy_counts(mxg->policy, counts, &conns);
	metrics_head(b, "policy_answers_total", "counter",
		     "Policy service answers to Postfix, by action.");
	for (int i = 0; i < POLICY_NACTIONS; i++)
		metrics_u64(b, "policy_answers_total", "action", policy_action_name(i), counts[i]);
	metrics_head(b, "policy_connections", "gauge", "Open policy service connections.");
	metrics_u64(b, "policy_connections", NULL, NULL, (uint64_t)(conns > 0 ? conns : 0));
}

/*
 * metrics_process - the standard process_* families every Prometheus
 * client library exports (and dashboards expect, without the mxguard_
 * prefix): CPU seconds, resident and virtual memory, descriptors open and
 * allowed, start time. Read at scrape time from /proc/self (readable under
 * the Landlock ruleset, sandbox.c); a family that cannot be read is left
 * out rather than shown as 0.
 */
static void metrics_process(struct evbuffer *b, const struct mxg *mxg)
{
	unsigned long utime = 0, stime = 0, vsize = 0;
	long rss = 0, tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char buf[1024];
	struct rlimit rl;
	FILE *fp;
	DIR *d;

	if ((fp = fopen("/proc/self/stat", "r")) != NULL) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
		/* The name (field 2) may hold spaces and parentheses: count from the last ')'. */
		char *p;

		fclose(fp);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		/* Fields 14, 15 (utime, stime) and 23, 24 (vsize, rss) after "pid (comm)". */
		if (p != NULL && tick > 0 && page > 0 &&
		    sscanf(p + 1,
			   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d"
			   " %*d %*u %lu %ld",
			   &utime, &stime, &vsize, &rss) == 4) {
			evbuffer_add_printf(b,
					    "# HELP process_cpu_seconds_total Total user and system "
					    "CPU time spent in seconds.\n"
					    "# TYPE process_cpu_seconds_total counter\n"
					    "process_cpu_seconds_total %.2f\n",
					    (double)(utime + stime) / (double)tick);
			evbuffer_add_printf(b,
					    "# HELP process_resident_memory_bytes Resident memory "
					    "size in bytes.\n"
					    "# TYPE process_resident_memory_bytes gauge\n"
					    "process_resident_memory_bytes %lld\n",
					    (long long)rss * page);
			evbuffer_add_printf(b,
					    "# HELP process_virtual_memory_bytes Virtual memory size "
					    "in bytes.\n"
					    "# TYPE process_virtual_memory_bytes gauge\n"
					    "process_virtual_memory_bytes %lu\n",
					    vsize);
		}
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		long open = -1; /* the directory's own descriptor is not the daemon's */

		while (readdir(d) != NULL)
			open++;
		closedir(d);
		open -= 2; /* "." and ".." */
		evbuffer_add_printf(b,
				    "# HELP process_open_fds Number of open file descriptors.\n"
				    "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
				    open > 0 ? open : 0);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		evbuffer_add_printf(b,
				    "# HELP process_max_fds Maximum number of open file "
				    "descriptors.\n"
				    "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
				    (unsigned long long)rl.rlim_cur);
	evbuffer_add_printf(b,
			    "# HELP process_start_time_seconds Start time of the process since "
			    "unix epoch in seconds.\n"
			    "# TYPE process_start_time_seconds gauge\n"
			    "process_start_time_seconds %lld\n",
			    (long long)mxg->started);
}

/*
 * metrics_workers - the worker processes, labelled: up, open connections,
 * accepted, restarts (one series each with workers = 1).
 */
static void metrics_workers(struct evbuffer *b, struct wshm *w)
{
	static const char *const fam[4][3] = {
	    {"worker_up", "gauge", "1 while the worker process runs."},
	    {"worker_connections", "gauge", "Open client connections of the worker."},
	    {"worker_accepted_total", "counter", "Connections the worker took into service."},
	    {"worker_restarts_total", "counter", "Times the master started the worker again."},
	};

	for (int f = 0; f < 4; f++) {
		metrics_head(b, fam[f][0], fam[f][1], fam[f][2]);
		for (int i = 0; i < wshm_nworkers(w); i++) {
			const struct wshm_slot *s = wshm_slot(w, i);
			uint64_t v = f == 0 ? s->pid != 0
				     : f == 1 ? (s->pid != 0 ? (uint64_t)s->nconns : 0)
				     : f == 2 ? s->stats.accepted
					      : s->restarts;
			char label[16];

			snprintf(label, sizeof(label), "%d", i);
			metrics_u64(b, fam[f][0], "worker", label, v);
		}
	}
}

/* metrics_render - the whole exposition into b. */
static void metrics_render(struct metrics *m, struct evbuffer *b)
{
	const struct mxg *mxg = m->mxg;
	struct mxg_stats total;
	const struct mxg_stats *st = &total;
	uint32_t stages[WSHM_STAGES];
	struct wshm_listener *lst = calloc((size_t)mxg->nlisteners + 1, sizeof(*lst));
	int nconns;
	time_t now = time(NULL);

	/* Every worker's counters, this one's brought up to date first. */
	wshm_update(mxg->wshm, mxg->worker, mxg, NULL, 0);
	wshm_total(mxg->wshm, mxg, &total, &nconns, stages, lst);

	metrics_head(b, "build_info", "gauge", "The running version (value 1).");
	metrics_u64(b, "build_info", "version", MXG_VERSION, 1);
	metrics_head(b, "start_time_seconds", "gauge", "Unix time the daemon started.");
	metrics_u64(b, "start_time_seconds", NULL, NULL, (uint64_t)mxg->started);
	metrics_head(b, "uptime_seconds", "gauge", "Seconds since the daemon started.");
	metrics_u64(b, "uptime_seconds", NULL, NULL,
		    now > mxg->started ? (uint64_t)(now - mxg->started) : 0);

	if (lst != NULL)
		metrics_listeners(b, mxg, lst);
	free(lst);
	metrics_workers(b, mxg->wshm);
	metrics_head(b, "verdicts_total", "counter", "Classified connections by verdict.");
	for (int v = 0; v < 4; v++)
		metrics_u64(b, "verdicts_total", "verdict", rules_verdict_name((enum verdict)v),
			    st->verdicts[v]);

	/* Counted per worker at its last update (wshm_update: O(connections) each). */
	metrics_head(b, "connections", "gauge", "Open client connections by stage.");
	for (int s = 0; s <= STAGE_TARPIT; s++)
		metrics_u64(b, "connections", "stage", conn_stage_name(s), stages[s]);
	metrics_head(b, "connections_held", "gauge", "Clients held in the tarpit now.");
	metrics_u64(b, "connections_held", NULL, NULL, stages[STAGE_TARPIT]);

	metrics_head(b, "tarpit_drops_total", "counter", "Clients that gave up while held.");
	metrics_u64(b, "tarpit_drops_total", NULL, NULL, st->tarpit_drops);
	metrics_head(b, "tarpit_survivals_total", "counter", "Clients that waited the delay out.");
	metrics_u64(b, "tarpit_survivals_total", NULL, NULL, st->tarpit_survivals);
	metrics_hist(b, "tarpit_drop_seconds", "Seconds a dropped client waited in the tarpit.",
		     &st->tarpit_drop_time);
	metrics_head(b, "survivors_released_total", "counter",
		     "Tarpit survivors released for saying nothing after the hand-off.");
	metrics_u64(b, "survivors_released_total", NULL, NULL, st->survivors_released);

	metrics_head(b, "relay_buffer_bytes", "gauge",
		     "Bytes queued in all relays now (bounded by relay_memory_limit).");
	metrics_u64(b, "relay_buffer_bytes", NULL, NULL, st->relay_bytes);
	metrics_head(b, "relay_memory_pauses_total", "counter",
		     "Relay reads paused because relay_memory_limit was reached.");
	metrics_u64(b, "relay_memory_pauses_total", NULL, NULL, st->relay_mem_pauses);
	metrics_head(b, "relay_timeouts_total", "counter",
		     "Relays ended by a bound: idle, blocked output, or relay_max_time.");
	metrics_u64(b, "relay_timeouts_total", NULL, NULL, st->relay_timeouts);

	metrics_head(b, "greylist_total", "counter",
		     "Greylist outcomes: defer (450), pass (retry accepted), awl.");
	metrics_u64(b, "greylist_total", "outcome", "defer", st->grey_defer);
	metrics_u64(b, "greylist_total", "outcome", "pass", st->grey_pass);
	metrics_u64(b, "greylist_total", "outcome", "awl", st->grey_awl);

	metrics_hist(b, "dns_latency_seconds", "Seconds per DNS query answered by the network.",
		     &st->dns_latency);
	metrics_hist(b, "backend_latency_seconds",
		     "Seconds from connecting to the backend to its greeting.",
		     &st->backend_latency);
	metrics_head(b, "backend_failures_total", "counter",
		     "Hand-offs that failed (backend down, slow or refusing).");
	metrics_u64(b, "backend_failures_total", NULL, NULL, st->backend_fail);

	metrics_head(b, "refusals_total", "counter", "Connections refused at accept, by reason.");
	for (int r = 0; r < REFUSE_NREASONS; r++)
		metrics_u64(b, "refusals_total", "reason", shield_reason_name(r), st->refusals[r]);
	metrics_head(b, "spoofed_attempts_total", "counter",
		     "Attempts from sources that cannot be real hosts (counted, not refused "
		     "for it): network or broadcast address of their /24, RFC 6890 "
		     "special-purpose ranges a listener admits (while its group is attacked).");
	metrics_u64(b, "spoofed_attempts_total", "kind", "network_broadcast",
		    st->spoofed[MXG_SPOOF_NETBCAST]);
	metrics_u64(b, "spoofed_attempts_total", "kind", "special_purpose",
		    st->spoofed[MXG_SPOOF_SPECIAL]);
	metrics_head(b, "blocks_total", "counter", "Dynamic blocks made here or received.");
	metrics_u64(b, "blocks_total", NULL, NULL, st->blocks);
	metrics_head(b, "network_blocks_total", "counter",
		     "Dynamic blocks of networks made here or received (of blocks_total).");
	metrics_u64(b, "network_blocks_total", NULL, NULL, st->netblocks);
	metrics_head(b, "blocks_released_total", "counter", "Dynamic blocks released.");
	metrics_u64(b, "blocks_released_total", NULL, NULL, st->blocks_released);

	metrics_shield(b, mxg);
	metrics_store(b, mxg);
	metrics_queues(b, mxg);
	metrics_kernel(b, mxg);
	metrics_policy(b, mxg);
	metrics_process(b, mxg);
	metrics_head(b, "scrapes_total", "counter", "Requests for /metrics served.");
	metrics_u64(b, "scrapes_total", NULL, NULL, m->scrapes);
}

/* ---- the HTTP side ---- */

static void metrics_client_free(struct metrics_client *mc)
{
	struct metrics *m = mc->m;

	if (mc->prev != NULL)
		mc->prev->next = mc->next;
	else
		m->clients = mc->next;
	if (mc->next != NULL)
		mc->next->prev = mc->prev;
	m->nclients--;
	if (mc->deadline != NULL)
		event_free(mc->deadline);
	bufferevent_free(mc->bev); /* closes the socket */
	free(mc);
}

static void metrics_event_cb(struct bufferevent *bev, short what, void *arg);

/* The answer is out: close. */
static void metrics_written_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_client *mc = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		metrics_client_free(mc);
}

/* metrics_reply - send one answer and close once it is written. */
static void metrics_reply(struct metrics_client *mc, const char *status, const char *ctype,
			  const char *extra, struct evbuffer *body)
{
	struct evbuffer *out = bufferevent_get_output(mc->bev);

	evbuffer_add_printf(out,
			    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			    "Connection: close\r\n\r\n",
			    status, ctype, evbuffer_get_length(body), extra);
	evbuffer_add_buffer(out, body);
	bufferevent_disable(mc->bev, EV_READ);
	bufferevent_setcb(mc->bev, NULL, metrics_written_cb, metrics_event_cb, mc);
	bufferevent_enable(mc->bev, EV_WRITE);
}

static void metrics_text(struct metrics_client *mc, const char *status, const char *extra,
			 const char *text)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL) {
		metrics_client_free(mc);
		return;
	}
	evbuffer_add(body, text, strlen(text));
	metrics_reply(mc, status, "text/plain; charset=utf-8", extra, body);
	evbuffer_free(body);
}

/*
 * metrics_parse_request - see metrics.h. Only the request line matters
 * ("METHOD SP target SP HTTP/x.y"); the headers are not needed, and a
 * request line longer than METRICS_LINE_MAX - 1 bytes is not ours anyway.
 */
int metrics_parse_request(const char *head, size_t len)
{
	char line[METRICS_LINE_MAX];
	const char *sp, *sp2;
	size_t plen;

	if (len > sizeof(line) - 1)
		len = sizeof(line) - 1;
	memcpy(line, head, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	sp = strchr(line, ' ');
	sp2 = sp != NULL ? strchr(sp + 1, ' ') : NULL;
	if (sp == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return METRICS_REQ_BAD;
	if ((size_t)(sp - line) != 3 || strncmp(line, "GET", 3) != 0)
		return METRICS_REQ_METHOD;
	/* The path, without a query string (Prometheus may add ?name[]=...). */
	plen = strcspn(sp + 1, " ?");
	if (plen != 8 || strncmp(sp + 1, "/metrics", 8) != 0)
		return METRICS_REQ_NOT_FOUND;
	return METRICS_REQ_SCRAPE;
}

/* metrics_request - answer the request whose headers are complete. */
static void metrics_request(struct metrics_client *mc, int req)
{
	struct metrics *m = mc->m;

	switch (req) {
	case METRICS_REQ_BAD:
		metrics_text(mc, "400 Bad Request", "", "bad request\n");
		return;
	case METRICS_REQ_METHOD:
		metrics_text(mc, "405 Method Not Allowed", "Allow: GET\r\n", "only GET\n");
		return;
	case METRICS_REQ_NOT_FOUND:
		metrics_text(mc, "404 Not Found", "", "not found; try /metrics\n");
		return;
	}
	struct evbuffer *body = evbuffer_new();

	if (body == NULL) {
		metrics_client_free(mc);
		return;
	}
	m->scrapes++;
	metrics_render(m, body);
	metrics_reply(mc, "200 OK", "text/plain; version=0.0.4; charset=utf-8", "", body);
	evbuffer_free(body);
}

static void metrics_read_cb(struct bufferevent *bev, void *arg)
{
	struct metrics_client *mc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char head[METRICS_LINE_MAX];
	ssize_t n;

	if (end.pos < 0)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos < 0) {
		/* The high watermark stops reading at the limit: this is the last call. */
		if (evbuffer_get_length(in) >= METRICS_REQ_MAX)
			metrics_text(mc, "431 Request Header Fields Too Large", "",
				     "request headers too large\n");
		return;
	}
	n = evbuffer_copyout(in, head, sizeof(head));
	evbuffer_drain(in, evbuffer_get_length(in));
	metrics_request(mc, metrics_parse_request(head, n > 0 ? (size_t)n : 0));
}

/* Timeout, reset or EOF before an answer could go out: just close. */
static void metrics_event_cb(struct bufferevent *bev, short what, void *arg)
{
	metrics_client_free(arg);
}

static void metrics_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	metrics_client_free(arg);
}

static void metrics_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			      int salen, void *arg)
{
	struct metrics *m = arg;
	struct metrics_client *mc;
	struct timeval tv = {METRICS_TIMEOUT, 0};

	if (m->nclients >= METRICS_CLIENTS || (mc = calloc(1, sizeof(*mc))) == NULL) {
		close(fd);
		return;
	}
	mc->m = m;
	mc->bev = bufferevent_socket_new(m->mxg->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (mc->bev == NULL) {
		close(fd);
		free(mc);
		return;
	}
	mc->next = m->clients;
	if (mc->next != NULL)
		mc->next->prev = mc;
	m->clients = mc;
	m->nclients++;
	bufferevent_setcb(mc->bev, metrics_read_cb, NULL, metrics_event_cb, mc);
	/*
	 * A bufferevent's timeouts measure idleness and are re-armed by every
	 * byte: a client trickling its headers would keep its slot for hours.
	 * The deadline bounds the request and the answer together.
	 */
	mc->deadline = evtimer_new(m->mxg->base, metrics_deadline_cb, mc);
	if (mc->deadline == NULL || evtimer_add(mc->deadline, &tv) < 0) {
		metrics_client_free(mc);
		return;
	}
	bufferevent_setwatermark(mc->bev, EV_READ, 0, METRICS_REQ_MAX);
	bufferevent_enable(mc->bev, EV_READ);
}

static void metrics_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;

	if (m->evl != NULL)
		evconnlistener_enable(m->evl);
}

/* metrics_error_cb - accept() failed (EMFILE as a rule): pause as listen.c does. */
static void metrics_error_cb(struct evconnlistener *evl, void *arg)
{
	struct metrics *m = arg;
	char what[300];

	snprintf(what, sizeof(what), "metrics %s", m->name);
	listen_pause(evl, &m->pause, what);
}

int metrics_listen_parse(const char *text, struct netaddr *addr, char *err, size_t errsz)
{
	char why[256];

	if (netaddr_parse(text, addr, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "metrics_listen: %s", why);
		return -1;
	}
	return 0;
}

int metrics_open(struct mxg *mxg, char *err, size_t errsz)
{
	const char *text = mxg->cfg->metrics_listen;
	struct metrics *m;
	int one = 1;

	if (text == NULL || text[0] == '\0')
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errsz, "metrics: out of memory");
		return -1;
	}
	m->mxg = mxg;
	m->fd = -1;
	mxg->metrics = m;
	if (metrics_listen_parse(text, &m->addr, err, errsz) < 0)
		return -1;
	netaddr_format(&m->addr.ss.sa, m->name, sizeof(m->name));
	m->fd = socket(m->addr.ss.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		snprintf(err, errsz, "metrics_listen %s: socket: %s", m->name, strerror(errno));
		return -1;
	}
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (m->addr.ss.sa.sa_family == AF_INET6)
		setsockopt(m->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(m->fd, &m->addr.ss.sa, m->addr.len) < 0 || listen(m->fd, 64) < 0) {
		snprintf(err, errsz, "metrics_listen %s: %s", m->name, strerror(errno));
		return -1;
	}
	return 0;
}

int metrics_start(struct mxg *mxg, char *err, size_t errsz)
{
	struct metrics *m = mxg->metrics;

	if (m == NULL)
		return 0;
	/* Backlog 0: keep the listen() of metrics_open (see listen_start). */
	m->evl = evconnlistener_new(mxg->base, metrics_accept_cb, m,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, m->fd);
	m->pause.retry = evtimer_new(mxg->base, metrics_retry_cb, m);
	if (m->evl == NULL || m->pause.retry == NULL) {
		snprintf(err, errsz, "metrics_listen %s: cannot serve the socket", m->name);
		return -1;
	}
	evconnlistener_set_error_cb(m->evl, metrics_error_cb);
	log_info("metrics on http://%s/metrics", m->name);
	return 0;
}

void metrics_close(struct mxg *mxg)
{
	struct metrics *m = mxg->metrics;

	if (m == NULL)
		return;
	while (m->clients != NULL)
		metrics_client_free(m->clients);
	if (m->evl != NULL)
		evconnlistener_free(m->evl); /* closes m->fd */
	else if (m->fd >= 0)
		close(m->fd);
	if (m->pause.retry != NULL)
		event_free(m->pause.retry);
	free(m);
	mxg->metrics = NULL;
}
