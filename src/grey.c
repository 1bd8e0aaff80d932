/*
 * grey.c - the taRgrey engine.
 *
 * At connect the client's verified reverse name is looked up (dns.c) while
 * it reads the greeting. At the hand-off point (first RCPT of a plaintext
 * session, or STARTTLS) grey_decide() classifies it (rules.c: client
 * lists, then S25R) and, for a suspect, walks the chain of the method:
 *
 *   auto-whitelisted?                      -> pass
 *   mode starpit, or (targrey) no tarpit record for the client
 *                                          -> tarpit (tarpit.c holds the reply)
 *   mode rgrey, or (targrey) a tarpit record: it dropped before
 *                                          -> greylist the triplet
 *
 * White and clean clients pass at once, black ones get their list's reply,
 * and mode warn logs what would happen and passes everyone. Every store
 * lookup is asynchronous (store.h), so the chain is a small state machine
 * driven by callbacks; c->sreq / c->dreq are cancelled if the client goes.
 *
 * Keys (the client key, the triplet's parts) are greykey.c's; the DNS
 * lists (DNSBL/DNSWL score, the sender's name servers) dnsbl.c's; the SPF
 * step that may key a sender by its domain greyspf.c's.
 *
 * Quirks of the original not copied: the tarpit logs every start, drop
 * (with the time into the hold) and survival; only the first RCPT is
 * decided (the session is then the backend's, so further RCPTs pass); a
 * store error is a 4xx, never a pass and never a 5xx.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <libpsl.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "conn.h"
#include "dns.h"
#include "dnsbl.h"
#include "grey.h"
#include "greykey.h"
#include "greyrec.h"
#include "greyspf.h"
#include "judge.h"
#include "log.h"
#include "mxguard.h"
#include "rules.h"
#include "smtpcmd.h"
#include "spf.h"
#include "store.h"

#define GREY_MAX_LISTS 64
#define GREY_KEY_MAX GREYKEY_MAX

enum grey_step { STEP_NONE, STEP_DNS, STEP_AWL, STEP_SPF, STEP_TARPIT_REC, STEP_GREY };

/* A decision waiting for the loop (struct engine's queue). */
/* Decisions the queue keeps room for when empty; more are freed. */
#define GREY_READY_KEEP 64

struct grey_ready {
	struct conn *c; /* NULL: closed meanwhile (grey_conn_free) */
	int outcome;	/* enum grey_outcome */
	int has_reply;
	char reply[400];
};

struct engine {
	struct mxg *mxg;
	struct rules *rules;	  /* client lists and the operator's whitelist */
	struct rules *helo_rules; /* helo_lists */
	struct rules *rcpt_rules; /* recipient opt-out */
	struct rules *ns_rules;	  /* sender_ns_lists */
	struct dnsbl_site *sites; /* dnsbl_sites, parsed */
	struct dns *dns;
	struct dnsbl_ctx bl; /* what the DNS lists use of the above */
	struct store *store; /* the daemon's (main.c), not the engine's */
	const psl_ctx_t *psl;
	psl_ctx_t *psl_owned; /* the loaded system list, freed with the engine */
	struct grey_hooks hooks;
	/*
	 * Decisions made and not yet delivered: hooks.decided runs from
	 * ready_ev, never inside grey_decide (a backwards call in the middle
	 * of the forward one). The queue lives here, not in struct conn (a
	 * held connection is what mxguard has most of); c->queued says that
	 * c is in it, so that grey_conn_free can take it out.
	 */
	struct event *ready_ev;
	struct grey_ready *ready;
	int nready, capready;
	/* The last GREY_RECENT verdicts, for mxguardctl top (grey_recent). */
	struct grey_recent recent[GREY_RECENT];
	uint64_t nrecent;
	/* Counters for status and tests. */
	unsigned long verdicts[4], tarpit_start, tarpit_drop, tarpit_survived;
	unsigned long grey_new, grey_early, grey_pass, awl_pass, awl_add, store_errors;
};

static struct engine *grey_engine(const struct conn *c)
{
	return c->mxg->engine;
}

/* ---- keys -------------------------------------------------------------- */

/*
 * grey_client_key - the key of tarpit records and greylist triplets: the
 * sender domain's "spf:<domain>" when its SPF record passed for the client
 * (see grey_spf_start), else by greylist_key. Returns 1 when it is the
 * network key.
 */
static int grey_client_key(const struct conn *c, char *out, size_t outsz)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;

	if (greyspf_key(c) != NULL) {
		snprintf(out, outsz, "%s", greyspf_key(c));
		return 0;
	}
	return grey_key_for(grey_engine(c), c->cfg, c->name, sa, out, outsz);
}

int grey_key_for(const struct engine *e, const struct cfg *cfg, const char *name,
		 const struct sockaddr *sa, char *out, size_t outsz)
{
	if (name == NULL || cfg->greylist_key == KEY_NET) {
		greykey_net(sa, out, outsz);
		return 1;
	}
	if (cfg->greylist_key == KEY_NAME) {
		snprintf(out, outsz, "%s", name);
		return 0;
	}
	return !greykey_auto(e->psl, e->rules, name, sa, out, outsz);
}

void grey_lists(const struct engine *e, struct judge_lists *l)
{
	l->client = e->rules;
	l->helo = e->helo_rules;
	l->rcpt = e->rcpt_rules;
}

/* ---- logging ----------------------------------------------------------- */

/*
 * grey_field - log_escape(), and white space and angle brackets as \xNN
 * too: a field is one word, so that a client's "MAIL FROM:<a verdict=clean
 * b@x>" cannot plant a field of its own in the line, nor end from=<...>.
 */
static void grey_field(char *out, size_t outsz, const char *in, size_t inlen)
{
	size_t o = 0;

	for (size_t i = 0; i < inlen; i++) {
		char one[8];
		size_t len;

		if (in[i] == ' ' || in[i] == '<' || in[i] == '>')
			snprintf(one, sizeof(one), "\\x%02x", (unsigned char)in[i]);
		else
			log_escape(one, sizeof(one), in + i, 1);
		len = strlen(one);
		if (o + len + 4 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, one, len);
		o += len;
	}
	out[o] = '\0';
}

/*
 * grey_log - "what client=... name=... helo=... from=<...> to=<...> extra",
 * and once the SPF step ran, "spf=RESULT[:why] key=KEY": an operator sees
 * which key the tarpit record or triplet used, and why.
 */
static void grey_log(const struct conn *c, const char *what, const char *extra)
{
	char ip[NETADDR_STRLEN], name[140], helo[140], from[300], to[300], spf[720] = "", res[64];
	const char *s;
	size_t n;

	netaddr_ip((const struct sockaddr *)&c->client.ss, ip, sizeof(ip));
	grey_field(name, sizeof(name), c->name ? c->name : "unknown",
		   strlen(c->name ? c->name : "unknown"));
	n = greykey_helo(c->helo, &s);
	log_escape(helo, sizeof(helo), s, n); /* quoted: '"' is escaped */
	n = greykey_angle(c->mail, &s);
	grey_field(from, sizeof(from), s, n);
	n = c->pending_verb == SMTP_RCPT ? greykey_angle(c->pending, &s) : 0;
	grey_field(to, sizeof(to), n ? s : "", n);
	if (greyspf_describe(c, res, sizeof(res)) == 0) {
		char key[GREY_KEY_MAX], kf[GREY_KEY_MAX + 16];

		char rf[sizeof(res) * 4 + 4];

		grey_client_key(c, key, sizeof(key));
		grey_field(kf, sizeof(kf), key, strlen(key));
		/* A reason such as "bad term" holds spaces: one word like the rest. */
		grey_field(rf, sizeof(rf), res, strlen(res));
		snprintf(spf, sizeof(spf), " spf=%s key=%s", rf, kf);
	}
	log_info("%s client=%s name=%s helo=\"%s\" from=<%s> to=<%s>%s%s%s", what, ip, name, helo,
		 from, to, extra ? " " : "", extra ? extra : "", spf);
}

/* ---- the decision chain ------------------------------------------------- */

/*
 * grey_outcome - the decision for c is made: queue it for the loop. When
 * the queue cannot grow (out of memory) the client is closed, as on any
 * other allocation failure of a connection: it retries later.
 */
static void grey_outcome(struct conn *c, enum grey_outcome o, const char *reply)
{
	struct engine *e = grey_engine(c);
	struct grey_ready *r;

	c->deciding = 0;
	c->step = STEP_NONE;
	if (e->nready == e->capready) {
		int cap = e->capready ? 2 * e->capready : 16;
		struct grey_ready *grown = realloc(e->ready, (size_t)cap * sizeof(*grown));

		if (grown == NULL) {
			log_warn("out of memory: closing a client at its decision");
			if (e->hooks.lost != NULL)
				e->hooks.lost(c);
			else
				conn_close(c, END_CLIENT_ERROR);
			return;
		}
		e->ready = grown;
		e->capready = cap;
	}
	r = &e->ready[e->nready++];
	r->c = c;
	r->outcome = o;
	r->has_reply = reply != NULL;
	snprintf(r->reply, sizeof(r->reply), "%s", reply != NULL ? reply : "");
	c->queued = 1;
	event_active(e->ready_ev, EV_TIMEOUT, 0);
}

/*
 * grey_ready_cb - deliver the decisions queued so far, oldest first. Those
 * that the callbacks queue meanwhile (a deferred client's next RCPT) wait
 * for the next round of the loop.
 */
static void grey_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	int n = e->nready;

	(void)fd;
	(void)what;
	for (int i = 0; i < n; i++) {
		struct grey_ready r = e->ready[i]; /* the callback may grow the queue */

		if (r.c == NULL)
			continue;
		r.c->queued = 0;
		e->hooks.decided(r.c, r.outcome, r.has_reply ? r.reply : NULL);
	}
	if (n == 0)
		return; /* nothing queued (the array may be freed) */
	memmove(e->ready, e->ready + n, (size_t)(e->nready - n) * sizeof(*e->ready));
	e->nready -= n;
	if (e->nready > 0) {
		event_active(e->ready_ev, EV_TIMEOUT, 0);
	} else if (e->capready > GREY_READY_KEEP) {
		/*
		 * Empty after a burst: an entry is 400-odd bytes, and an array
		 * sized for the largest burst ever would stay for good (the
		 * next burst grows it again in a few doublings).
		 */
		free(e->ready);
		e->ready = NULL;
		e->capready = 0;
	}
}

/* grey_note_verdict - remember a decision for grey_recent (the oldest goes). */
static void grey_note_verdict(struct engine *e, const struct conn *c,
			      const struct classification *cl)
{
	struct grey_recent *v = &e->recent[e->nrecent++ % GREY_RECENT];
	struct timeval tv;
	const char *helo;
	size_t hlen;

	gettimeofday(&tv, NULL);
	v->ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	if (netaddr_ip(&c->client.ss.sa, v->client, sizeof(v->client)) == NULL)
		snprintf(v->client, sizeof(v->client), "unknown");
	snprintf(v->name, sizeof(v->name), "%s", c->name != NULL ? c->name : "unknown");
	/* Raw bytes, cut to the field: JSON escaping is control.c's (jsonstr.c). */
	hlen = greykey_helo(c->helo, &helo);
	snprintf(v->helo, sizeof(v->helo), "%.*s",
		 (int)(hlen < sizeof(v->helo) ? hlen : sizeof(v->helo) - 1), helo);
	snprintf(v->reason, sizeof(v->reason), "%s", cl->reason);
	v->verdict = (int)cl->verdict;
}

static void grey_tempfail_store(struct conn *c)
{
	grey_engine(c)->store_errors++;
	grey_log(c, "store error, deferring", NULL);
	grey_outcome(c, GREY_TEMPFAIL, "451 4.3.0 Temporary local problem, try again later\r\n");
}

static void grey_start_tarpit(struct conn *c)
{
	grey_engine(c)->tarpit_start++;
	grey_log(c, "tarpit start", NULL);
	grey_outcome(c, GREY_TARPIT, NULL);
}

/* grey_triplet - "clientkey|sender|recipient"; STARTTLS: HELO for both. */
static void grey_triplet(const struct conn *c, char *out, size_t outsz)
{
	char key[GREY_KEY_MAX], snd[GREY_KEY_MAX], rcpt[GREY_KEY_MAX];
	const char *s;
	size_t n;

	grey_client_key(c, key, sizeof(key));
	if (c->pending_verb == SMTP_RCPT) {
		n = greykey_angle(c->mail, &s);
		greykey_sender(s, n, snd, sizeof(snd));
		n = greykey_angle(c->pending, &s);
	} else {
		n = greykey_helo(c->helo, &s);
		greykey_sender(s, n, snd, sizeof(snd));
	}
	n = n < sizeof(rcpt) - 1 ? n : sizeof(rcpt) - 1;
	for (size_t i = 0; i < n; i++)
		rcpt[i] = (char)tolower((unsigned char)s[i]);
	rcpt[n] = '\0';
	snprintf(out, outsz, "%s|%s|%s", key, snd, rcpt);
	/* Keys are printable: the store refuses anything else. */
	for (char *p = out; *p; p++)
		if (!isgraph((unsigned char)*p))
			*p = '_';
}

/* grey_awl_count - a message the backend accepted counts towards the AWL. */
static void grey_awl_count(struct conn *c)
{
	struct engine *e = grey_engine(c);
	char key[GREY_KEY_MAX];

	greykey_net((const struct sockaddr *)&c->client.ss, key, sizeof(key));
	greyrec_awl_count(e->store, key, c->cfg->greylist_max_age, c->cfg->awl_interval,
			  &e->store_errors, &e->awl_add);
}

/*
 * grey_first_sighting - taRgrey: the tarpitted attempt is the triplet's
 * first sighting, so a sender that dropped and comes back after
 * greylist_delay is on time (counted from the drop, not from the retry).
 */
static void grey_first_sighting(struct conn *c)
{
	struct engine *e = grey_engine(c);
	char key[3 * GREY_KEY_MAX];

	grey_triplet(c, key, sizeof(key));
	greyrec_first_sighting(e->store, key, c->cfg->greylist_retry_window, &e->store_errors);
}

static void grey_store_cb(int found, const struct store_rec *rec, void *arg);

static void grey_lookup(struct conn *c, enum grey_step step, enum store_kind kind, const char *key)
{
	c->step = (uint8_t)step;
	c->sreq = store_get(grey_engine(c)->store, kind, key, grey_store_cb, c);
	if (c->sreq == NULL)
		grey_tempfail_store(c);
}

static void grey_greylist(struct conn *c)
{
	char key[3 * GREY_KEY_MAX];

	grey_triplet(c, key, sizeof(key));
	grey_lookup(c, STEP_GREY, STORE_GREY, key);
}

/* grey_greylisted_reply - 450 to a RCPT; 454 to STARTTLS (RFC 3207). */
static const char *grey_greylisted_reply(const struct conn *c)
{
	return c->pending_verb == SMTP_RCPT ? "450 4.7.1 Greylisted, please try again later\r\n"
					    : "454 4.7.1 Greylisted, please try again later\r\n";
}

/* grey_greylist_result - the triplet record (or none) is here. */
static void grey_greylist_result(struct conn *c, int found, const struct store_rec *rec)
{
	struct engine *e = grey_engine(c);
	char key[3 * GREY_KEY_MAX], extra[64];
	struct store_rec r;
	time_t now = time(NULL);
	enum judge_grey g = judge_greylist(c->cfg, found, rec, now, &r);

	grey_triplet(c, key, sizeof(key));
	if (store_put(e->store, STORE_GREY, key, &r) < 0) {
		grey_tempfail_store(c);
		return;
	}
	if (g == JUDGE_GREY_NEW) {
		e->grey_new++;
		c->mxg->stats.grey_defer++;
		grey_log(c, "greylist new", NULL);
		grey_outcome(c, GREY_TEMPFAIL, grey_greylisted_reply(c));
		return;
	}
	snprintf(extra, sizeof(extra), "age=%llds retries=%u", (long long)(now - r.first), r.count);
	if (g == JUDGE_GREY_PASS) {
		e->grey_pass++;
		c->mxg->stats.grey_pass++;
		grey_log(c, "greylist pass", extra);
		grey_outcome(c, GREY_PASS, NULL);
		return;
	}
	e->grey_early++;
	c->mxg->stats.grey_defer++;
	grey_log(c, "greylist early", extra);
	grey_outcome(c, GREY_TEMPFAIL, grey_greylisted_reply(c));
}
/* grey_after_spf - the chain after the auto-whitelist and the SPF step. */
static void grey_after_spf(struct conn *c)
{
	char key[GREY_KEY_MAX];

	if (c->cfg->mode == MODE_STARPIT) {
		grey_start_tarpit(c);
	} else if (c->cfg->mode == MODE_RGREY) {
		grey_greylist(c);
	} else {
		grey_client_key(c, key, sizeof(key));
		grey_lookup(c, STEP_TARPIT_REC, STORE_TARPIT, key);
	}
}

static void grey_spf_cb(const struct spf_outcome *o, void *arg)
{
	struct conn *c = arg;

	greyspf_settle(c, o);
	grey_after_spf(c);
}

/*
 * grey_spf_start - the SPF step (greyspf.c), before the tarpit-record
 * lookup: for a suspect at RCPT whose key would be its network.
 */
static void grey_spf_start(struct conn *c)
{
	char key[GREY_KEY_MAX];

	/* A deferred client may come back with another MAIL: decide afresh. */
	greyspf_free(c);
	c->step = STEP_SPF;
	if (!c->cfg->greylist_spf || c->pending_verb != SMTP_RCPT ||
	    !grey_client_key(c, key, sizeof(key)) ||
	    greyspf_start(c, grey_engine(c)->dns, grey_spf_cb) < 0)
		grey_after_spf(c);
}

static void grey_store_cb(int found, const struct store_rec *rec, void *arg)
{
	struct conn *c = arg;

	c->sreq = NULL;
	if (found < 0) {
		grey_tempfail_store(c);
		return;
	}
	switch (c->step) {
	case STEP_AWL:
		if (judge_awl(c->cfg, found, rec)) {
			grey_engine(c)->awl_pass++;
			c->mxg->stats.grey_awl++;
			grey_log(c, "awl pass", NULL);
			grey_outcome(c, GREY_PASS, NULL);
			return;
		}
		grey_spf_start(c);
		return;
	case STEP_TARPIT_REC:
		/* It dropped out of the tarpit before: greylist instead (rescue). */
		if (found)
			grey_greylist(c);
		else
			grey_start_tarpit(c);
		return;
	case STEP_GREY:
		grey_greylist_result(c, found, rec);
		return;
	default:
		log_panic("grey_store_cb: unexpected step %d", c->step);
	}
}

/* ---- DNSBL / DNSWL ------------------------------------------------------ */

static void grey_classify(struct conn *c);

/* grey_ready - is everything the decision needs from DNS here? */
static int grey_ready(const struct conn *c)
{
	return c->dns_state != GDNS_PENDING && !dnsbl_pending(c);
}

/* grey_dns_ready - a lookup of c ended: decide if it was the last one awaited. */
static void grey_dns_ready(struct conn *c)
{
	if (c->deciding && c->step == STEP_DNS && grey_ready(c))
		grey_classify(c);
}

/* grey_classify - DNS is settled: judge (judge.c), then act on it. */
static void grey_classify(struct conn *c)
{
	struct engine *e = grey_engine(c);
	const struct dnsbl_result *bl = dnsbl_result(c);
	struct judge_lists l = {e->rules, e->helo_rules, e->rcpt_rules};
	struct judge_facts f;
	struct judge_verdict v;
	char key[GREY_KEY_MAX];
	const char *s;
	size_t n;

	memset(&f, 0, sizeof(f));
	f.client = (const struct sockaddr *)&c->client.ss;
	f.local = (const struct sockaddr *)&c->local.ss;
	f.name = c->name;
	f.dns_failed = c->dns_state == GDNS_FAILED;
	f.helolen = greykey_helo(c->helo, &f.helo);
	if (c->pending_verb == SMTP_RCPT) {
		n = greykey_angle(c->pending, &s);
		f.rcpt = s;
		f.rcptlen = n;
	}
	f.attack_suspect = c->attack_suspect;
	if (bl != NULL) {
		f.bl_done = 1;
		f.bl_score = bl->score;
		f.bl_hits = bl->hits;
		f.ns_cl = bl->ns_decided ? &bl->ns_cl : NULL;
	}
	judge_classify(&l, &f, c->cfg, &v);
	if (v.classified) {
		c->verdict = (uint8_t)v.cl.verdict;
		e->verdicts[v.cl.verdict]++;
		/* A deferred client may try another RCPT: one verdict per connection. */
		if (!c->counted) {
			c->counted = 1;
			c->mxg->stats.verdicts[v.cl.verdict]++;
			if (e->hooks.counted != NULL)
				e->hooks.counted(c, (int)v.cl.verdict);
		}
	}
	grey_log(c, v.what, v.extra);
	/* The last verdicts, for mxguardctl top. */
	if (v.classified)
		grey_note_verdict(e, c, &v.cl);
	if (v.note != NULL)
		grey_log(c, v.note, NULL);
	switch (v.action) {
	case JUDGE_PASS:
		grey_outcome(c, GREY_PASS, NULL);
		return;
	case JUDGE_REJECT:
		grey_outcome(c, GREY_REJECT, v.reply);
		return;
	case JUDGE_TEMPFAIL:
		grey_outcome(c, GREY_TEMPFAIL, v.reply);
		return;
	case JUDGE_SUSPECT:
		break;
	}
	greykey_net((const struct sockaddr *)&c->client.ss, key, sizeof(key));
	grey_lookup(c, STEP_AWL, STORE_AWL, key);
}

static void grey_dns_cb(enum dns_status st, const char *name, void *arg)
{
	struct conn *c = arg;
	struct engine *e = grey_engine(c);

	c->dreq = NULL;
	if (st == DNS_OK && name != NULL && (c->name = strdup(name)) != NULL)
		c->dns_state = GDNS_NAME;
	else
		c->dns_state = st == DNS_FAIL ? GDNS_FAILED : GDNS_UNKNOWN;
	if (c->deciding && c->step == STEP_DNS && grey_ready(c))
		grey_classify(c);
	else if (c->stage == STAGE_GREET)
		e->hooks.greet_settled(c);
	else if (c->ho != NULL)
		e->hooks.name_known(c);
}

int grey_greet_suspect(const struct conn *c)
{
	const struct engine *e = grey_engine(c);
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;
	struct classification cl;

	if (c->dns_state == GDNS_PENDING)
		return -1;
	if (e == NULL || c->cfg->mode == MODE_WARN)
		return 0;
	if (c->dns_state == GDNS_FAILED && c->cfg->dns_failure_action != DNSFAIL_SUSPECT)
		return 0;
	/* A list that decides (white or black) settles it at RCPT anyway. */
	if (rules_lists(e->rules, c->name, sa, &cl))
		return 0;
	return c->attack_suspect || rules_s25r(e->rules, c->name) >= 0;
}

void grey_pregreet_drop(struct conn *c, double held_s)
{
	struct engine *e = grey_engine(c);
	char extra[64], key[GREY_KEY_MAX];
	struct store_rec r;
	time_t t = time(NULL);

	snprintf(extra, sizeof(extra), "after=%.1fs", held_s);
	grey_log(c, "pregreet drop", extra);
	if (e == NULL)
		return;
	/* The record a tarpit drop writes: the client's next visit is greylisted. */
	r.first = r.last = t;
	r.count = 1;
	r.expires = t + c->cfg->greylist_retry_window;
	grey_client_key(c, key, sizeof(key));
	if (store_put(e->store, STORE_TARPIT, key, &r) < 0)
		e->store_errors++;
}

void grey_connect(struct conn *c)
{
	struct engine *e = grey_engine(c);

	c->dns_state = GDNS_PENDING;
	c->dreq = e && e->dns ? dns_verified_name(e->dns, (const struct sockaddr *)&c->client.ss,
						  grey_dns_cb, c)
			      : NULL;
	if (c->dreq == NULL)
		c->dns_state = GDNS_FAILED;
	if (e != NULL && e->dns != NULL)
		dnsbl_start(c, &e->bl);
}

void grey_connect_named(struct conn *c, const char *name)
{
	struct engine *e = grey_engine(c);

	c->name = name != NULL ? strdup(name) : NULL;
	c->dns_state = c->name != NULL ? GDNS_NAME : GDNS_UNKNOWN;
	if (e != NULL && e->dns != NULL)
		dnsbl_start(c, &e->bl);
}

void grey_decide(struct conn *c)
{
	c->deciding = 1;
	c->step = STEP_DNS;
	dnsbl_ns_start(c, &grey_engine(c)->bl);
	/* The other lookups started at connect; usually they are long done. */
	if (!grey_ready(c))
		return;
	grey_classify(c);
}

void grey_tarpit_done(struct conn *c, int survived)
{
	struct engine *e = grey_engine(c);
	struct timeval now, d;
	char extra[64], key[GREY_KEY_MAX];
	struct store_rec r;
	time_t t;
	long ms;

	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	ms = (long)(d.tv_sec * 1000 + d.tv_usec / 1000) - (long)c->held_ms;
	/*
	 * The hold itself is timed by libevent's monotonic clock, which can
	 * differ from this one by a millisecond: round to tenths, not down.
	 */
	ms = ms < 0 ? 0 : (ms + 50) / 100;
	snprintf(extra, sizeof(extra), "after=%ld.%lds", ms / 10, ms % 10);
	if (survived) {
		e->tarpit_survived++;
		c->mxg->stats.tarpit_survivals++;
		grey_log(c, "tarpit survived", extra);
		return;
	}
	e->tarpit_drop++;
	c->mxg->stats.tarpit_drops++;
	hist_observe(&c->mxg->stats.tarpit_drop_time, (double)ms / 10);
	grey_log(c, "tarpit drop", extra);
	t = time(NULL);
	r.first = r.last = t;
	r.count = 1;
	r.expires = t + c->cfg->greylist_retry_window;
	grey_client_key(c, key, sizeof(key));
	if (store_put(e->store, STORE_TARPIT, key, &r) < 0)
		e->store_errors++;
	if (c->cfg->mode == MODE_TARGREY)
		grey_first_sighting(c);
}

void grey_delivered(struct conn *c)
{
	/* Only a suspect needs the AWL; clean senders would only fill the store. */
	if (c->action != ACT_INSPECT || c->verdict != VERDICT_SUSPECT ||
	    c->cfg->mode == MODE_WARN || c->cfg->awl_count == 0)
		return;
	grey_awl_count(c);
}

void grey_name_lookup(struct conn *c)
{
	struct engine *e = grey_engine(c);

	if (c->dreq != NULL || c->dns_state != GDNS_PENDING || c->name != NULL)
		return;
	c->dreq = e && e->dns ? dns_verified_name(e->dns, (const struct sockaddr *)&c->client.ss,
						  grey_dns_cb, c)
			      : NULL;
	if (c->dreq == NULL)
		c->dns_state = GDNS_FAILED;
}

const struct grey_recent *grey_recent(const struct engine *e, unsigned i)
{
	if (e == NULL || i >= GREY_RECENT || i >= e->nrecent)
		return NULL;
	return &e->recent[(e->nrecent - 1 - i) % GREY_RECENT];
}

const char *grey_xclient_name(const struct conn *c)
{
	switch (c->dns_state) {
	case GDNS_NAME:
		return c->name;
	case GDNS_FAILED:
		return "[TEMPUNAVAIL]";
	case GDNS_UNKNOWN:
		return "[UNAVAILABLE]";
	default:
		/* Pending: nobody started it (then there is nothing to wait for). */
		return c->dreq != NULL ? NULL : "[UNAVAILABLE]";
	}
}

void grey_conn_free(struct conn *c)
{
	struct engine *e = grey_engine(c);

	/* Decided, not yet delivered: it must never be touched again. */
	for (int i = 0; c->queued && e != NULL && i < e->nready; i++)
		if (e->ready[i].c == c)
			e->ready[i].c = NULL;
	c->queued = 0;
	dnsbl_free(c);
	greyspf_free(c);
	if (c->dreq != NULL) {
		dns_cancel(c->dreq);
		c->dreq = NULL;
	}
	if (c->sreq != NULL) {
		store_cancel(c->sreq);
		c->sreq = NULL;
	}
	free(c->name);
	c->name = NULL;
}

/* ---- the engine -------------------------------------------------------- */

/* grey_rules - load a list parameter: rules_load, or rules_rcpt_load for recipients. */
static struct rules *grey_rules(const char *value, int rcpt, char *err, size_t errsz)
{
	char *copy = strdup(value), *specs[GREY_MAX_LISTS];
	struct rules *r;
	int n;

	if (copy == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	n = cfg_split_list(copy, specs, GREY_MAX_LISTS);
	r = rcpt ? rules_rcpt_load(specs, n, err, errsz) : rules_load(specs, n, err, errsz);
	free(copy);
	return r;
}

static int grey_white_load_cb(const char *key, const struct store_rec *rec, void *arg)
{
	char err[256], esc[128], eerr[300];

	/*
	 * An entry that no longer parses is skipped, not fatal: say so, escaped
	 * (anybody with access to a shared store can write it).
	 */
	if (rules_white_add(arg, key, err, sizeof(err)) < 0)
		log_warn("store: white entry \"%s\" ignored: %s",
			 log_escape(esc, sizeof(esc), key, strlen(key)),
			 log_escape(eerr, sizeof(eerr), err, strlen(err)));
	return 0;
}

/*
 * grey_rules_all - the four rule sets for cfg (the store's white entries
 * added when e has a store; e may be NULL for a check), or none (err set).
 */
static int grey_rules_all(struct engine *e, const struct cfg *cfg, struct rules **client,
			  struct rules **helo, struct rules **rcpt, struct rules **ns, char *err,
			  size_t errsz)
{
	*helo = *rcpt = *ns = NULL;
	*client = grey_rules(cfg->client_lists, 0, err, errsz);
	*helo = *client ? grey_rules(cfg->helo_lists, 0, err, errsz) : NULL;
	*rcpt = *helo ? grey_rules(cfg->recipient_whitelist, 1, err, errsz) : NULL;
	*ns = *rcpt ? grey_rules(cfg->sender_ns_lists, 0, err, errsz) : NULL;
	if (*ns == NULL) {
		rules_free(client);
		rules_free(helo);
		rules_free(rcpt);
		return -1;
	}
	/* The operator's entries live in the store; every rule set gets them. */
	if (e != NULL && e->store != NULL &&
	    store_list(e->store, STORE_WHITE, grey_white_load_cb, *client) < 0) {
		snprintf(err, errsz, "store: cannot read the white entries");
		rules_free(client);
		rules_free(helo);
		rules_free(rcpt);
		rules_free(ns);
		return -1;
	}
	return 0;
}

int grey_check(const struct cfg *cfg, char *err, size_t errsz)
{
	struct rules *client, *helo, *rcpt, *ns;
	struct dnsbl_site *sites;
	int nsites;

	/* grey_new's own calls, in its order: its first error is theirs. */
	if (grey_rules_all(NULL, cfg, &client, &helo, &rcpt, &ns, err, errsz) < 0)
		return -1;
	rules_free(&client);
	rules_free(&helo);
	rules_free(&rcpt);
	rules_free(&ns);
	if (dnsbl_parse(cfg->dnsbl_sites, &sites, &nsites, err, errsz) < 0)
		return -1;
	free(sites);
	return dns_resolvers_check(cfg->dns_resolvers, err, errsz);
}

struct engine *grey_new(struct mxg *mxg, struct store *store, const struct grey_hooks *hooks,
			char *err, size_t errsz)
{
	struct engine *e = calloc(1, sizeof(*e));
	const struct cfg *cfg = mxg->cfg;

	if (e == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	e->mxg = mxg;
	e->hooks = *hooks;
	e->ready_ev = event_new(mxg->base, -1, 0, grey_ready_cb, e);
	if (e->ready_ev == NULL) {
		snprintf(err, errsz, "cannot create the engine's event");
		goto fail;
	}
	e->store = store;
	if (grey_rules_all(e, cfg, &e->rules, &e->helo_rules, &e->rcpt_rules, &e->ns_rules, err,
			   errsz) < 0 ||
	    dnsbl_parse(cfg->dnsbl_sites, &e->sites, &e->bl.nsites, err, errsz) < 0)
		goto fail;
	e->bl.sites = e->sites;
	e->bl.ns_rules = e->ns_rules;
	e->bl.ns_enabled = cfg->sender_ns_lists[0] != '\0';
	e->bl.ready = grey_dns_ready;
	e->dns = dns_new(mxg->base, cfg->dns_resolvers, cfg->dns_timeout * 1000, 10000, err, errsz);
	if (e->dns == NULL)
		goto fail;
	dns_set_latency(e->dns, &mxg->stats.dns_latency);
	e->bl.dns = e->dns;
	/* The system's list (Debian's publicsuffix) when present, else the built-in one. */
	e->psl_owned = psl_latest(NULL);
	e->psl = e->psl_owned != NULL ? e->psl_owned : psl_builtin();
	return e;
fail:
	grey_free(&e);
	return NULL;
}

int grey_reload(struct engine *e, const struct cfg *cfg, char *err, size_t errsz)
{
	struct rules *client, *helo, *rcpt, *ns;
	struct dnsbl_site *sites;
	int nsites;

	if (dnsbl_parse(cfg->dnsbl_sites, &sites, &nsites, err, errsz) < 0)
		return -1;
	if (grey_rules_all(e, cfg, &client, &helo, &rcpt, &ns, err, errsz) < 0) {
		free(sites);
		return -1;
	}
	store_set_timeout(e->store, cfg->store_timeout);
	rules_free(&e->ns_rules);
	e->ns_rules = ns;
	free(e->sites);
	e->sites = sites;
	e->bl.sites = sites;
	e->bl.nsites = nsites;
	e->bl.ns_rules = ns;
	e->bl.ns_enabled = cfg->sender_ns_lists[0] != '\0';
	rules_free(&e->rules);
	rules_free(&e->helo_rules);
	rules_free(&e->rcpt_rules);
	e->rules = client;
	e->helo_rules = helo;
	e->rcpt_rules = rcpt;
	return 0;
}

int grey_white_add(struct engine *e, const char *entry, char *err, size_t errsz)
{
	struct store_rec r;

	if (rules_white_add(e->rules, entry, err, errsz) < 0)
		return -1;
	memset(&r, 0, sizeof(r));
	r.first = r.last = time(NULL);
	r.expires = INT64_MAX; /* until an operator deletes it */
	if (store_put(e->store, STORE_WHITE, entry, &r) < 0) {
		rules_white_del(e->rules, entry);
		snprintf(err, errsz, "store error");
		return -1;
	}
	log_info("white add %s", entry);
	return 0;
}

int grey_white_del(struct engine *e, const char *entry)
{
	int rc = store_del(e->store, STORE_WHITE, entry);

	rules_white_del(e->rules, entry);
	if (rc > 0)
		log_info("white del %s", entry);
	return rc;
}

/* grey_members - o[names[i]] = v[i] for n counters, as one JSON object member of obj. */
static void grey_members(json_t *obj, const char *key, const char *const *names, const long long *v,
			 int n)
{
	json_t *o = json_object();

	for (int i = 0; i < n; i++)
		json_object_set_new(o, names[i], json_integer(v[i]));
	json_object_set_new(obj, key, o);
}

void grey_status(struct engine *e, json_t *obj)
{
	static const char *const verdicts[] = {"clean", "suspect", "white", "black"};
	static const char *const tarpit[] = {"start", "drop", "survived"};
	static const char *const greylist[] = {"new", "early", "pass"};
	static const char *const awl[] = {"pass", "add"};
	static const char *const store[] = {"tarpit", "grey", "awl", "errors"};
	json_object_set_new(obj, "held", json_integer(e->mxg->stage_open[STAGE_TARPIT]));
	grey_members(obj, "verdicts", verdicts,
		     (const long long[]){(long long)e->verdicts[VERDICT_CLEAN],
					 (long long)e->verdicts[VERDICT_SUSPECT],
					 (long long)e->verdicts[VERDICT_WHITE],
					 (long long)e->verdicts[VERDICT_BLACK]},
		     4);
	grey_members(obj, "tarpit", tarpit,
		     (const long long[]){(long long)e->tarpit_start, (long long)e->tarpit_drop,
					 (long long)e->tarpit_survived},
		     3);
	grey_members(obj, "greylist", greylist,
		     (const long long[]){(long long)e->grey_new, (long long)e->grey_early,
					 (long long)e->grey_pass},
		     3);
	grey_members(obj, "awl", awl,
		     (const long long[]){(long long)e->awl_pass, (long long)e->awl_add}, 2);
	grey_members(obj, "store", store,
		     (const long long[]){
			 store_count(e->store, STORE_TARPIT), store_count(e->store, STORE_GREY),
			 store_count(e->store, STORE_AWL), (long long)e->store_errors},
		     4);
	json_object_set_new(obj, "dns_cache", json_integer(dns_cache_size(e->dns)));
}

void grey_free(struct engine **ep)
{
	struct engine *e = *ep;

	*ep = NULL;
	if (e == NULL)
		return;
	rules_free(&e->rules);
	rules_free(&e->helo_rules);
	rules_free(&e->rcpt_rules);
	rules_free(&e->ns_rules);
	free(e->sites);
	dns_free(&e->dns);
	psl_free(e->psl_owned);
	if (e->ready_ev != NULL)
		event_free(e->ready_ev);
	free(e->ready);
	free(e);
}
