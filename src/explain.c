/*
 * explain.c - mxguardctl explain ADDR [NAME]: one address seen through
 * every module, as one JSON object (built with jansson, every string
 * through jsonstr.c).
 *
 * Layer 6, next to control.c, which calls it: it reads the shield
 * (shield_explain), the engine (its lists and keys: grey_lists,
 * grey_key_for; its verdict ring: grey_recent), the store (store_list
 * walks) and judge.c's pure classification, and changes nothing: no
 * attempt is counted, no record written, no lookup started.
 *
 * What it cannot know is said, not guessed: without NAME the verified
 * name is taken from a live connection of the address or the engine's
 * recent verdicts, else it is unknown (the daemon makes no DNS lookup for
 * explain, and its DNS cache is not read); DNSBL results are not kept
 * after a connection, so the verdict is the one before them; SPF keys
 * depend on the sender and are not shown; HELO lists need a HELO.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "conn.h"
#include "explain.h"
#include "grey.h"
#include "greykey.h"
#include "jsonstr.h"
#include "judge.h"
#include "listen.h"
#include "mxguard.h"
#include "netaddr.h"
#include "rules.h"
#include "shield.h"
#include "store.h"

#define EXPLAIN_GREY_MAX 20 /* greylist triplets shown per client key */
#define EXPLAIN_KEYS 2	    /* client keys looked at: the network's and the engine's */

/* explain_set - o[key] = a string (jsonstr: any bytes give valid JSON). */
static void explain_set(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, s != NULL ? jsonstr_cstr(s) : json_null());
}

static void explain_int(json_t *o, const char *key, long long v)
{
	json_object_set_new(o, key, json_integer(v));
}

/*
 * explain_parse - "ADDR [NAME]" into sa and name (lower case; "" when
 * absent). Returns 0, or -1 with a message in err.
 */
static int explain_parse(const char *args, struct sockaddr_storage *ss, char *name, size_t namesz,
			 char *err, size_t errsz)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *sp = args != NULL ? strchr(args, ' ') : NULL;
	size_t alen = sp != NULL ? (size_t)(sp - args) : args != NULL ? strlen(args) : 0;
	const char *n = sp != NULL ? sp + 1 : "";
	size_t nlen = strlen(n);

	memset(ss, 0, sizeof(*ss));
	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(err, errsz, "explain: expected an IP address, then an optional NAME");
		return -1;
	}
	memcpy(addr, args, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
	} else {
		snprintf(err, errsz, "explain: '%.64s' is not an IP address", addr);
		return -1;
	}
	if (nlen > EXPLAIN_NAME_MAX || nlen >= namesz) {
		snprintf(err, errsz, "explain: NAME longer than %d characters", EXPLAIN_NAME_MAX);
		return -1;
	}
	/* A host name: letters, digits, '-', '_' and dots; nothing else reaches the rules. */
	for (size_t i = 0; i < nlen; i++) {
		unsigned char ch = (unsigned char)n[i];

		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_') {
			snprintf(err, errsz,
				 "explain: NAME must be a host name (letters, digits, "
				 "'-', '_', '.')");
			return -1;
		}
		name[i] = (char)tolower(ch);
	}
	name[nlen] = '\0';
	if (strcmp(name, "unknown") == 0)
		name[0] = '\0'; /* "unknown" is how mxguard writes no name */
	return 0;
}

/*
 * explain_known_name - a verified name the daemon has for ip: a live
 * connection's, else the newest recent verdict's. Sets *source; NULL when
 * none is known.
 */
static const char *explain_known_name(const struct mxg *mxg, const struct sockaddr *sa,
				      const char *ip, const char **source)
{
	struct ipkey k, ck;
	const struct grey_recent *r;

	netaddr_key(sa, &k);
	for (const struct conn *c = mxg->conns; c != NULL; c = c->next) {
		netaddr_key(&c->client.ss.sa, &ck);
		if (c->name != NULL && memcmp(&k, &ck, sizeof(k)) == 0) {
			*source = "connection";
			return c->name;
		}
	}
	for (unsigned i = 0; (r = grey_recent(mxg->engine, i)) != NULL; i++)
		if (strcmp(r->client, ip) == 0 && strcmp(r->name, "unknown") != 0) {
			*source = "recent";
			return r->name;
		}
	*source = "unknown";
	return NULL;
}

/* explain_block - a block as an object, or null when there is none. */
static json_t *explain_block(const char *what, int64_t first, int64_t until, int64_t last,
			     unsigned level, int64_t now)
{
	json_t *o;

	if (level == 0)
		return json_null();
	o = json_object();
	explain_set(o, "key", what);
	json_object_set_new(o, "active", json_boolean(until > now));
	explain_int(o, "until", until);
	explain_int(o, "remaining", until > now ? until - now : 0);
	explain_int(o, "level", level);
	explain_int(o, "first", first);
	explain_int(o, "last", last);
	return o;
}

/* explain_shield - "shield": admission, blocks, country, limits; fills v. */
static json_t *explain_shield(struct mxg *mxg, const struct sockaddr *sa, struct shield_view *v,
			      const char **refused)
{
	json_t *o = json_object(), *b, *lim;

	*refused = NULL;
	if (shield_explain(mxg, sa, v) < 0) {
		json_decref(o);
		return json_null();
	}
	json_object_set_new(o, "allow_clients",
			    v->allowed ? jsonstr_cstr(v->allow_where) : json_null());
	json_object_set_new(o, "block_clients",
			    v->denied ? jsonstr_cstr(v->deny_where) : json_null());
	json_object_set_new(o, "special_purpose", json_boolean(v->bogus));
	b = json_object();
	json_object_set_new(b, "address",
			    explain_block("address", v->block_first, v->block_until, v->block_last,
					  v->block_level, v->now));
	json_object_set_new(
	    b, "network",
	    explain_block(v->net, v->net_first, v->net_until, v->net_last, v->net_level, v->now));
	json_object_set_new(b, "static", json_boolean(v->denied));
	json_object_set_new(b, "good_standing", json_boolean(v->good));
	json_object_set_new(o, "blocks", b);
	if (!v->geo)
		explain_set(o, "country", "no country database loaded");
	else
		explain_set(o, "country", v->cc[0] ? v->cc : "unknown");
	json_object_set_new(o, "country_filter",
			    !v->country_filter ? json_null() : json_boolean(v->country_allowed));
	json_object_set_new(o, "attack", json_boolean(v->attacked));
	lim = json_object();
	explain_int(lim, "divisor", v->divisor);
	explain_int(lim, "conn_per_source", v->conn_src);
	explain_int(lim, "conn_now", v->now_conn_src);
	explain_int(lim, "conn_per_prefix", v->conn_net);
	explain_int(lim, "conn_prefix_now", v->now_conn_net);
	explain_int(lim, "rate_per_source", v->rate_src);
	explain_int(lim, "rate_now", v->now_rate_src);
	explain_int(lim, "rate_per_prefix", v->rate_net);
	explain_int(lim, "rate_prefix_now", v->now_rate_net);
	json_object_set_new(o, "limits", lim);
	/* In shield_admit's order, without the counts that one attempt more would change. */
	if (v->allowed)
		*refused = NULL;
	else if (v->block_level && v->block_until > v->now)
		*refused = "blocked (address)";
	else if (v->net_level && v->net_until > v->now && !v->good)
		*refused = "blocked (network)";
	else if (v->denied)
		*refused = "static (block_clients)";
	else if (v->bogus_refused)
		*refused = "bogus (special-purpose source)";
	else if (v->country_filter && !v->country_allowed)
		*refused = "country (smtp_countries)";
	else if (v->conn_src && v->now_conn_src >= (uint32_t)v->conn_src)
		*refused = "conn_source";
	else if (v->conn_net && v->now_conn_net >= (uint32_t)v->conn_net)
		*refused = "conn_prefix";
	json_object_set_new(o, "refused", *refused ? jsonstr_cstr(*refused) : json_null());
	return o;
}

/* What a store walk collects: records whose key is one of keys, or begins with "key|". */
struct explain_walk {
	const char *keys[EXPLAIN_KEYS];
	int nkeys, prefix, more;
	json_t *list;
};

static int explain_walk_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct explain_walk *w = arg;
	int past = 0;

	for (int i = 0; i < w->nkeys; i++) {
		size_t n = strlen(w->keys[i]);
		int c = strncmp(key, w->keys[i], n);

		if (c == 0 && (w->prefix ? key[n] == '|' : key[n] == '\0')) {
			json_t *o;

			if (json_array_size(w->list) >= EXPLAIN_GREY_MAX) {
				w->more++;
				return 0;
			}
			o = json_object();
			explain_set(o, "key", key);
			explain_int(o, "first", rec->first);
			explain_int(o, "last", rec->last);
			explain_int(o, "expires", rec->expires);
			explain_int(o, "count", rec->count);
			json_array_append_new(w->list, o);
			return 0;
		}
		past += c > 0;
	}
	/* The walk is in key order: past every key, nothing more can match. */
	return past == w->nkeys;
}

/* explain_records - the records of kind for keys (prefix: "key|..." triplets). */
static json_t *explain_records(struct store *s, int kind, const char *const *keys, int nkeys,
			       int prefix, int *more)
{
	struct explain_walk w;

	memset(&w, 0, sizeof(w));
	for (int i = 0; i < nkeys && i < EXPLAIN_KEYS; i++)
		if (i == 0 || strcmp(keys[i], keys[0]) != 0)
			w.keys[w.nkeys++] = keys[i];
	w.prefix = prefix;
	w.list = json_array();
	if (store_list(s, kind, explain_walk_cb, &w) < 0) {
		json_decref(w.list);
		return jsonstr_cstr("store error");
	}
	*more = w.more;
	return w.list;
}

/* explain_find - the first record of list (explain_records'), or NULL. */
static const json_t *explain_find(const json_t *list, const char *key, struct store_rec *rec)
{
	size_t i;
	const json_t *o;

	json_array_foreach(list, i, o)
	{
		if (strcmp(json_string_value(json_object_get(o, "key")), key) == 0) {
			memset(rec, 0, sizeof(*rec));
			rec->first = json_integer_value(json_object_get(o, "first"));
			rec->last = json_integer_value(json_object_get(o, "last"));
			rec->expires = json_integer_value(json_object_get(o, "expires"));
			rec->count = (uint32_t)json_integer_value(json_object_get(o, "count"));
			return o;
		}
	}
	return NULL;
}

/* explain_action_name - judge.c's action as the operator reads it. */
static const char *explain_action_name(enum judge_action a)
{
	switch (a) {
	case JUDGE_PASS:
		return "pass";
	case JUDGE_REJECT:
		return "reject";
	case JUDGE_TEMPFAIL:
		return "tempfail";
	case JUDGE_SUSPECT:
		break;
	}
	return "suspect";
}

/*
 * explain_engine - "lists", "keys", "store" and "verdict": the engine's view
 * of ip with name (NULL: unknown), as judge.c classifies at the first RCPT
 * with what is known here (no HELO, no recipient, no DNSBL results).
 */
static void explain_engine(struct mxg *mxg, json_t *root, const struct sockaddr *sa,
			   const char *name, const struct shield_view *v, const char *refused)
{
	const struct cfg *cfg = mxg->cfg;
	struct engine *e = mxg->engine;
	struct judge_lists l;
	struct judge_facts f;
	struct judge_verdict jv;
	struct classification cl;
	char netkey[GREYKEY_MAX], key[GREYKEY_MAX], why[400];
	const char *keys[EXPLAIN_KEYS];
	json_t *lists = json_object(), *ko = json_object(), *so = json_object(),
	       *vo = json_object(), *tarpit = NULL, *awl = NULL;
	struct store_rec rec;
	int s25r, more = 0, netk;

	grey_lists(e, &l);
	rules_lists(l.client, name, sa, &cl);
	if (cl.reason[0] != '\0') {
		json_t *m = json_object();

		explain_set(m, "verdict", rules_verdict_name(cl.verdict));
		explain_set(m, "rule", cl.reason);
		/* The operator's whitelist is the list "store:white" (rules.c). */
		json_object_set_new(m, "operator_white",
				    json_boolean(strncmp(cl.reason, "list:store:white:", 17) == 0));
		json_object_set_new(lists, "client_lists", m);
	} else {
		json_object_set_new(lists, "client_lists", json_null());
	}
	json_object_set_new(lists, "warn", cl.warned ? jsonstr_cstr(cl.warn) : json_null());
	s25r = rules_s25r(l.client, name);
	if (s25r >= 0)
		snprintf(why, sizeof(why), "r%d%s", s25r,
			 name == NULL ? " (no verified name)" : "");
	else
		snprintf(why, sizeof(why), "none");
	explain_set(lists, "s25r", why);
	explain_set(lists, "helo_lists", "not applicable: no HELO outside a session");
	json_object_set_new(root, "lists", lists);

	/* The keys (greykey.c): the network's, and the one greylist_key gives. */
	greykey_net(sa, netkey, sizeof(netkey));
	netk = grey_key_for(e, cfg, name, sa, key, sizeof(key));
	explain_set(ko, "net", netkey);
	explain_set(ko, "client", key);
	explain_set(ko, "client_is_net", netk ? "yes" : "no");
	explain_set(ko, "spf",
		    cfg->greylist_spf ? "per sender (spf:DOMAIN): not shown"
				      : "off (greylist_spf = no)");
	json_object_set_new(root, "keys", ko);

	keys[0] = key;
	keys[1] = netkey;
	if (mxg->store != NULL) {
		json_t *grey;

		tarpit = explain_records(mxg->store, STORE_TARPIT, keys, 2, 0, &more);
		json_object_set_new(so, "tarpit", tarpit);
		grey = explain_records(mxg->store, STORE_GREY, keys, 2, 1, &more);
		json_object_set_new(so, "grey", grey);
		explain_int(so, "grey_more", more);
		awl = explain_records(mxg->store, STORE_AWL, keys + 1, 1, 0, &more);
		json_object_set_new(so, "awl", awl);
		json_object_set_new(root, "store", so);
	} else {
		json_decref(so);
		json_object_set_new(root, "store", json_null());
	}

	memset(&f, 0, sizeof(f));
	f.client = sa;
	f.name = name;
	f.attack_suspect = cfg->attack_smtp_policy == ATTACK_SMTP_SUSPECT && v->attacked &&
			   !v->allowed && !v->good;
	judge_classify(&l, &f, cfg, &jv);
	if (jv.classified) {
		explain_set(vo, "verdict", rules_verdict_name(jv.cl.verdict));
		explain_set(vo, "reason", jv.cl.reason);
	}
	explain_set(vo, "action", explain_action_name(jv.action));
	if (refused != NULL) {
		snprintf(why, sizeof(why), "refused at accept by the shield: %s", refused);
	} else if (jv.action == JUDGE_REJECT || jv.action == JUDGE_TEMPFAIL) {
		snprintf(why, sizeof(why), "%.*s", (int)strcspn(jv.reply, "\r\n"), jv.reply);
	} else if (jv.action == JUDGE_PASS) {
		snprintf(why, sizeof(why), "%s",
			 cfg->mode == MODE_WARN && jv.note != NULL
			     ? jv.note
			     : "handed to the MTA at the first RCPT");
	} else if (awl != NULL && json_is_array(awl) && explain_find(awl, netkey, &rec) &&
		   judge_awl(cfg, 1, &rec)) {
		snprintf(why, sizeof(why), "pass: auto-whitelisted network %s (%u deliveries)",
			 netkey, rec.count);
	} else if (cfg->mode == MODE_STARPIT) {
		snprintf(why, sizeof(why), "tarpit (mode starpit)");
	} else if (cfg->mode == MODE_RGREY) {
		snprintf(why, sizeof(why), "greylist (mode rgrey), triplets of key %s", key);
	} else if (tarpit != NULL && json_is_array(tarpit) && explain_find(tarpit, key, &rec)) {
		snprintf(why, sizeof(why),
			 "greylist: a tarpit record of %s (it dropped out of the tarpit before)",
			 key);
	} else {
		snprintf(why, sizeof(why), "tarpit: suspect, no tarpit record of %s", key);
	}
	explain_set(vo, "outcome", why);
	explain_set(vo, "dnsbl", "not known outside a session (results are not kept)");
	json_object_set_new(root, "verdict", vo);
}

/* explain_recent - the engine's recent verdicts for ip, newest first. */
static json_t *explain_recent(const struct mxg *mxg, const char *ip)
{
	json_t *a = json_array();
	const struct grey_recent *r;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	for (unsigned i = 0; (r = grey_recent(mxg->engine, i)) != NULL; i++) {
		json_t *o;

		if (strcmp(r->client, ip) != 0)
			continue;
		o = json_object();
		explain_int(o, "age", (long long)ts.tv_sec - r->ms / 1000);
		explain_set(o, "name", r->name);
		explain_set(o, "verdict",
			    r->verdict >= VERDICT_CLEAN && r->verdict <= VERDICT_BLACK
				? rules_verdict_name(r->verdict)
				: "unknown");
		explain_set(o, "reason", r->reason);
		json_array_append_new(a, o);
	}
	return a;
}

json_t *explain_answer(struct mxg *mxg, const char *args, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	struct shield_view v;
	char given[EXPLAIN_NAME_MAX + 1], ip[NETADDR_STRLEN];
	const char *name = NULL, *source = "given", *refused;
	json_t *root, *no;

	if (explain_parse(args, &ss, given, sizeof(given), err, errsz) < 0)
		return NULL;
	netaddr_ip(sa, ip, sizeof(ip));
	if (given[0] != '\0')
		name = given;
	else if (args != NULL && strchr(args, ' ') != NULL)
		source = "given as unknown";
	else
		name = explain_known_name(mxg, sa, ip, &source);
	if ((root = json_object()) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	json_object_set_new(root, "ok", json_true());
	explain_set(root, "address", ip);
	no = json_object();
	explain_set(no, "name", name != NULL ? name : "unknown");
	explain_set(no, "source", source);
	if (name == NULL)
		explain_set(no, "note",
			    "no name known to the daemon (no DNS lookup is made for "
			    "explain: give NAME to assume one)");
	json_object_set_new(root, "name", no);
	json_object_set_new(root, "shield", explain_shield(mxg, sa, &v, &refused));
	if (mxg->cfg->nworkers > 1) {
		/*
		 * Its connections go to one worker; this one (0) answers, and
		 * counts only its own: a source of another worker shows none.
		 */
		int w = listen_worker_of(sa, mxg->cfg->nworkers, mxg->cfg->prefix_v4,
					 mxg->cfg->prefix_v6);

		json_object_set_new(root, "worker", json_integer(w));
		if (w != mxg->worker)
			explain_set(root, "worker_note",
				    "its connections go to another worker: the connection and"
				    " rate counts and recent verdicts shown are this worker's");
	}
	if (mxg->engine != NULL) {
		explain_engine(mxg, root, sa, name, &v, refused);
		json_object_set_new(root, "recent", explain_recent(mxg, ip));
	} else {
		explain_set(root, "engine", "off: no lists, records or verdicts");
	}
	return root;
}
