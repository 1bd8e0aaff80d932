/*
 * control.c - the control socket.
 *
 * Local clients only (a unix socket, mode 0660): permission is the file's.
 * Requests are single lines of at most CONTROL_LINE_MAX bytes; a client
 * that sends more gets an error answer and is closed, one that sends
 * nothing for CONTROL_TIMEOUT seconds is dropped. Every answer is one
 * JSON object on one line, built as one json_t (jansson) and dumped once
 * by control_send; errors are {"ok":false,"error":"..."}. Modules below
 * add their members to the object they are given (shield_status,
 * grey_status); explain.c builds its whole answer.
 *
 * Verbs: status (counters, connections, store), top (one snapshot for
 * mxguardctl's live view: also the tarpit holds, oldest first, and the
 * last verdicts, from the engine's ring: grey_recent), list/add/del/flush
 * of store records, explain (one address through every module: explain.c),
 * reload, ping. Everything is answered synchronously from the loop: the
 * answers are small, except list and flush, which walk the store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "control.h"
#include "explain.h"
#include "grey.h"
#include "jsonstr.h"
#include "listen.h"
#include "log.h"
#include "mxguard.h"
#include "netaddr.h"
#include "notify.h"
#include "policy.h"
#include "rules.h"
#include "shield.h"
#include "store.h"
#include "unixsock.h"
#include "wshm.h"

#define CONTROL_TIMEOUT 10
#define CONTROL_HOLDS_MAX 100	 /* oldest tarpit holds in a "top" snapshot */
#define CONTROL_FLUSH_BATCH 1024 /* keys collected per pass of "flush" */

struct control {
	struct mxg *mxg;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct evconnlistener *evl;
	struct listen_pause pause;		     /* after an accept error (listen.c) */
	int (*reload)(struct mxg *, char *, size_t); /* control_set_reload */
	int replay; /* control_apply: a request another worker answered already */
};

/* Names of enum refuse_reason (mxguard.h), as status and top report them. */
static const char *const control_refusal_names[] = {
    "overload",	   "blocked",	  "static",	 "bogus",	"country",
    "conn_source", "conn_prefix", "rate_source", "rate_prefix", "attack",
};
_Static_assert(sizeof(control_refusal_names) / sizeof(control_refusal_names[0]) == REFUSE_NREASONS,
	       "one name per enum refuse_reason");

static int64_t control_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *control_verdict_name(int v)
{
	return v >= VERDICT_CLEAN && v <= VERDICT_BLACK ? rules_verdict_name(v) : "unknown";
}

/*
 * control_int, control_str - o[key] = a number, a string. Every string goes
 * through jsonstr (invalid UTF-8 from a client becomes U+FFFD), so the
 * answer always dumps. Counters are unsigned 64-bit; json_int_t is signed:
 * a counter past 2^63 is beyond any uptime.
 */
static void control_int(json_t *o, const char *key, long long v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void control_str(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, jsonstr_cstr(s));
}

/*
 * control_count_add - o[key] += n, key made valid UTF-8 first (jansson
 * refuses other keys). Listener names are the operator's text and two may
 * be equal (or one may be "other"): their counts are added, not written
 * twice as a duplicate member.
 */
static void control_count_add(json_t *o, const char *key, long long n)
{
	char *k = jsonstr_utf8(key, strlen(key), NULL);
	json_t *old;

	if (k == NULL)
		return;
	old = json_object_get(o, k);
	control_int(o, k, (old != NULL ? (long long)json_integer_value(old) : 0) + n);
	free(k);
}

/*
 * control_conns - the "connections", "held", "stages" and "listeners"
 * members of o, over every worker (the open ones of each as of its last
 * update, this one's now). Connections of a listener that a reload
 * removed count as "other".
 */
static void control_conns(struct mxg *mxg, const struct wshm_listener *by_lst, int nconns,
			  const uint32_t *by_stage, json_t *o)
{
	long long other = nconns;
	json_t *stages = json_object(), *lst = json_object();

	control_int(o, "connections", nconns);
	control_int(o, "held", by_stage[STAGE_TARPIT]);
	for (int s = 0; s <= STAGE_TARPIT; s++)
		control_int(stages, conn_stage_name(s), by_stage[s]);
	json_object_set_new(o, "stages", stages);
	for (int i = 0; by_lst != NULL && i < mxg->nlisteners; i++) {
		control_count_add(lst, mxg->listeners[i].name, (long long)by_lst[i].open);
		other -= (long long)by_lst[i].open;
	}
	if (other > 0)
		control_count_add(lst, "other", other);
	json_object_set_new(o, "listeners", lst);
}

/* control_counters - the "refusals" and "verdicts" members of o. */
static void control_counters(const struct mxg_stats *st, json_t *o)
{
	json_t *ref = json_object(), *ver = json_object();

	for (int r = 0; r < REFUSE_NREASONS; r++)
		control_int(ref, control_refusal_names[r], (long long)st->refusals[r]);
	json_object_set_new(o, "refusals", ref);
	for (int v = VERDICT_CLEAN; v <= VERDICT_BLACK; v++)
		control_int(ver, rules_verdict_name(v), (long long)st->verdicts[v]);
	json_object_set_new(o, "verdicts", ver);
}

/*
 * control_workers - the "workers" member of o: one object per worker
 * process, from the shared slots (wshm.c); with workers = 1, this process.
 */
static void control_workers(struct mxg *mxg, json_t *o)
{
	json_t *arr = json_array();

	for (int i = 0; i < wshm_nworkers(mxg->wshm); i++) {
		const struct wshm_slot *s = wshm_slot(mxg->wshm, i);
		json_t *e = json_object();

		control_int(e, "worker", i);
		control_int(e, "pid", (long long)s->pid);
		json_object_set_new(e, "alive", json_boolean(s->pid != 0));
		control_int(e, "connections", s->pid != 0 ? s->nconns : 0);
		control_int(e, "accepted", (long long)s->stats.accepted);
		control_int(e, "refused", (long long)s->stats.refused);
		control_int(e, "restarts", (long long)s->restarts);
		control_int(e, "started", (long long)s->started);
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "workers", arr);
}

/*
 * control_totals - the counters and connections of every worker into o
 * (accepted ... verdicts, stages, listeners), this one's brought up to date
 * first.
 */
static void control_totals(struct mxg *mxg, json_t *o, int backend_fail)
{
	struct mxg_stats st;
	uint32_t stages[WSHM_STAGES];
	struct wshm_listener *lst =
	    mxg->nlisteners > 0 ? calloc((size_t)mxg->nlisteners, sizeof(*lst)) : NULL;
	int nconns;

	wshm_update(mxg->wshm, mxg->worker, mxg, NULL, 0);
	wshm_total(mxg->wshm, mxg, &st, &nconns, stages, lst);
	control_int(o, "accepted", (long long)st.accepted);
	control_int(o, "refused", (long long)st.refused);
	control_int(o, "passed", (long long)st.passed);
	if (backend_fail)
		control_int(o, "backend_fail", (long long)st.backend_fail);
	control_conns(mxg, lst, nconns, stages, o);
	control_counters(&st, o);
	free(lst);
}

/*
 * control_store_status - the "store" member of o: the backend and, with
 * Redis, whether decisions are local right now; records per kind. null
 * when there is no store.
 */
static void control_store_status(struct mxg *mxg, json_t *o)
{
	struct store *s = mxg->store;
	struct store_status st;
	json_t *so, *rec;

	if (s == NULL) {
		json_object_set_new(o, "store", json_null());
		return;
	}
	memset(&st, 0, sizeof(st));
	store_status(s, &st);
	so = json_object();
	control_str(so, "backend", st.backend != NULL ? st.backend : "unknown");
	json_object_set_new(so, "connected", json_boolean(st.connected));
	json_object_set_new(so, "fallback", json_boolean(st.fallback));
	control_int(so, "fallback_since", (long long)st.fallback_since);
	control_int(so, "fallbacks", (long long)st.fallbacks);
	control_int(so, "timeouts", (long long)st.timeouts);
	control_int(so, "replay_pending", (long long)st.replay_pending);
	control_int(so, "replay_dropped", (long long)st.replay_dropped);
	control_int(so, "cached", (long long)st.cached);
	rec = json_object();
	for (int k = 0; k < STORE_NKINDS; k++)
		control_int(rec, store_kind_name(k), store_count(s, k));
	json_object_set_new(so, "records", rec);
	json_object_set_new(o, "store", so);
}

/* control_sum - add the numbers of src to those of dst, member by member. */
static void control_sum(json_t *dst, json_t *src)
{
	const char *key;
	json_t *v, *d;

	json_object_foreach(src, key, v)
	{
		d = json_object_get(dst, key);
		if (json_is_integer(v) && json_is_integer(d))
			json_integer_set(d, json_integer_value(d) + json_integer_value(v));
		else if (json_is_object(v) && json_is_object(d))
			control_sum(d, v);
	}
}

/*
 * control_engines - with several workers, the other workers' engine status
 * (wshm.c: each writes its own once a second) added to this one's in eng:
 * held, verdicts, tarpit, greylist, awl, DNS cache entries. The store's
 * records are the same for every worker and are not added.
 */
static void control_engines(struct mxg *mxg, json_t *eng)
{
	char buf[WSHM_ENGINE_MAX];

	for (int i = 0; i < wshm_nworkers(mxg->wshm); i++) {
		json_t *o;

		if (i == mxg->worker || wshm_slot(mxg->wshm, i)->pid == 0 ||
		    wshm_engine(mxg->wshm, i, buf, sizeof(buf)) < 0 ||
		    (o = json_loads(buf, 0, NULL)) == NULL)
			continue;
		control_sum(eng, o);
		json_decref(o);
	}
}

/* control_ok - a new answer {"ok":true} for the members to follow. */
static json_t *control_ok(void)
{
	json_t *a = json_object();

	json_object_set_new(a, "ok", json_true());
	return a;
}

/*
 * control_status - the daemon at a glance. The members of earlier versions
 * (pid ... stages, engine) keep their names: scripts read them.
 */
static json_t *control_status(struct control *ctl)
{
	struct mxg *mxg = ctl->mxg;
	json_t *a = control_ok();

	/* The daemon's: with workers, the master's (the one systemd and kill know). */
	control_int(a, "pid", (long long)wshm_master(mxg->wshm));
	control_int(a, "uptime", (long long)(time(NULL) - mxg->started));
	json_object_set_new(a, "stopping", json_boolean(mxg->stopping));
	control_totals(mxg, a, 1);
	control_workers(mxg, a);
	control_store_status(mxg, a);
	/* The shield: attack state per listener group, blocks, tables. */
	shield_status(mxg, a);
	if (mxg->engine != NULL) {
		json_t *eng = json_object();

		grey_status(mxg->engine, eng);
		control_engines(mxg, eng);
		json_object_set_new(a, "engine", eng);
	}
	if (mxg->policy != NULL) {
		json_t *pol = json_object();

		policy_status(mxg->policy, pol);
		json_object_set_new(a, "policy", pol);
	}
	return a;
}

/* control_hold - a held connection and when its hold began. */
struct control_hold {
	int64_t since_ms;
	const struct conn *c;
};

static int control_hold_cmp(const void *a, const void *b)
{
	const struct control_hold *x = a, *y = b;

	return x->since_ms < y->since_ms ? -1 : x->since_ms > y->since_ms;
}

/*
 * control_holds - the "holds" member of o: the oldest CONTROL_HOLDS_MAX
 * holds first. "age" is in seconds with milliseconds (a real: control_send
 * writes it with enough digits to keep the three decimals exact).
 */
static void control_holds(struct mxg *mxg, int64_t now, json_t *o)
{
	struct control_hold *h = NULL;
	int n = 0, max = 0;
	json_t *arr = json_array();

	for (struct conn *c = mxg->conns; c != NULL; c = c->next)
		max += c->stage == STAGE_TARPIT;
	/* On allocation failure the list is empty; "held" still counts them. */
	if (max > 0)
		h = calloc((size_t)max, sizeof(*h));
	for (struct conn *c = mxg->conns; h != NULL && c != NULL && n < max; c = c->next) {
		if (c->stage != STAGE_TARPIT)
			continue;
		h[n].since_ms =
		    (int64_t)c->start.tv_sec * 1000 + c->start.tv_usec / 1000 + c->held_ms;
		h[n++].c = c;
	}
	if (n > 1)
		qsort(h, (size_t)n, sizeof(*h), control_hold_cmp);
	for (int i = 0; i < n && i < CONTROL_HOLDS_MAX; i++) {
		char ip[NETADDR_STRLEN];
		int64_t age = now - h[i].since_ms;
		json_t *e = json_object();

		netaddr_ip(&h[i].c->client.ss.sa, ip, sizeof(ip));
		control_str(e, "client", ip);
		json_object_set_new(e, "age", json_real(age > 0 ? (double)age / 1000.0 : 0.0));
		control_str(e, "name", h[i].c->name != NULL ? h[i].c->name : "unknown");
		json_array_append_new(arr, e);
	}
	json_object_set_new(o, "holds", arr);
	free(h);
}

/*
 * control_top - one snapshot for mxguardctl top: what status has (without
 * the store walk), the holds and the recent verdicts, newest first. Rates
 * are the client's business: it has two snapshots and their "now_ms".
 */
static json_t *control_top(struct control *ctl)
{
	struct mxg *mxg = ctl->mxg;
	int64_t now = control_now_ms();
	const struct grey_recent *v;
	json_t *a = control_ok(), *recent = json_array();

	control_int(a, "now_ms", (long long)now);
	control_int(a, "uptime", (long long)(time(NULL) - mxg->started));
	control_totals(mxg, a, 0);
	control_holds(mxg, now, a);
	for (unsigned i = 0; (v = grey_recent(mxg->engine, i)) != NULL; i++) {
		int64_t age = now - v->ms;
		json_t *e = json_object();

		control_int(e, "age", (long long)(age > 0 ? age / 1000 : 0));
		control_str(e, "client", v->client);
		control_str(e, "name", v->name);
		control_str(e, "helo", v->helo);
		control_str(e, "verdict", control_verdict_name(v->verdict));
		control_str(e, "reason", v->reason);
		json_array_append_new(recent, e);
	}
	json_object_set_new(a, "recent", recent);
	return a;
}

/* control_error - the answer {"ok":false,"error":msg}. */
static json_t *control_error(const char *msg)
{
	json_t *a = json_object();

	json_object_set_new(a, "ok", json_false());
	control_str(a, "error", msg);
	return a;
}

/*
 * control_send - write answer (which it frees) to out as one compact line
 * and a newline: every answer is dumped here, once. Fifteen significant
 * digits for reals: the shortest text that keeps a hold's age (seconds
 * with three decimals) exact, where jansson's default of 17 would write
 * 3.5009999999999999. An answer that cannot be made (out of memory) is
 * an error answer written by hand, still one JSON line.
 */
static void control_send(struct evbuffer *out, json_t *answer)
{
	char *text =
	    answer != NULL
		? json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
		: NULL;

	json_decref(answer);
	if (text == NULL) {
		evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"out of memory\"}\n");
		return;
	}
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
}

static int control_list_cb(const char *key, const struct store_rec *rec, void *arg)
{
	json_t *records = arg, *e = json_object();

	control_str(e, "key", key);
	control_int(e, "first", (long long)rec->first);
	control_int(e, "last", (long long)rec->last);
	control_int(e, "expires", (long long)rec->expires);
	control_int(e, "count", (long long)rec->count);
	json_array_append_new(records, e);
	return 0;
}

/* control_keys - a batch of keys collected by a store walk (flush). */
struct control_keys {
	char **keys;
	int n, max;
};

static int control_key_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct control_keys *k = arg;

	(void)rec;
	if (k->n >= k->max || (k->keys[k->n] = strdup(key)) == NULL)
		return 1;
	return ++k->n >= k->max;
}

/*
 * control_flush - remove every record of kind. A walk must not change what
 * it walks, so keys are collected a batch at a time, then deleted: memory
 * stays bounded whatever the store holds. A pass that deletes nothing ends
 * the loop (no endless loop on a record that will not go). Returns the
 * number removed, or -1 on a store error.
 */
static long control_flush(struct mxg *mxg, struct engine *e, int kind)
{
	char *keys[CONTROL_FLUSH_BATCH];
	long total = 0;

	for (;;) {
		struct control_keys k = {keys, 0, CONTROL_FLUSH_BATCH};
		int rc = store_list(mxg->store, kind, control_key_cb, &k), failed = 0;
		long before = total;

		for (int i = 0; i < k.n; i++) {
			/* Whitelist and blocks also live in memory (and nftables). */
			char err[256];
			int d = kind == STORE_WHITE ? grey_white_del(e, keys[i])
				: kind == STORE_BLOCK
				    ? shield_unblock(mxg, keys[i], err, sizeof(err))
				    : store_del(mxg->store, kind, keys[i]);

			if (d < 0)
				failed = 1;
			total += d > 0;
			free(keys[i]);
		}
		if (rc < 0 || failed)
			return -1;
		if (k.n < CONTROL_FLUSH_BATCH || total == before)
			break;
	}
	return total;
}

/*
 * control_parse_request - see control.h. The record verbs are checked in
 * the order the answers promise: an unknown kind first, then (in
 * control_records, which knows whether there is a store) the rest.
 */
int control_parse_request(const char *buf, size_t len, struct control_req *rq)
{
	char *line = rq->line, *save = NULL, *verb, *kind_s, *key;

	memset(rq, 0, sizeof(*rq));
	rq->op = CONTROL_OP_BAD;
	rq->kind = -1;
	if (len > CONTROL_LINE_MAX) {
		snprintf(rq->err, sizeof(rq->err), "request longer than %d bytes",
			 CONTROL_LINE_MAX);
		return rq->op;
	}
	/* As a C string: a NUL byte ends the request, as it always has. */
	memcpy(line, buf, len);
	line[len] = '\0';
	if (strncmp(line, "list ", 5) != 0 && strncmp(line, "add ", 4) != 0 &&
	    strncmp(line, "del ", 4) != 0 && strncmp(line, "flush ", 6) != 0) {
		if (strcmp(line, "status") == 0) {
			rq->op = CONTROL_OP_STATUS;
		} else if (strcmp(line, "top") == 0) {
			rq->op = CONTROL_OP_TOP;
		} else if (strcmp(line, "ping") == 0) {
			rq->op = CONTROL_OP_PING;
		} else if (strcmp(line, "notify-test") == 0 ||
			   strncmp(line, "notify-test ", 12) == 0) {
			rq->op = CONTROL_OP_NOTIFY_TEST;
			rq->arg = line[11] ? line + 12 : line + 11; /* "" */
		} else if (strcmp(line, "reload") == 0) {
			rq->op = CONTROL_OP_RELOAD;
		} else if (strncmp(line, "explain ", 8) == 0 && line[8] != '\0') {
			/* ADDR and NAME are checked by explain_answer, which reads them. */
			rq->op = CONTROL_OP_EXPLAIN;
			rq->arg = line + 8;
		} else if (strcmp(line, "explain") == 0 || strncmp(line, "explain ", 8) == 0) {
			snprintf(rq->err, sizeof(rq->err), "usage: explain ADDR [NAME]");
		} else {
			snprintf(rq->err, sizeof(rq->err), "unknown command: %.200s", line);
		}
		return rq->op;
	}
	verb = strtok_r(line, " ", &save);
	kind_s = strtok_r(NULL, " ", &save);
	key = strtok_r(NULL, "", &save);
	rq->kind = kind_s ? store_kind_parse(kind_s) : -1;
	if (rq->kind < 0) {
		snprintf(rq->err, sizeof(rq->err),
			 "unknown record kind '%.40s' (expected tarpit, grey, awl, white or block)",
			 kind_s ? kind_s : "");
		return rq->op;
	}
	rq->arg = key;
	rq->op = CONTROL_OP_RECORD_BAD;
	if (strcmp(verb, "list") == 0 && key == NULL) {
		rq->op = CONTROL_OP_LIST;
	} else if (strcmp(verb, "flush") == 0 && key == NULL) {
		rq->op = CONTROL_OP_FLUSH;
	} else if (strcmp(verb, "add") == 0 && key != NULL) {
		if (rq->kind == STORE_BLOCK) {
			/* "add block ADDR [SECONDS]": the shield blocks it everywhere. */
			char *secs = strchr(key, ' ');

			if (secs != NULL) {
				char *end;

				*secs++ = '\0';
				rq->secs = strtol(secs, &end, 10);
				if (end == secs || *end != '\0' || rq->secs < 1 ||
				    rq->secs > 365L * 86400) {
					rq->secs = 0;
					snprintf(rq->err, sizeof(rq->err),
						 "add block: SECONDS must be 1 to 31536000");
					return rq->op;
				}
			}
			rq->op = CONTROL_OP_ADD;
		} else if (rq->kind != STORE_WHITE) {
			snprintf(rq->err, sizeof(rq->err),
				 "only white entries are added by hand (tarpit, grey and "
				 "awl records are made by the engine)");
		} else {
			rq->op = CONTROL_OP_ADD;
		}
	} else if (strcmp(verb, "del") == 0 && key != NULL) {
		rq->op = CONTROL_OP_DEL;
	} else {
		snprintf(rq->err, sizeof(rq->err),
			 "usage: list KIND | add white ENTRY | del KIND KEY | flush KIND");
	}
	return rq->op;
}

/*
 * control_records - "list KIND", "add KIND ENTRY", "del KIND KEY", "flush
 * KIND", as control_parse_request made them. White entries and blocks are
 * added by hand; tarpit, grey and awl records only by the engine.
 */
static json_t *control_records(struct control *ctl, struct control_req *rq)
{
	struct engine *e = ctl->mxg->engine;
	int kind = rq->kind;
	char *key = rq->arg;
	char err[256];
	json_t *a;

	if (e == NULL || ctl->mxg->store == NULL)
		return control_error("no store (the taRgrey engine is off)");
	if (rq->op == CONTROL_OP_LIST) {
		json_t *records = json_array();

		if (store_list(ctl->mxg->store, kind, control_list_cb, records) < 0) {
			json_decref(records);
			return control_error("store error");
		}
		a = control_ok();
		control_str(a, "kind", store_kind_name(kind));
		json_object_set_new(a, "records", records);
		return a;
	} else if (rq->op == CONTROL_OP_FLUSH) {
		long n = control_flush(ctl->mxg, e, kind);

		if (n < 0)
			return control_error("store error");
		log_info("control: flush %s: %ld record%s removed", store_kind_name(kind), n,
			 n == 1 ? "" : "s");
		a = control_ok();
		control_str(a, "kind", store_kind_name(kind));
		control_int(a, "flushed", n);
		return a;
	} else if (rq->op == CONTROL_OP_ADD) {
		int rc = kind == STORE_BLOCK
			     ? shield_block(ctl->mxg, key, (uint32_t)rq->secs, err, sizeof(err))
			     : grey_white_add(e, key, err, sizeof(err));

		return rc < 0 ? control_error(err) : control_ok();
	} else if (rq->op == CONTROL_OP_DEL) {
		/* A block goes from the shield's table, the store and nftables. */
		int rc = kind == STORE_WHITE   ? grey_white_del(e, key)
			 : kind == STORE_BLOCK ? shield_unblock(ctl->mxg, key, err, sizeof(err))
					       : store_del(ctl->mxg->store, kind, key);

		return rc < 0	 ? control_error("store error")
		       : rc == 0 ? control_error("no such record")
				 : control_ok();
	}
	return control_error(rq->err);
}

/*
 * control_notify_test - "notify-test [TEXT]": one test notice through the
 * configured channels (log, mail, command), rate-limited like the others.
 * TEXT travels as the TEXT data item (MXG_TEXT for notify_command).
 */
static json_t *control_notify_test(struct control *ctl, const char *text)
{
	struct mxg *mxg = ctl->mxg;
	char subject[300];
	struct notify_kv kv[] = {{"TEXT", text}};

	if (mxg->notify == NULL)
		return control_error("notices are not running");
	snprintf(subject, sizeof(subject), "mxguard test notice from %s", mxg->cfg->myhostname);
	notify_send(mxg->notify, NOTIFY_TEST, subject,
		    "This is a test notice, requested on the control socket (notify-test).\n"
		    "Notices of attacks and blocks will arrive the same way.\n",
		    kv, text[0] != '\0');
	return control_ok();
}

/*
 * control_siblings - a change the other workers must make too: white
 * entries (each worker keeps the list in memory) and flushes. Blocks are
 * not sent here: the shield tells the other instances of each itself.
 */
static void control_siblings(struct control *ctl, const struct control_req *rq, const char *line,
			     size_t len, const json_t *answer)
{
	struct mxg *mxg = ctl->mxg;
	char msg[WSHM_MSG_MAX];

	if (ctl->replay || wshm_nworkers(mxg->wshm) < 2 ||
	    !json_is_true(json_object_get(answer, "ok")))
		return;
	if (rq->op != CONTROL_OP_FLUSH &&
	    !((rq->op == CONTROL_OP_ADD || rq->op == CONTROL_OP_DEL) && rq->kind == STORE_WHITE))
		return;
	if (snprintf(msg, sizeof(msg), "ctl %.*s", (int)len, line) < (int)sizeof(msg))
		wshm_post(mxg->wshm, mxg->worker, msg);
}

/*
 * control_answer - the answer to one request of len bytes (its parse says
 * which verb), as one json_t for control_send.
 */
static json_t *control_answer(struct control *ctl, const char *line, size_t len)
{
	struct control_req rq;
	char err[512];
	json_t *a;

	switch (control_parse_request(line, len, &rq)) {
	case CONTROL_OP_LIST:
	case CONTROL_OP_FLUSH:
	case CONTROL_OP_ADD:
	case CONTROL_OP_DEL:
	case CONTROL_OP_RECORD_BAD:
		a = control_records(ctl, &rq);
		control_siblings(ctl, &rq, line, len, a);
		return a;
	case CONTROL_OP_STATUS:
		return control_status(ctl);
	case CONTROL_OP_TOP:
		return control_top(ctl);
	case CONTROL_OP_PING:
		return control_ok();
	case CONTROL_OP_NOTIFY_TEST:
		return control_notify_test(ctl, rq.arg);
	case CONTROL_OP_EXPLAIN:
		a = explain_answer(ctl->mxg, rq.arg, err, sizeof(err));
		return a != NULL ? a : control_error(err);
	case CONTROL_OP_RELOAD:
		if (ctl->reload == NULL)
			return control_error("reload is not available");
		if (ctl->reload(ctl->mxg, err, sizeof(err)) == 0)
			return control_ok();
		return control_error(err);
	case CONTROL_OP_BAD:
		break;
	}
	return control_error(rq.err);
}

static void control_done_cb(struct bufferevent *bev, void *arg)
{
	bufferevent_free(bev);
}

static void control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void control_read_cb(struct bufferevent *bev, void *arg)
{
	struct control *ctl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = 0;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) <= CONTROL_LINE_MAX)
			return; /* the rest of the line is on its way */
		/* No end of line within the limit: the parse says so, then close. */
		len = evbuffer_get_length(in);
		evbuffer_drain(in, len);
		control_send(bufferevent_get_output(bev), control_answer(ctl, "", len));
	} else {
		/* An oversized line is refused by the parse (no copy of it is made). */
		control_send(bufferevent_get_output(bev), control_answer(ctl, line, len));
		free(line);
	}
	/* One request per connection: close once the answer is out. */
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, control_done_cb, control_event_cb, ctl);
}

static void control_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			      int salen, void *arg)
{
	struct control *ctl = arg;
	struct bufferevent *bev = bufferevent_socket_new(ctl->mxg->base, fd, BEV_OPT_CLOSE_ON_FREE);
	struct timeval tv = {CONTROL_TIMEOUT, 0};

	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, control_read_cb, NULL, control_event_cb, ctl);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void control_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control *ctl = arg;

	if (ctl->evl != NULL)
		evconnlistener_enable(ctl->evl);
}

/* control_error_cb - accept() failed (EMFILE as a rule): pause as listen.c does. */
static void control_error_cb(struct evconnlistener *evl, void *arg)
{
	struct control *ctl = arg;
	char what[300];

	snprintf(what, sizeof(what), "control %s", ctl->path);
	listen_pause(evl, &ctl->pause, what);
}

struct control *control_open(struct mxg *mxg, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sun;
	char path[1024];

	if (ctl == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	ctl->mxg = mxg;
	cfg_control_path(mxg->cfg, path, sizeof(path));
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "control_socket: path too long: %s", path);
		free(ctl);
		return NULL;
	}
	memcpy(ctl->path, path, strlen(path) + 1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0) {
		snprintf(err, errsz, "control_socket: socket: %s", strerror(errno));
		free(ctl);
		return NULL;
	}
	/* 0660: run_as and its group (mxguardctl users) only. */
	if (unixsock_bind_as(ctl->fd, &sun, uid, gid, 0117) < 0 || listen(ctl->fd, 16) < 0) {
		snprintf(err, errsz, "control_socket %s: %s", path, strerror(errno));
		close(ctl->fd);
		free(ctl);
		return NULL;
	}
	return ctl;
}

void control_set_reload(struct control *ctl, int (*reload)(struct mxg *, char *, size_t))
{
	ctl->reload = reload;
}

int control_start(struct control *ctl)
{
	ctl->evl = evconnlistener_new(ctl->mxg->base, control_accept_cb, ctl,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, ctl->fd);
	ctl->pause.retry = evtimer_new(ctl->mxg->base, control_retry_cb, ctl);
	if (ctl->evl == NULL || ctl->pause.retry == NULL)
		return -1;
	evconnlistener_set_error_cb(ctl->evl, control_error_cb);
	return 0;
}

void control_close(struct control **ctlp)
{
	struct control *ctl = *ctlp;

	*ctlp = NULL;
	if (ctl == NULL)
		return;
	if (ctl->evl != NULL)
		evconnlistener_free(ctl->evl);
	else
		close(ctl->fd);
	if (ctl->pause.retry != NULL)
		event_free(ctl->pause.retry);
	if (ctl->path[0] != '\0')
		unlink(ctl->path);
	free(ctl);
}

void control_disown(struct control *ctl)
{
	if (ctl != NULL)
		ctl->path[0] = '\0';
}

void control_apply(struct mxg *mxg, const char *line)
{
	struct control tmp;
	json_t *a;
	char esc[200];

	memset(&tmp, 0, sizeof(tmp));
	tmp.mxg = mxg;
	tmp.fd = -1;
	tmp.replay = 1;
	a = control_answer(&tmp, line, strlen(line));
	if (!json_is_true(json_object_get(a, "ok")))
		log_warn("worker %d: \"%s\" from another worker: %s", mxg->worker,
			 log_escape(esc, sizeof(esc), line, strlen(line)),
			 json_string_value(json_object_get(a, "error")) != NULL
			     ? json_string_value(json_object_get(a, "error"))
			     : "failed");
	json_decref(a);
}
