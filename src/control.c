/*
 * control.c - the control socket.
 *
 * Local clients only (a unix socket, mode 0660): permission is the file's.
 * Requests are single lines of at most CONTROL_LINE_MAX bytes; a client
 * that sends more, or nothing for CONTROL_TIMEOUT seconds, is dropped.
 * Every answer is one JSON object on one line; errors are
 * {"ok":false,"error":"..."}.
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
#include <sys/fsuid.h>
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

#define CONTROL_TIMEOUT 10
#define CONTROL_HOLDS_MAX 100	 /* oldest tarpit holds in a "top" snapshot */
#define CONTROL_FLUSH_BATCH 1024 /* keys collected per pass of "flush" */

struct control {
	struct mxg *mxg;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct evconnlistener *evl;
	struct listen_pause pause; /* after an accept error (listen.c) */
	int (*reload)(struct mxg *, char *, size_t); /* control_set_reload */
};

/* Names of enum refuse_reason (mxguard.h), as status and top report them. */
static const char *const control_refusal_names[] = {
    "overload",	   "blocked",	  "static",	 "bogus",	"country",
    "conn_source", "conn_prefix", "rate_source", "rate_prefix", "attack",
};
_Static_assert(sizeof(control_refusal_names) / sizeof(control_refusal_names[0]) == REFUSE_NREASONS,
	       "one name per enum refuse_reason");

static void control_json(struct evbuffer *out, const char *s);

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
 * control_conns - "connections", "held", "stages" and "listeners" members
 * (each followed by a comma). Connections of a listener that a reload
 * removed count as "other".
 */
static void control_conns(struct mxg *mxg, struct evbuffer *out)
{
	int by_stage[STAGE_TARPIT + 1] = {0};
	int *by_lst = mxg->nlisteners > 0 ? calloc((size_t)mxg->nlisteners, sizeof(int)) : NULL;
	int other = 0, i;

	for (struct conn *c = mxg->conns; c != NULL; c = c->next) {
		if (c->stage <= STAGE_TARPIT)
			by_stage[c->stage]++;
		for (i = 0; i < mxg->nlisteners && c->lst != &mxg->listeners[i]; i++)
			;
		if (by_lst != NULL && i < mxg->nlisteners)
			by_lst[i]++;
		else
			other++;
	}
	evbuffer_add_printf(out, "\"connections\":%d,\"held\":%d,\"stages\":{", mxg->nconns,
			    by_stage[STAGE_TARPIT]);
	for (int s = 0; s <= STAGE_TARPIT; s++)
		evbuffer_add_printf(out, "%s\"%s\":%d", s ? "," : "", conn_stage_name(s),
				    by_stage[s]);
	evbuffer_add_printf(out, "},\"listeners\":{");
	for (i = 0; by_lst != NULL && i < mxg->nlisteners; i++) {
		evbuffer_add_printf(out, "%s\"", i ? "," : "");
		control_json(out, mxg->listeners[i].name);
		evbuffer_add_printf(out, "\":%d", by_lst[i]);
	}
	if (other > 0)
		evbuffer_add_printf(out, "%s\"other\":%d", i ? "," : "", other);
	evbuffer_add_printf(out, "},");
	free(by_lst);
}

/* control_counters - "refusals" and "verdicts" members (no comma after). */
static void control_counters(struct mxg *mxg, struct evbuffer *out)
{
	evbuffer_add_printf(out, "\"refusals\":{");
	for (int r = 0; r < REFUSE_NREASONS; r++)
		evbuffer_add_printf(out, "%s\"%s\":%llu", r ? "," : "", control_refusal_names[r],
				    (unsigned long long)mxg->stats.refusals[r]);
	evbuffer_add_printf(out, "},\"verdicts\":{");
	for (int v = VERDICT_CLEAN; v <= VERDICT_BLACK; v++)
		evbuffer_add_printf(out, "%s\"%s\":%llu", v ? "," : "", rules_verdict_name(v),
				    (unsigned long long)mxg->stats.verdicts[v]);
	evbuffer_add_printf(out, "}");
}

/*
 * control_store_status - the "store" member: the backend and, with Redis,
 * whether decisions are local right now; records per kind.
 */
static void control_store_status(struct mxg *mxg, struct evbuffer *out)
{
	struct store *s = mxg->store;
	struct store_status st;
	char *backend;

	if (s == NULL) {
		evbuffer_add_printf(out, ",\"store\":null");
		return;
	}
	memset(&st, 0, sizeof(st));
	store_status(s, &st);
	backend = jsonstr_quote(st.backend != NULL ? st.backend : "unknown");
	evbuffer_add_printf(out,
			    ",\"store\":{\"backend\":%s,\"connected\":%s,\"fallback\":%s,"
			    "\"fallback_since\":%lld,\"fallbacks\":%llu,\"timeouts\":%llu,"
			    "\"replay_pending\":%llu,\"replay_dropped\":%llu,\"cached\":%llu,"
			    "\"records\":{",
			    backend != NULL ? backend : "\"unknown\"",
			    st.connected ? "true" : "false", st.fallback ? "true" : "false",
			    (long long)st.fallback_since, (unsigned long long)st.fallbacks,
			    (unsigned long long)st.timeouts, (unsigned long long)st.replay_pending,
			    (unsigned long long)st.replay_dropped, (unsigned long long)st.cached);
	free(backend);
	for (int k = 0; k < STORE_NKINDS; k++)
		evbuffer_add_printf(out, "%s\"%s\":%ld", k ? "," : "", store_kind_name(k),
				    store_count(s, k));
	evbuffer_add_printf(out, "}}");
}

/*
 * control_status - the daemon at a glance. The members of earlier versions
 * (pid ... stages, engine) keep their names: scripts read them.
 */
static void control_status(struct control *ctl, struct evbuffer *out)
{
	struct mxg *mxg = ctl->mxg;

	evbuffer_add_printf(
	    out,
	    "{\"ok\":true,\"pid\":%ld,\"uptime\":%ld,\"stopping\":%s,"
	    "\"accepted\":%llu,\"refused\":%llu,\"passed\":%llu,"
	    "\"backend_fail\":%llu,",
	    (long)getpid(), (long)(time(NULL) - mxg->started), mxg->stopping ? "true" : "false",
	    (unsigned long long)mxg->stats.accepted, (unsigned long long)mxg->stats.refused,
	    (unsigned long long)mxg->stats.passed, (unsigned long long)mxg->stats.backend_fail);
	control_conns(mxg, out);
	control_counters(mxg, out);
	control_store_status(mxg, out);
	/* The shield: attack state per listener group, blocks, tables. */
	evbuffer_add_printf(out, ",\"shield\":");
	shield_status(mxg, out);
	if (mxg->engine != NULL) {
		char eng[1024];

		grey_status(mxg->engine, eng, sizeof(eng));
		evbuffer_add_printf(out, ",\"engine\":{%s}", eng);
	}
	if (mxg->policy != NULL) {
		char pol[512];

		policy_status(mxg->policy, pol, sizeof(pol));
		evbuffer_add_printf(out, ",\"policy\":{%s}", pol);
	}
	evbuffer_add_printf(out, "}\n");
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

/* control_holds - the "holds" member: the oldest CONTROL_HOLDS_MAX holds first. */
static void control_holds(struct mxg *mxg, int64_t now, struct evbuffer *out)
{
	struct control_hold *h = NULL;
	int n = 0, max = 0;

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
	evbuffer_add_printf(out, ",\"holds\":[");
	for (int i = 0; i < n && i < CONTROL_HOLDS_MAX; i++) {
		char ip[NETADDR_STRLEN];
		int64_t age = now - h[i].since_ms;

		netaddr_ip(&h[i].c->client.ss.sa, ip, sizeof(ip));
		evbuffer_add_printf(out, "%s{\"client\":\"%s\",\"age\":%lld.%03lld,\"name\":\"",
				    i ? "," : "", ip, (long long)(age > 0 ? age / 1000 : 0),
				    (long long)(age > 0 ? age % 1000 : 0));
		control_json(out, h[i].c->name != NULL ? h[i].c->name : "unknown");
		evbuffer_add_printf(out, "\"}");
	}
	evbuffer_add_printf(out, "]");
	free(h);
}

/*
 * control_top - one snapshot for mxguardctl top: what status has (without
 * the store walk), the holds and the recent verdicts, newest first. Rates
 * are the client's business: it has two snapshots and their "now_ms".
 */
static void control_top(struct control *ctl, struct evbuffer *out)
{
	struct mxg *mxg = ctl->mxg;
	int64_t now = control_now_ms();
	const struct grey_recent *v;

	evbuffer_add_printf(out,
			    "{\"ok\":true,\"now_ms\":%lld,\"uptime\":%ld,\"accepted\":%llu,"
			    "\"refused\":%llu,\"passed\":%llu,",
			    (long long)now, (long)(time(NULL) - mxg->started),
			    (unsigned long long)mxg->stats.accepted,
			    (unsigned long long)mxg->stats.refused,
			    (unsigned long long)mxg->stats.passed);
	control_conns(mxg, out);
	control_counters(mxg, out);
	control_holds(mxg, now, out);
	evbuffer_add_printf(out, ",\"recent\":[");
	for (unsigned i = 0; (v = grey_recent(mxg->engine, i)) != NULL; i++) {
		int64_t age = now - v->ms;

		evbuffer_add_printf(out, "%s{\"age\":%lld,\"client\":\"", i ? "," : "",
				    (long long)(age > 0 ? age / 1000 : 0));
		control_json(out, v->client);
		evbuffer_add_printf(out, "\",\"name\":\"");
		control_json(out, v->name);
		evbuffer_add_printf(out, "\",\"helo\":\"");
		control_json(out, v->helo);
		evbuffer_add_printf(out, "\",\"verdict\":\"%s\",\"reason\":\"",
				    control_verdict_name(v->verdict));
		control_json(out, v->reason);
		evbuffer_add_printf(out, "\"}");
	}
	evbuffer_add_printf(out, "]}\n");
}

/*
 * control_json - s as the body of a JSON string (the caller writes the
 * quotes): made by jansson through jsonstr_quote, so that invalid UTF-8
 * from a client becomes U+FFFD and the answer always parses.
 */
static void control_json(struct evbuffer *out, const char *s)
{
	char *q = jsonstr_quote(s);
	size_t n = q != NULL ? strlen(q) : 0;

	if (n >= 2)
		evbuffer_add(out, q + 1, n - 2);
	free(q);
}

static void control_error(struct evbuffer *out, const char *msg)
{
	evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"");
	control_json(out, msg);
	evbuffer_add_printf(out, "\"}\n");
}

struct control_walk {
	struct evbuffer *out;
	int n;
};

static int control_list_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct control_walk *w = arg;

	evbuffer_add_printf(w->out, "%s{\"key\":\"", w->n++ ? "," : "");
	control_json(w->out, key);
	evbuffer_add_printf(
	    w->out, "\",\"first\":%lld,\"last\":%lld,\"expires\":%lld,\"count\":%u}",
	    (long long)rec->first, (long long)rec->last, (long long)rec->expires, rec->count);
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
static void control_records(struct control *ctl, struct control_req *rq, struct evbuffer *out)
{
	struct engine *e = ctl->mxg->engine;
	int kind = rq->kind;
	char *key = rq->arg;
	char err[256];

	if (e == NULL || ctl->mxg->store == NULL) {
		control_error(out, "no store (the taRgrey engine is off)");
		return;
	}
	if (rq->op == CONTROL_OP_LIST) {
		struct control_walk w = {out, 0};

		evbuffer_add_printf(out, "{\"ok\":true,\"kind\":\"%s\",\"records\":[",
				    store_kind_name(kind));
		if (store_list(ctl->mxg->store, kind, control_list_cb, &w) < 0) {
			evbuffer_drain(out, evbuffer_get_length(out));
			control_error(out, "store error");
			return;
		}
		evbuffer_add_printf(out, "]}\n");
	} else if (rq->op == CONTROL_OP_FLUSH) {
		long n = control_flush(ctl->mxg, e, kind);

		if (n < 0) {
			control_error(out, "store error");
			return;
		}
		log_info("control: flush %s: %ld record%s removed", store_kind_name(kind), n,
			 n == 1 ? "" : "s");
		evbuffer_add_printf(out, "{\"ok\":true,\"kind\":\"%s\",\"flushed\":%ld}\n",
				    store_kind_name(kind), n);
	} else if (rq->op == CONTROL_OP_ADD) {
		int rc = kind == STORE_BLOCK
			     ? shield_block(ctl->mxg, key, (uint32_t)rq->secs, err, sizeof(err))
			     : grey_white_add(e, key, err, sizeof(err));

		if (rc < 0)
			control_error(out, err);
		else
			evbuffer_add_printf(out, "{\"ok\":true}\n");
	} else if (rq->op == CONTROL_OP_DEL) {
		/* A block goes from the shield's table, the store and nftables. */
		int rc = kind == STORE_WHITE   ? grey_white_del(e, key)
			 : kind == STORE_BLOCK ? shield_unblock(ctl->mxg, key, err, sizeof(err))
					       : store_del(ctl->mxg->store, kind, key);

		if (rc < 0)
			control_error(out, "store error");
		else if (rc == 0)
			control_error(out, "no such record");
		else
			evbuffer_add_printf(out, "{\"ok\":true}\n");
	} else {
		control_error(out, rq->err);
	}
}

/*
 * control_notify_test - "notify-test [TEXT]": one test notice through the
 * configured channels (log, mail, command), rate-limited like the others.
 * TEXT travels as the TEXT data item (MXG_TEXT for notify_command).
 */
static void control_notify_test(struct control *ctl, const char *text, struct evbuffer *out)
{
	struct mxg *mxg = ctl->mxg;
	char subject[300];
	struct notify_kv kv[] = {{"TEXT", text}};

	if (mxg->notify == NULL) {
		control_error(out, "notices are not running");
		return;
	}
	snprintf(subject, sizeof(subject), "mxguard test notice from %s", mxg->cfg->myhostname);
	notify_send(mxg->notify, NOTIFY_TEST, subject,
		    "This is a test notice, requested on the control socket (notify-test).\n"
		    "Notices of attacks and blocks will arrive the same way.\n",
		    kv, text[0] != '\0');
	evbuffer_add_printf(out, "{\"ok\":true}\n");
}

static void control_request(struct control *ctl, const char *line, struct evbuffer *out)
{
	struct control_req rq;
	char err[512];

	switch (control_parse_request(line, strlen(line), &rq)) {
	case CONTROL_OP_LIST:
	case CONTROL_OP_FLUSH:
	case CONTROL_OP_ADD:
	case CONTROL_OP_DEL:
	case CONTROL_OP_RECORD_BAD:
		control_records(ctl, &rq, out);
		break;
	case CONTROL_OP_STATUS:
		control_status(ctl, out);
		break;
	case CONTROL_OP_TOP:
		control_top(ctl, out);
		break;
	case CONTROL_OP_PING:
		evbuffer_add_printf(out, "{\"ok\":true}\n");
		break;
	case CONTROL_OP_NOTIFY_TEST:
		control_notify_test(ctl, rq.arg, out);
		break;
	case CONTROL_OP_EXPLAIN:
		if (explain_answer(ctl->mxg, rq.arg, out, err, sizeof(err)) < 0)
			control_error(out, err);
		break;
	case CONTROL_OP_RELOAD:
		if (ctl->reload == NULL)
			control_error(out, "reload is not available");
		else if (ctl->reload(ctl->mxg, err, sizeof(err)) == 0)
			evbuffer_add_printf(out, "{\"ok\":true}\n");
		else
			control_error(out, err);
		break;
	case CONTROL_OP_BAD:
		control_error(out, rq.err);
		break;
	}
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
	char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	if (strlen(line) > CONTROL_LINE_MAX) {
		free(line);
		bufferevent_free(bev);
		return;
	}
	control_request(ctl, line, bufferevent_get_output(bev));
	free(line);
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

/*
 * control_bind - bind fd to path, created 0660 and owned by uid:gid from
 * the start. mxguard is root here and the directory belongs to run_as: a
 * chmod or chown by path after bind would follow whatever run_as had put
 * there meanwhile (a symlink to /etc/shadow). So nothing is done by path:
 * the umask gives the mode, and the filesystem ids of the bind (fsuid,
 * fsgid) give the owner, as if run_as had bound it.
 */
static int control_bind(int fd, const struct sockaddr_un *sun, uid_t uid, gid_t gid)
{
	int as_root = geteuid() == 0, rc, saved;
	mode_t mask = umask(0117);
	uid_t ofsuid = 0;
	gid_t ofsgid = 0;

	if (as_root) {
		ofsgid = (gid_t)setfsgid(gid);
		ofsuid = (uid_t)setfsuid(uid);
	}
	/* A stale socket from an earlier run; unlink does not follow a symlink. */
	unlink(sun->sun_path);
	rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	if (as_root) {
		setfsuid(ofsuid);
		setfsgid(ofsgid);
	}
	umask(mask);
	errno = saved;
	return rc;
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
	if (control_bind(ctl->fd, &sun, uid, gid) < 0 || listen(ctl->fd, 16) < 0) {
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
	unlink(ctl->path);
	free(ctl);
}
