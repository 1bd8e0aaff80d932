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
 * Keys. A tarpit record and a greylist triplet are keyed by the client key:
 * by default (greylist_key = auto) the pool of the verified name, so that a
 * sender that retries from another address of its pool (outlook.com,
 * amazonses.com, ...) is recognised; without a verified name, the /24 (IPv4)
 * or /64 (IPv6). The auto-whitelist is always keyed by network: counting
 * survivals per pool would, after a few patient hosts, whitelist a whole
 * dynamic ISP pool.
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
#include "control.h"
#include "dns.h"
#include "grey.h"
#include "handoff.h"
#include "listen.h"
#include "log.h"
#include "mxguard.h"
#include "rules.h"
#include "smtp.h"
#include "spf.h"
#include "store.h"

#define GREY_MAX_LISTS 64
#define GREY_KEY_MAX 256

enum grey_step { STEP_NONE, STEP_DNS, STEP_AWL, STEP_SPF, STEP_TARPIT_REC, STEP_GREY };

#define DNSBL_MAX 16

/* One dnsbl_sites entry: domain[=filter][*weight], as postscreen reads it. */
struct dnsbl_site {
	char domain[254];
	int weight;
	uint8_t allow[4][32]; /* per octet of the answer: a bitmap of allowed values */
};

/* A DNSBL query in flight carries its own copy of the site: a reload may
 * replace the engine's list meanwhile. */
struct grey_query {
	struct conn *c;
	struct dns_req *req;
	struct dnsbl_site site;
};

struct grey_lookups {
	int pending;
	int score;
	char hits[160]; /* the listing domains, for the log and the reply */
	struct grey_query *q;
	int nq;
	/* The sender domain's NS names against sender_ns_lists. */
	struct dns_req *ns_req;
	uint8_t ns_decided;	    /* ns_cl holds a list's decision */
	struct classification ns_cl;
};

/*
 * The sender domain's SPF (greylist_spf), looked up for a suspect whose key
 * would be its network. Held clients keep it through the hold, and they are
 * what mxguard has most of: so it is small and apart from grey_lookups
 * (over 1 KiB), and the key is as long as it needs to be. key is
 * "spf:<domain>" after a pass (then it is the client key), else "".
 */
struct grey_spf {
	struct spf_req *req;
	uint8_t done;
	uint8_t result; /* enum spf_result */
	char why[30];	/* for the log: what decided it */
	char key[];
};

struct engine {
	struct mxg *mxg;
	struct rules *rules;	  /* client lists and the operator's whitelist */
	struct rules *helo_rules; /* helo_lists */
	struct rules *rcpt_rules; /* recipient opt-out */
	struct rules *ns_rules;	  /* sender_ns_lists */
	int ns_enabled;
	struct dnsbl_site *sites; /* dnsbl_sites, parsed */
	int nsites;
	struct dns *dns;
	struct store *store;
	const psl_ctx_t *psl;
	psl_ctx_t *psl_owned; /* the loaded system list, freed with the engine */
	/* Counters for status and tests. */
	unsigned long verdicts[4], tarpit_start, tarpit_drop, tarpit_survived;
	unsigned long grey_new, grey_early, grey_pass, awl_pass, awl_add, store_errors;
};

static struct engine *grey_engine(const struct conn *c)
{
	return c->mxg->engine;
}

/* ---- keys -------------------------------------------------------------- */

void grey_net_key(const struct sockaddr *sa, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		struct in_addr a = ((const struct sockaddr_in *)sa)->sin_addr;

		a.s_addr &= htonl(0xffffff00);
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		snprintf(out, outsz, "%s/24", ip);
	} else {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;

		memset(a.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a, ip, sizeof(ip));
		snprintf(out, outsz, "%s/64", ip);
	}
}

int grey_auto_key(const struct engine *e, const struct rules *r, const char *name,
		  const struct sockaddr *sa, char *out, size_t outsz)
{
	const psl_ctx_t *psl = e && e->psl ? e->psl : psl_builtin();
	const char *reg, *dot;

	/*
	 * A pool key lets a host through on its first contact because another
	 * host of the pool passed. That is right for a sender's farm
	 * (mta4.out.bigsender.example retrying from mta7), wrong for strangers
	 * who merely share a provider: dynamic (S25R) names and names directly
	 * under their registrable domain (dhcp-12.example.net: one label says
	 * nothing about a pool) are keyed by their network.
	 */
	if (name == NULL || (r != NULL && rules_s25r(r, name) >= 0))
		goto net;
	reg = psl ? psl_registrable_domain(psl, name) : NULL;
	dot = strchr(name, '.');
	if (reg == NULL || dot == NULL || dot + 1 >= reg)
		goto net;
	snprintf(out, outsz, "%s", dot + 1);
	return 1;
net:
	grey_net_key(sa, out, outsz);
	return 0;
}

/*
 * grey_client_key - the key of tarpit records and greylist triplets: the
 * sender domain's "spf:<domain>" when its SPF record passed for the client
 * (see grey_spf_start), else by greylist_key. Returns 1 when it is the
 * network key.
 */
static int grey_client_key(const struct conn *c, char *out, size_t outsz)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;

	if (c->spf != NULL && c->spf->key[0] != '\0') {
		snprintf(out, outsz, "%s", c->spf->key);
		return 0;
	}
	if (c->name == NULL || c->cfg->greylist_key == KEY_NET) {
		grey_net_key(sa, out, outsz);
		return 1;
	}
	if (c->cfg->greylist_key == KEY_NAME) {
		snprintf(out, outsz, "%s", c->name);
		return 0;
	}
	return !grey_auto_key(grey_engine(c), grey_engine(c)->rules, c->name, sa, out, outsz);
}

void grey_sender_key(const char *addr, size_t len, char *out, size_t outsz)
{
	char buf[GREY_KEY_MAX];
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1, o = 0;
	char *at, *local = buf;

	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)addr[i]);
	buf[n] = '\0';
	/* BATV: prvs=tag=user@domain (and the older user=tag form is left alone). */
	if (strncmp(local, "prvs=", 5) == 0) {
		char *eq = strchr(local + 5, '=');

		if (eq != NULL && (at = strchr(local, '@')) != NULL && eq < at)
			local = eq + 1;
	}
	at = strchr(local, '@');
	for (char *p = local; *p && o + 1 < outsz; p++) {
		if (*p == '+' && at != NULL && p < at) {
			p = at - 1; /* skip the +extension */
			continue;
		}
		if (isdigit((unsigned char)*p)) {
			while (isdigit((unsigned char)p[1]))
				p++;
			out[o++] = '#';
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

/* grey_angle - the address inside <...> of "MAIL FROM:<a@b> ..." (or ""). */
static size_t grey_angle(const char *line, const char **addr)
{
	const char *lt = line ? strchr(line, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt == NULL || gt == NULL) {
		*addr = "";
		return 0;
	}
	*addr = lt + 1;
	return (size_t)(gt - lt - 1);
}

/* grey_helo - the argument of the saved HELO/EHLO line. */
static size_t grey_helo(const struct conn *c, const char **helo)
{
	if (c->helo == NULL) {
		*helo = "";
		return 0;
	}
	*helo = c->helo + 4 + strspn(c->helo + 4, " ");
	return strcspn(*helo, "\r\n");
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
	char ip[NETADDR_STRLEN], name[140], helo[140], from[300], to[300], spf[720] = "";
	const char *s;
	size_t n;

	netaddr_ip((const struct sockaddr *)&c->client.ss, ip, sizeof(ip));
	grey_field(name, sizeof(name), c->name ? c->name : "unknown",
		   strlen(c->name ? c->name : "unknown"));
	n = grey_helo(c, &s);
	log_escape(helo, sizeof(helo), s, n); /* quoted: '"' is escaped */
	n = grey_angle(c->mail, &s);
	grey_field(from, sizeof(from), s, n);
	n = c->pending_verb == SMTP_RCPT ? grey_angle(c->pending, &s) : 0;
	grey_field(to, sizeof(to), n ? s : "", n);
	if (c->spf != NULL && c->spf->done) {
		char key[GREY_KEY_MAX], kf[GREY_KEY_MAX + 16], why[sizeof(c->spf->why) * 4 + 4];
		int keyed = c->spf->key[0] != '\0';

		grey_client_key(c, key, sizeof(key));
		grey_field(kf, sizeof(kf), key, strlen(key));
		/* A reason such as "bad term" holds spaces: one word like the rest. */
		grey_field(why, sizeof(why), c->spf->why, strnlen(c->spf->why, sizeof(c->spf->why)));
		snprintf(spf, sizeof(spf), " spf=%s%s%s key=%s",
			 spf_result_name((enum spf_result)c->spf->result), keyed ? "" : ":",
			 keyed ? "" : why, kf);
	}
	log_info("%s client=%s name=%s helo=\"%s\" from=<%s> to=<%s>%s%s%s", what, ip, name, helo,
		 from, to, extra ? " " : "", extra ? extra : "", spf);
}

/* ---- the decision chain ------------------------------------------------- */

static void grey_outcome(struct conn *c, enum grey_outcome o, const char *reply)
{
	c->deciding = 0;
	c->step = STEP_NONE;
	smtp_decided(c, o, reply);
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
		n = grey_angle(c->mail, &s);
		grey_sender_key(s, n, snd, sizeof(snd));
		n = grey_angle(c->pending, &s);
	} else {
		n = grey_helo(c, &s);
		grey_sender_key(s, n, snd, sizeof(snd));
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

/* The AWL update outlives the connection (it may close before the store answers). */
struct awl_update {
	struct engine *e;
	char key[GREY_KEY_MAX];
	int max_age;
	int interval; /* postgrey: at most one counted success per hour */
};

static void grey_awl_cb(int found, const struct store_rec *rec, void *arg)
{
	struct awl_update *u = arg;
	struct store_rec r;
	time_t now = time(NULL);

	if (found < 0) {
		u->e->store_errors++;
		free(u);
		return;
	}
	if (found) {
		r = *rec;
		if (now - r.last < u->interval) {
			free(u);
			return;
		}
		r.count++;
	} else {
		r.first = now;
		r.count = 1;
	}
	r.last = now;
	r.expires = now + u->max_age;
	if (store_put(u->e->store, STORE_AWL, u->key, &r) < 0)
		u->e->store_errors++;
	u->e->awl_add++;
	log_info("awl add key=%s count=%u", u->key, r.count);
	free(u);
}

/* grey_awl_count - a message the backend accepted counts towards the AWL. */
static void grey_awl_count(struct conn *c)
{
	struct awl_update *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return;
	u->e = grey_engine(c);
	u->max_age = c->cfg->greylist_max_age;
	u->interval = c->cfg->awl_interval;
	grey_net_key((const struct sockaddr *)&c->client.ss, u->key, sizeof(u->key));
	if (store_get(u->e->store, STORE_AWL, u->key, grey_awl_cb, u) == NULL)
		free(u);
}

/* The first sighting of a triplet outlives the dropped connection. */
struct sighting {
	struct engine *e;
	char key[3 * GREY_KEY_MAX];
	int window;
};

static void grey_sighting_cb(int found, const struct store_rec *rec, void *arg)
{
	struct sighting *u = arg;
	struct store_rec r;

	(void)rec;
	/*
	 * A triplet already known keeps its first sighting (and a passed one
	 * its pass): only a new one starts the clock here.
	 */
	if (found < 0)
		u->e->store_errors++;
	if (found == 0) {
		r.first = r.last = time(NULL);
		r.count = 0;
		r.expires = r.first + u->window;
		if (store_put(u->e->store, STORE_GREY, u->key, &r) < 0)
			u->e->store_errors++;
		else
			log_info("greylist first key=%s", u->key);
	}
	free(u);
}

/*
 * grey_first_sighting - taRgrey: the tarpitted attempt is the triplet's
 * first sighting, so a sender that dropped and comes back after
 * greylist_delay is on time (counted from the drop, not from the retry).
 */
static void grey_first_sighting(struct conn *c)
{
	struct sighting *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return;
	u->e = grey_engine(c);
	u->window = c->cfg->greylist_retry_window;
	grey_triplet(c, u->key, sizeof(u->key));
	if (store_get(u->e->store, STORE_GREY, u->key, grey_sighting_cb, u) == NULL) {
		u->e->store_errors++;
		free(u);
	}
}

static void grey_store_cb(int found, const struct store_rec *rec, void *arg);

static void grey_lookup(struct conn *c, enum grey_step step, enum store_kind kind,
			const char *key)
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
	const struct cfg *cfg = c->cfg;
	char key[3 * GREY_KEY_MAX], extra[64];
	struct store_rec r;
	time_t now = time(NULL);

	grey_triplet(c, key, sizeof(key));
	if (!found) {
		r.first = r.last = now;
		r.count = 0;
		r.expires = now + cfg->greylist_retry_window;
		if (store_put(e->store, STORE_GREY, key, &r) < 0) {
			grey_tempfail_store(c);
			return;
		}
		e->grey_new++;
		c->mxg->stats.grey_defer++;
		grey_log(c, "greylist new", NULL);
		grey_outcome(c, GREY_TEMPFAIL, grey_greylisted_reply(c));
		return;
	}
	r = *rec;
	r.count++;
	r.last = now;
	if (now - r.first >= cfg->greylist_delay && (int)r.count >= cfg->greylist_retries) {
		/* Passed: remembered for max_age, so it passes at once from now on. */
		r.expires = now + cfg->greylist_max_age;
		if (store_put(e->store, STORE_GREY, key, &r) < 0) {
			grey_tempfail_store(c);
			return;
		}
		e->grey_pass++;
		c->mxg->stats.grey_pass++;
		snprintf(extra, sizeof(extra), "age=%llds retries=%u", (long long)(now - r.first),
			 r.count);
		grey_log(c, "greylist pass", extra);
		grey_outcome(c, GREY_PASS, NULL);
		return;
	}
	/* Not yet: the retry window counts from the first attempt. */
	r.expires = r.first + cfg->greylist_retry_window;
	if (store_put(e->store, STORE_GREY, key, &r) < 0) {
		grey_tempfail_store(c);
		return;
	}
	e->grey_early++;
	c->mxg->stats.grey_defer++;
	snprintf(extra, sizeof(extra), "age=%llds retries=%u", (long long)(now - r.first), r.count);
	grey_log(c, "greylist early", extra);
	grey_outcome(c, GREY_TEMPFAIL, grey_greylisted_reply(c));
}

/*
 * grey_sender_domain - the domain of the MAIL FROM address, lower case,
 * without a trailing dot, into out; 0, or -1 when there is none (the null
 * sender, no '@', nothing after it, or too long).
 */
static int grey_sender_domain(const struct conn *c, char *out, size_t outsz)
{
	const char *s, *at;
	size_t n = grey_angle(c->mail, &s), dn;

	at = n ? memrchr(s, '@', n) : NULL;
	if (at == NULL)
		return -1;
	dn = (size_t)(s + n - at - 1);
	if (dn > 0 && at[dn] == '.')
		dn--;
	if (dn == 0 || dn >= outsz)
		return -1;
	for (size_t i = 0; i < dn; i++)
		out[i] = (char)tolower((unsigned char)at[1 + i]);
	out[dn] = '\0';
	return 0;
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
	struct grey_spf *sp = c->spf;
	char domain[GREY_KEY_MAX - 4]; /* "spf:" and it fit a key */

	sp->req = NULL;
	sp->done = 1;
	sp->result = (uint8_t)o->result;
	snprintf(sp->why, sizeof(sp->why), "%.29s",
		 o->broad && o->result == SPF_PASS ? "broad" : o->why);
	/*
	 * Only a pass by a named network: "+all" (or a /8) is something any
	 * bot's domain can publish, and its key would let strangers through.
	 */
	if (o->result == SPF_PASS && !o->broad &&
	    grey_sender_domain(c, domain, sizeof(domain)) == 0) {
		size_t kl = strlen(domain) + 5;
		struct grey_spf *grown = realloc(sp, sizeof(*sp) + kl);

		if (grown != NULL) {
			c->spf = sp = grown;
			snprintf(sp->key, kl, "spf:%s", domain);
		}
	}
	grey_after_spf(c);
}

/* grey_spf_free - cancel and free c's SPF step, if any. */
static void grey_spf_free(struct conn *c)
{
	if (c->spf == NULL)
		return;
	spf_cancel(c->spf->req);
	free(c->spf);
	c->spf = NULL;
}

/*
 * grey_spf_start - the SPF step, before the tarpit-record lookup: for a
 * suspect at RCPT whose key would be its network, check the sender
 * domain's SPF record for the client; a pass keys the tarpit record and the
 * triplet by "spf:<domain>", so a retry from any address the domain
 * authorises matches (big senders' pools). Anything else, including an
 * error or the time bound, keeps the network key: never a reject.
 */
static void grey_spf_start(struct conn *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;
	char key[GREY_KEY_MAX], domain[GREY_KEY_MAX - 4], sender[GREY_KEY_MAX], helo[GREY_KEY_MAX];
	const char *s;
	size_t n;

	/* A deferred client may come back with another MAIL: decide afresh. */
	grey_spf_free(c);
	if (!c->cfg->greylist_spf || c->pending_verb != SMTP_RCPT ||
	    !grey_client_key(c, key, sizeof(key)) ||
	    grey_sender_domain(c, domain, sizeof(domain)) < 0 ||
	    (c->spf = calloc(1, sizeof(*c->spf) + 1)) == NULL) {
		grey_after_spf(c);
		return;
	}
	n = grey_angle(c->mail, &s);
	snprintf(sender, sizeof(sender), "%.*s", (int)n, s);
	n = grey_helo(c, &s);
	snprintf(helo, sizeof(helo), "%.*s", (int)n, s);
	c->step = STEP_SPF;
	/* Each DNS answer may take dns_timeout: the whole walk gets two. */
	c->spf->req = spf_check(c->mxg->base, grey_engine(c)->dns, sa, domain, sender, helo,
				2 * 1000 * c->cfg->dns_timeout, grey_spf_cb, c);
	if (c->spf->req == NULL)
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
		if (found && c->cfg->awl_count > 0 && (int)rec->count >= c->cfg->awl_count) {
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

/* grey_octet_set - "2", "[2..11]", "[2;10;11]" into a bitmap. */
static int grey_octet_set(const char *s, uint8_t set[32])
{
	char buf[128], *save = NULL, *item;

	memset(set, 0, 32);
	if (*s != '[') {
		char *end;
		long v = strtol(s, &end, 10);

		if (*s == '\0' || *end || v < 0 || v > 255)
			return -1;
		set[v / 8] |= (uint8_t)(1 << (v % 8));
		return 0;
	}
	size_t len = strlen(s);

	if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(buf))
		return -1;
	memcpy(buf, s + 1, len - 2);
	buf[len - 2] = '\0';
	for (item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char *dots = strstr(item, ".."), *end;
		long lo = strtol(item, &end, 10), hi = lo;

		if (end == item || (dots ? end != dots : *end != '\0'))
			return -1;
		if (dots) {
			hi = strtol(dots + 2, &end, 10);
			if (end == dots + 2 || *end)
				return -1;
		}
		if (lo < 0 || hi > 255 || lo > hi)
			return -1;
		for (long v = lo; v <= hi; v++)
			set[v / 8] |= (uint8_t)(1 << (v % 8));
	}
	return 0;
}

/* grey_dnsbl_parse - the dnsbl_sites value into sites (at most DNSBL_MAX). */
static int grey_dnsbl_parse(const char *value, struct dnsbl_site **sites_r, int *n_r, char *err,
			    size_t errsz)
{
	char *copy = strdup(value), *words[DNSBL_MAX + 1];
	struct dnsbl_site *sites = NULL;
	int n;

	if (copy == NULL)
		goto oom;
	n = cfg_split_list(copy, words, DNSBL_MAX + 1);
	if (n > DNSBL_MAX) {
		snprintf(err, errsz, "dnsbl_sites: more than %d sites", DNSBL_MAX);
		goto fail;
	}
	if (n > 0 && (sites = calloc((size_t)n, sizeof(*sites))) == NULL)
		goto oom;
	for (int i = 0; i < n; i++) {
		struct dnsbl_site *d = &sites[i];
		char *w = words[i], *star = strrchr(w, '*'), *eq;

		d->weight = 1;
		if (star != NULL) {
			char *end;

			*star = '\0';
			d->weight = (int)strtol(star + 1, &end, 10);
			if (end == star + 1 || *end || d->weight == 0) {
				snprintf(err, errsz, "dnsbl_sites: bad weight in '%s'", words[i]);
				goto fail;
			}
		}
		memset(d->allow, 0xff, sizeof(d->allow));
		if ((eq = strchr(w, '=')) != NULL) {
			char *oct[4], *p = eq + 1;
			int k = 0, depth = 0;

			*eq = '\0';
			/* Octets are split at dots outside brackets: [2..11] is one. */
			oct[k++] = p;
			for (; *p && k <= 4; p++) {
				if (*p == '[')
					depth++;
				else if (*p == ']')
					depth--;
				else if (*p == '.' && depth == 0) {
					*p = '\0';
					if (k < 4)
						oct[k] = p + 1;
					k++;
				}
			}
			for (int j = 0; k == 4 && j < 4; j++)
				if (grey_octet_set(oct[j], d->allow[j]) < 0)
					k = -1;
			if (k != 4) {
				snprintf(err, errsz, "dnsbl_sites: bad filter for '%s' (expected e.g. "
						     "127.0.0.[2..11])", w);
				goto fail;
			}
		}
		if (*w == '\0' || strlen(w) >= sizeof(d->domain) || strchr(w, '/') != NULL) {
			snprintf(err, errsz, "dnsbl_sites: bad domain '%s'", w);
			goto fail;
		}
		snprintf(d->domain, sizeof(d->domain), "%s", w);
	}
	free(copy);
	*sites_r = sites;
	*n_r = n;
	return 0;
oom:
	snprintf(err, errsz, "out of memory");
fail:
	free(copy);
	free(sites);
	return -1;
}

static int grey_dnsbl_match(const struct dnsbl_site *d, const unsigned char a[4])
{
	for (int j = 0; j < 4; j++)
		if (!(d->allow[j][a[j] / 8] & (1 << (a[j] % 8))))
			return 0;
	return 1;
}

static void grey_classify(struct conn *c);

/* grey_ready - is everything the decision needs from DNS here? */
static int grey_ready(const struct conn *c)
{
	return c->dns_state != GDNS_PENDING &&
	       (c->bl == NULL || (c->bl->pending == 0 && c->bl->ns_req == NULL));
}

static void grey_ns_cb(enum dns_status st, const char *const *names, int n, void *arg)
{
	struct conn *c = arg;
	struct grey_lookups *bl = c->bl;

	bl->ns_req = NULL;
	/* A failed lookup lists nothing: never a rejection on a DNS failure. */
	for (int i = 0; st == DNS_OK && i < n && !bl->ns_decided; i++) {
		struct classification cl;

		if (rules_lists(grey_engine(c)->ns_rules, names[i], NULL, &cl)) {
			bl->ns_cl = cl;
			snprintf(bl->ns_cl.reason, sizeof(bl->ns_cl.reason), "ns:%.40s:%.100s",
				 names[i], cl.reason);
			bl->ns_decided = 1;
		}
	}
	if (c->deciding && c->step == STEP_DNS && grey_ready(c))
		grey_classify(c);
}

/* grey_ns_start - at the decision: the NS names of the sender's domain. */
static void grey_ns_start(struct conn *c)
{
	const struct engine *e = grey_engine(c);
	char domain[GREY_KEY_MAX];
	const char *s, *at;
	size_t n;

	if (!e->ns_enabled || c->pending_verb != SMTP_RCPT)
		return;
	n = grey_angle(c->mail, &s);
	at = memchr(s, '@', n);
	if (at == NULL || (size_t)(s + n - at - 1) >= sizeof(domain) || at + 1 == s + n)
		return;
	snprintf(domain, sizeof(domain), "%.*s", (int)(s + n - at - 1), at + 1);
	if (c->bl == NULL && (c->bl = calloc(1, sizeof(*c->bl))) == NULL)
		return;
	if (c->bl->ns_req != NULL)
		return;
	c->bl->ns_decided = 0;
	c->bl->ns_req = dns_ns(e->dns, domain, grey_ns_cb, c);
}

static void grey_dnsbl_cb(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg)
{
	struct grey_query *q = arg;
	struct conn *c = q->c;
	struct grey_lookups *bl = c->bl;

	q->req = NULL;
	for (int i = 0; st == DNS_OK && i < n; i++) {
		if (!grey_dnsbl_match(&q->site, a4[i]))
			continue;
		bl->score += q->site.weight;
		size_t o = strlen(bl->hits);

		snprintf(bl->hits + o, sizeof(bl->hits) - o, "%s%s", o ? "," : "", q->site.domain);
		break;
	}
	if (--bl->pending == 0) {
		free(bl->q);
		bl->q = NULL;
		bl->nq = 0;
		if (c->deciding && c->step == STEP_DNS && grey_ready(c))
			grey_classify(c);
	}
}

/* grey_dnsbl_start - one query per site: d.c.b.a.site (IPv6: nibbles). */
static void grey_dnsbl_start(struct conn *c)
{
	const struct engine *e = grey_engine(c);
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;
	char rev[80] = "", name[400];

	if (e->nsites == 0)
		return;
	if (sa->sa_family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;

		snprintf(rev, sizeof(rev), "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
	} else {
		const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		size_t o = 0;

		for (int i = 15; i >= 0; i--)
			o += (size_t)snprintf(rev + o, sizeof(rev) - o, "%s%x.%x", i < 15 ? "." : "",
					      b[i] & 15, b[i] >> 4);
	}
	c->bl = calloc(1, sizeof(*c->bl));
	if (c->bl == NULL || (c->bl->q = calloc((size_t)e->nsites, sizeof(*c->bl->q))) == NULL) {
		free(c->bl);
		c->bl = NULL;
		return;
	}
	c->bl->nq = e->nsites;
	for (int i = 0; i < e->nsites; i++) {
		struct grey_query *q = &c->bl->q[i];

		q->c = c;
		q->site = e->sites[i];
		snprintf(name, sizeof(name), "%s.%s", rev, q->site.domain);
		q->req = dns_addrs(e->dns, name, grey_dnsbl_cb, q);
		if (q->req != NULL)
			c->bl->pending++;
	}
}

static void grey_dnsbl_free(struct conn *c)
{
	if (c->bl == NULL)
		return;
	if (c->bl->ns_req != NULL)
		dns_cancel(c->bl->ns_req);
	for (int i = 0; i < c->bl->nq; i++)
		if (c->bl->q[i].req != NULL)
			dns_cancel(c->bl->q[i].req);
	free(c->bl->q);
	free(c->bl);
	c->bl = NULL;
}

/* grey_helo_is_own - does the HELO name claim to be this server? */
static int grey_helo_is_own(const struct conn *c, const char *helo, size_t len)
{
	char ip[NETADDR_STRLEN], lit[NETADDR_STRLEN + 2];

	if (len == strlen(c->cfg->myhostname) && strncasecmp(helo, c->cfg->myhostname, len) == 0)
		return 1;
	netaddr_ip((const struct sockaddr *)&c->local.ss, ip, sizeof(ip));
	snprintf(lit, sizeof(lit), "[%s]", ip);
	return (len == strlen(ip) && strncmp(helo, ip, len) == 0) ||
	       (len == strlen(lit) && strncmp(helo, lit, len) == 0);
}

/*
 * grey_rules_classify - in order: the recipient opts out; the client lists
 * (and the operator's whitelist); a HELO that claims to be this server, or
 * that helo_lists decide on; the DNSBL/DNSWL score; S25R on the verified
 * name.
 */
static void grey_rules_classify(const struct conn *c, struct classification *cl)
{
	const struct engine *e = grey_engine(c);
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;
	char rcpt[GREY_KEY_MAX], helo[GREY_KEY_MAX];
	const char *s;
	size_t n;

	if (c->pending_verb == SMTP_RCPT) {
		n = grey_angle(c->pending, &s);
		snprintf(rcpt, sizeof(rcpt), "%.*s", (int)n, s);
		memset(cl, 0, sizeof(*cl));
		if (rules_rcpt_match(e->rcpt_rules, rcpt, cl->reason, sizeof(cl->reason))) {
			cl->verdict = VERDICT_WHITE;
			return;
		}
	}
	if (rules_lists(e->rules, c->name, sa, cl))
		return;
	n = grey_helo(c, &s);
	if (n > 0 && grey_helo_is_own(c, s, n)) {
		memset(cl, 0, sizeof(*cl));
		cl->verdict = VERDICT_BLACK;
		cl->reply_code = 550;
		snprintf(cl->reason, sizeof(cl->reason), "helo:own");
		snprintf(cl->reply, sizeof(cl->reply), "HELO claims to be this server");
		return;
	}
	snprintf(helo, sizeof(helo), "%.*s", (int)n, s);
	if (n > 0) {
		struct classification hc;

		if (rules_lists(e->helo_rules, helo, NULL, &hc)) {
			*cl = hc;
			/* Reasons name the list; say it was about the HELO. */
			snprintf(cl->reason, sizeof(cl->reason), "helo:%.150s", hc.reason);
			return;
		}
	}
	if (c->bl != NULL && c->bl->ns_decided) {
		*cl = c->bl->ns_cl;
		return;
	}
	if (c->bl != NULL && c->bl->score >= c->cfg->dnsbl_threshold) {
		char ip[NETADDR_STRLEN];

		memset(cl, 0, sizeof(*cl));
		cl->verdict = VERDICT_BLACK;
		cl->reply_code = 550;
		netaddr_ip(sa, ip, sizeof(ip));
		snprintf(cl->reason, sizeof(cl->reason), "dnsbl:score=%d:%.100s", c->bl->score,
			 c->bl->hits);
		snprintf(cl->reply, sizeof(cl->reply),
			 "Service unavailable; client [%s] blocked using %.100s",
			 ip, c->bl->hits);
		return;
	}
	if (c->bl != NULL && c->bl->score <= c->cfg->dnswl_threshold) {
		memset(cl, 0, sizeof(*cl));
		cl->verdict = VERDICT_WHITE;
		snprintf(cl->reason, sizeof(cl->reason), "dnswl:score=%d:%.100s", c->bl->score,
			 c->bl->hits);
		return;
	}
	rules_classify(e->rules, c->name, sa, cl);
}

/* grey_classify - DNS is settled: lists, S25R, then the chain. */
static void grey_classify(struct conn *c)
{
	struct engine *e = grey_engine(c);
	struct classification cl;
	char extra[512], key[GREY_KEY_MAX];

	if (c->dns_state == GDNS_FAILED) {
		if (c->cfg->dns_failure_action == DNSFAIL_PASS) {
			grey_log(c, "verdict", "verdict=pass reason=dns:fail");
			grey_outcome(c, GREY_PASS, NULL);
			return;
		}
		if (c->cfg->dns_failure_action == DNSFAIL_TEMPFAIL && c->cfg->mode == MODE_WARN) {
			grey_log(c, "warn: would defer", "reason=dns:fail");
			grey_outcome(c, GREY_PASS, NULL);
			return;
		}
		if (c->cfg->dns_failure_action == DNSFAIL_TEMPFAIL) {
			grey_log(c, "verdict", "verdict=tempfail reason=dns:fail");
			grey_outcome(c, GREY_TEMPFAIL,
				     "451 4.4.3 Temporary DNS failure, please try again later\r\n");
			return;
		}
		/* suspect: the name is unknown, as S25R r0 sees it. */
	}
	grey_rules_classify(c, &cl);
	/* The listener group is under attack and the client was not known before. */
	if (c->attack_suspect && cl.verdict == VERDICT_CLEAN) {
		cl.verdict = VERDICT_SUSPECT;
		snprintf(cl.reason, sizeof(cl.reason), "attack:unknown");
	}
	c->verdict = (uint8_t)cl.verdict;
	e->verdicts[cl.verdict]++;
	/* A deferred client may try another RCPT: one verdict per connection. */
	if (!c->counted) {
		c->counted = 1;
		c->mxg->stats.verdicts[cl.verdict]++;
		c->lst->stats.verdicts[cl.verdict]++;
	}
	snprintf(extra, sizeof(extra), "verdict=%s reason=%s%s%s%s",
		 rules_verdict_name(cl.verdict), cl.reason,
		 c->dns_state == GDNS_FAILED ? " dns=fail" : "", cl.warned ? " warn=" : "",
		 cl.warned ? cl.warn : "");
	grey_log(c, c->cfg->mode == MODE_WARN ? "warn: verdict" : "verdict", extra);
	/* The last verdicts, for mxguardctl top. */
	control_note_verdict(c->mxg, &c->client.ss.sa, c->name, cl.verdict, cl.reason);
	switch (cl.verdict) {
	case VERDICT_WHITE:
	case VERDICT_CLEAN:
		grey_outcome(c, GREY_PASS, NULL);
		return;
	case VERDICT_BLACK: {
		char reply[400];
		int code = cl.reply_code ? cl.reply_code : 550;

		if (c->cfg->mode == MODE_WARN) {
			grey_log(c, "warn: would reject", NULL);
			grey_outcome(c, GREY_PASS, NULL);
			return;
		}
		/* Only printable text from the list file goes back out. */
		for (char *p = cl.reply; *p; p++)
			if (!isprint((unsigned char)*p))
				*p = ' ';
		/* A list text that brings its own enhanced code keeps it. */
		if (isdigit((unsigned char)cl.reply[0]) && cl.reply[1] == '.')
			snprintf(reply, sizeof(reply), "%d %s\r\n", code, cl.reply);
		else
			snprintf(reply, sizeof(reply), "%d %d.7.1 %s\r\n", code, code / 100,
				 cl.reply);
		grey_outcome(c, GREY_REJECT, reply);
		return;
	}
	case VERDICT_SUSPECT:
		break;
	}
	if (c->cfg->mode == MODE_WARN) {
		grey_log(c, "warn: would tarpit or greylist", NULL);
		grey_outcome(c, GREY_PASS, NULL);
		return;
	}
	grey_net_key((const struct sockaddr *)&c->client.ss, key, sizeof(key));
	grey_lookup(c, STEP_AWL, STORE_AWL, key);
}

static void grey_dns_cb(enum dns_status st, const char *name, void *arg)
{
	struct conn *c = arg;

	c->dreq = NULL;
	if (st == DNS_OK && name != NULL && (c->name = strdup(name)) != NULL)
		c->dns_state = GDNS_NAME;
	else
		c->dns_state = st == DNS_FAIL ? GDNS_FAILED : GDNS_UNKNOWN;
	if (c->deciding && c->step == STEP_DNS && grey_ready(c))
		grey_classify(c);
	else if (c->stage == STAGE_GREET)
		smtp_greet_settled(c);
	else if (c->ho != NULL)
		handoff_name_known(c);
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
		grey_dnsbl_start(c);
}

void grey_decide(struct conn *c)
{
	c->deciding = 1;
	c->step = STEP_DNS;
	grey_ns_start(c);
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
	grey_dnsbl_free(c);
	grey_spf_free(c);
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

/* grey_rules_all - the three rule sets for cfg, or none (err set). */
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
	if (e->store != NULL &&
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

struct engine *grey_new(struct mxg *mxg, char *err, size_t errsz)
{
	struct engine *e = calloc(1, sizeof(*e));
	const struct cfg *cfg = mxg->cfg;

	if (e == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	e->mxg = mxg;
	e->store = store_open(mxg->base, cfg->store, cfg->state_dir, cfg->store_timeout,
			      cfg->store_cache_size, err, errsz);
	if (e->store == NULL)
		goto fail;
	if (grey_rules_all(e, cfg, &e->rules, &e->helo_rules, &e->rcpt_rules, &e->ns_rules, err,
			   errsz) < 0 ||
	    grey_dnsbl_parse(cfg->dnsbl_sites, &e->sites, &e->nsites, err, errsz) < 0)
		goto fail;
	e->ns_enabled = cfg->sender_ns_lists[0] != '\0';
	e->dns = dns_new(mxg->base, cfg->dns_resolvers, cfg->dns_timeout * 1000, 10000, err, errsz);
	if (e->dns == NULL)
		goto fail;
	dns_set_latency(e->dns, &mxg->stats.dns_latency);
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

	if (grey_dnsbl_parse(cfg->dnsbl_sites, &sites, &nsites, err, errsz) < 0)
		return -1;
	if (grey_rules_all(e, cfg, &client, &helo, &rcpt, &ns, err, errsz) < 0) {
		free(sites);
		return -1;
	}
	store_set_timeout(e->store, cfg->store_timeout);
	rules_free(&e->ns_rules);
	e->ns_rules = ns;
	e->ns_enabled = cfg->sender_ns_lists[0] != '\0';
	free(e->sites);
	e->sites = sites;
	e->nsites = nsites;
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

struct store *grey_store(struct engine *e)
{
	return e->store;
}

void grey_status(struct engine *e, char *buf, size_t bufsz)
{
	int held = 0;

	for (struct conn *c = e->mxg->conns; c != NULL; c = c->next)
		held += c->stage == STAGE_TARPIT;
	snprintf(buf, bufsz,
		 "\"held\":%d,\"verdicts\":{\"clean\":%lu,\"suspect\":%lu,\"white\":%lu,"
		 "\"black\":%lu},\"tarpit\":{\"start\":%lu,\"drop\":%lu,\"survived\":%lu},"
		 "\"greylist\":{\"new\":%lu,\"early\":%lu,\"pass\":%lu},\"awl\":{\"pass\":%lu,"
		 "\"add\":%lu},\"store\":{\"tarpit\":%ld,\"grey\":%ld,\"awl\":%ld,\"errors\":%lu},"
		 "\"dns_cache\":%d",
		 held, e->verdicts[VERDICT_CLEAN], e->verdicts[VERDICT_SUSPECT],
		 e->verdicts[VERDICT_WHITE], e->verdicts[VERDICT_BLACK], e->tarpit_start,
		 e->tarpit_drop, e->tarpit_survived, e->grey_new, e->grey_early, e->grey_pass,
		 e->awl_pass, e->awl_add, store_count(e->store, STORE_TARPIT),
		 store_count(e->store, STORE_GREY), store_count(e->store, STORE_AWL),
		 e->store_errors, dns_cache_size(e->dns));
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
	store_close(&e->store);
	psl_free(e->psl_owned);
	free(e);
}
