/*
 * dnsbl.c - the DNS lists of the taRgrey engine.
 *
 * At connect, one query per dnsbl_sites entry for the client address;
 * each listing site adds its weight to the score (a negative weight is a
 * DNSWL). At the decision of a RCPT, the sender domain's NS names against
 * sender_ns_lists. A failed query lists nothing: never a rejection on a DNS
 * failure. The answers are hostile: only the four octets of an A record are
 * read, against the site's filter.
 *
 * The state lives outside struct conn (c->bl) and only when something is
 * configured: a held connection is what mxguard has most of.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "dns.h"
#include "dnsbl.h"
#include "greykey.h"
#include "rules.h"

/* A DNSBL query in flight carries its own copy of the site: a reload may
 * replace the engine's list meanwhile. */
struct dnsbl_query {
	struct conn *c;
	struct dns_req *req;
	struct dnsbl_site site;
};

struct dnsbl_lookups {
	struct dnsbl_result r;
	int pending;
	struct dnsbl_query *q;
	int nq;
	/* The sender domain's NS names against sender_ns_lists. */
	struct dns_req *ns_req;
	const struct dnsbl_ctx *ctx;
};

/* dnsbl_octet_set - "2", "[2..11]", "[2;10;11]" into a bitmap. */
static int dnsbl_octet_set(const char *s, uint8_t set[32])
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

int dnsbl_parse(const char *value, struct dnsbl_site **sites_r, int *n_r, char *err, size_t errsz)
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
				if (dnsbl_octet_set(oct[j], d->allow[j]) < 0)
					k = -1;
			if (k != 4) {
				snprintf(err, errsz,
					 "dnsbl_sites: bad filter for '%s' (expected e.g. "
					 "127.0.0.[2..11])",
					 w);
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

static int dnsbl_match(const struct dnsbl_site *d, const unsigned char a[4])
{
	for (int j = 0; j < 4; j++)
		if (!(d->allow[j][a[j] / 8] & (1 << (a[j] % 8))))
			return 0;
	return 1;
}

static void dnsbl_ns_cb(enum dns_status st, const char *const *names, int n, void *arg)
{
	struct conn *c = arg;
	struct dnsbl_lookups *bl = c->bl;

	bl->ns_req = NULL;
	/* A failed lookup lists nothing: never a rejection on a DNS failure. */
	for (int i = 0; st == DNS_OK && i < n && !bl->r.ns_decided; i++) {
		struct classification cl;

		if (rules_lists(bl->ctx->ns_rules, names[i], NULL, &cl)) {
			bl->r.ns_cl = cl;
			snprintf(bl->r.ns_cl.reason, sizeof(bl->r.ns_cl.reason), "ns:%.40s:%.100s",
				 names[i], cl.reason);
			bl->r.ns_decided = 1;
		}
	}
	bl->ctx->ready(c);
}

void dnsbl_ns_start(struct conn *c, const struct dnsbl_ctx *ctx)
{
	char domain[GREYKEY_MAX];
	const char *s, *at;
	size_t n;

	if (!ctx->ns_enabled || c->pending_verb != SMTP_RCPT)
		return;
	n = greykey_angle(c->mail, &s);
	at = memchr(s, '@', n);
	if (at == NULL || (size_t)(s + n - at - 1) >= sizeof(domain) || at + 1 == s + n)
		return;
	snprintf(domain, sizeof(domain), "%.*s", (int)(s + n - at - 1), at + 1);
	if (c->bl == NULL && (c->bl = calloc(1, sizeof(*c->bl))) == NULL)
		return;
	if (c->bl->ns_req != NULL)
		return;
	c->bl->ctx = ctx;
	c->bl->r.ns_decided = 0;
	c->bl->ns_req = dns_ns(ctx->dns, domain, dnsbl_ns_cb, c);
}

static void dnsbl_cb(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg)
{
	struct dnsbl_query *q = arg;
	struct conn *c = q->c;
	struct dnsbl_lookups *bl = c->bl;

	q->req = NULL;
	for (int i = 0; st == DNS_OK && i < n; i++) {
		if (!dnsbl_match(&q->site, a4[i]))
			continue;
		bl->r.score += q->site.weight;
		size_t o = strlen(bl->r.hits);

		snprintf(bl->r.hits + o, sizeof(bl->r.hits) - o, "%s%s", o ? "," : "",
			 q->site.domain);
		break;
	}
	if (--bl->pending == 0) {
		free(bl->q);
		bl->q = NULL;
		bl->nq = 0;
		bl->ctx->ready(c);
	}
}

void dnsbl_start(struct conn *c, const struct dnsbl_ctx *ctx)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;
	char rev[80] = "", name[400];

	if (ctx->nsites == 0)
		return;
	if (sa->sa_family == AF_INET) {
		const unsigned char *b =
		    (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;

		snprintf(rev, sizeof(rev), "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
	} else {
		const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		size_t o = 0;

		for (int i = 15; i >= 0; i--)
			o += (size_t)snprintf(rev + o, sizeof(rev) - o, "%s%x.%x",
					      i < 15 ? "." : "", b[i] & 15, b[i] >> 4);
	}
	c->bl = calloc(1, sizeof(*c->bl));
	if (c->bl == NULL || (c->bl->q = calloc((size_t)ctx->nsites, sizeof(*c->bl->q))) == NULL) {
		free(c->bl);
		c->bl = NULL;
		return;
	}
	c->bl->ctx = ctx;
	c->bl->nq = ctx->nsites;
	for (int i = 0; i < ctx->nsites; i++) {
		struct dnsbl_query *q = &c->bl->q[i];

		q->c = c;
		q->site = ctx->sites[i];
		snprintf(name, sizeof(name), "%s.%s", rev, q->site.domain);
		q->req = dns_addrs(ctx->dns, name, dnsbl_cb, q);
		if (q->req != NULL)
			c->bl->pending++;
	}
}

void dnsbl_free(struct conn *c)
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

int dnsbl_pending(const struct conn *c)
{
	return c->bl != NULL && (c->bl->pending != 0 || c->bl->ns_req != NULL);
}

const struct dnsbl_result *dnsbl_result(const struct conn *c)
{
	return c->bl != NULL ? &c->bl->r : NULL;
}
