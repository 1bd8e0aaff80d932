/*
 * dnsbl.h - the DNS lists of the taRgrey engine: the client address against
 * dnsbl_sites (postscreen's weighted DNSBL/DNSWL score) and the sender
 * domain's name servers against sender_ns_lists. The queries run on the
 * engine's resolver while the client talks; the engine reads the result
 * when it decides.
 */
#ifndef MXG_DNSBL_H
#define MXG_DNSBL_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

struct conn;
struct dns;

/* The most dnsbl_sites entries. */
#define DNSBL_MAX 16

/* One dnsbl_sites entry: domain[=filter][*weight], as postscreen reads it. */
struct dnsbl_site {
	char domain[254];
	int weight;
	uint8_t allow[4][32]; /* per octet of the answer: a bitmap of allowed values */
};

/*
 * What the lookups need, owned by the engine and updated in place by a
 * reload (so an answer that arrives later uses the lists in force then).
 * ready(c) runs when the DNSBL queries, or the NS lookup, of c ended.
 */
struct dnsbl_ctx {
	struct dns *dns;
	const struct dnsbl_site *sites;
	int nsites;
	const struct rules *ns_rules; /* sender_ns_lists */
	int ns_enabled;
	void (*ready)(struct conn *c);
};

/* What the lookups found so far. */
struct dnsbl_result {
	int score;	    /* sum of the weights of the sites that listed it */
	char hits[160];	    /* the listing domains, for the log and the reply */
	uint8_t ns_decided; /* ns_cl holds a list's decision on an NS name */
	struct classification ns_cl;
};

/*
 * dnsbl_parse - the dnsbl_sites value into a new array of at most
 * DNSBL_MAX sites (*sites_r, freed with free(); NULL when there are none)
 * and its length. Returns 0, or -1 with a message in err.
 */
int dnsbl_parse(const char *value, struct dnsbl_site **sites_r, int *n_r, char *err, size_t errsz);

/*
 * dnsbl_start - at connect: one query per site for c's address
 * (d.c.b.a.site, IPv6 nibbles). Nothing when no site is configured or
 * memory is short (then nothing is listed).
 */
void dnsbl_start(struct conn *c, const struct dnsbl_ctx *ctx);

/*
 * dnsbl_ns_start - at the decision of a RCPT: the NS names of the sender
 * domain (from c->mail) against sender_ns_lists, when those are set.
 */
void dnsbl_ns_start(struct conn *c, const struct dnsbl_ctx *ctx);

/* dnsbl_pending - 1 while a query of c is still running, else 0. */
int dnsbl_pending(const struct conn *c);

/* dnsbl_result - what c's lookups found, NULL when none ran. */
const struct dnsbl_result *dnsbl_result(const struct conn *c);

/* dnsbl_free - cancel c's queries and free their state; may be called twice. */
void dnsbl_free(struct conn *c);

#endif
