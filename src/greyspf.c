/*
 * greyspf.c - the SPF step of the taRgrey engine.
 *
 * Before the tarpit-record lookup, for a suspect at RCPT whose key would be
 * its network, the sender domain's SPF record is checked for the client; a
 * pass keys the tarpit record and the triplet by "spf:<domain>", so a retry
 * from any address the domain authorises matches (big senders' pools).
 * Anything else, including an error or the time bound, keeps the network
 * key: never a reject.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "greykey.h"
#include "greyspf.h"
#include "mxguard.h"
#include "spf.h"

/*
 * The sender domain's SPF (greylist_spf), looked up for a suspect whose key
 * would be its network. Held clients keep it through the hold, and they are
 * what mxguard has most of: so it is small and apart from the DNSBL state
 * (over 1 KiB), and the key is as long as it needs to be. key is
 * "spf:<domain>" after a pass (then it is the client key), else "".
 */
struct greyspf {
	struct spf_req *req;
	uint8_t done;
	uint8_t result; /* enum spf_result */
	char why[30];	/* for the log: what decided it */
	char key[];
};

void greyspf_settle(struct conn *c, const struct spf_outcome *o)
{
	struct greyspf *sp = c->spf;
	char domain[GREYKEY_MAX - 4]; /* "spf:" and it fit a key */

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
	    greykey_sender_domain(c->mail, domain, sizeof(domain)) == 0) {
		size_t kl = strlen(domain) + 5;
		struct greyspf *grown = realloc(sp, sizeof(*sp) + kl);

		if (grown != NULL) {
			c->spf = sp = grown;
			snprintf(sp->key, kl, "spf:%s", domain);
		}
	}
}

void greyspf_free(struct conn *c)
{
	if (c->spf == NULL)
		return;
	spf_cancel(c->spf->req);
	free(c->spf);
	c->spf = NULL;
}

int greyspf_start(struct conn *c, struct dns *dns,
		  void (*cb)(const struct spf_outcome *o, void *arg))
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->client.ss;
	char domain[GREYKEY_MAX - 4], sender[GREYKEY_MAX], helo[GREYKEY_MAX];
	const char *s;
	size_t n;

	greyspf_free(c);
	if (greykey_sender_domain(c->mail, domain, sizeof(domain)) < 0 ||
	    (c->spf = calloc(1, sizeof(*c->spf) + 1)) == NULL)
		return -1;
	n = greykey_angle(c->mail, &s);
	snprintf(sender, sizeof(sender), "%.*s", (int)n, s);
	n = greykey_helo(c->helo, &s);
	snprintf(helo, sizeof(helo), "%.*s", (int)n, s);
	/* Each DNS answer may take dns_timeout: the whole walk gets two. */
	c->spf->req = spf_check(c->mxg->base, dns, sa, domain, sender, helo,
				2 * 1000 * c->cfg->dns_timeout, cb, c);
	return c->spf->req != NULL ? 0 : -1;
}

const char *greyspf_key(const struct conn *c)
{
	return c->spf != NULL && c->spf->key[0] != '\0' ? c->spf->key : NULL;
}

int greyspf_describe(const struct conn *c, char *out, size_t outsz)
{
	int keyed;

	if (c->spf == NULL || !c->spf->done)
		return -1;
	keyed = c->spf->key[0] != '\0';
	snprintf(out, outsz, "%s%s%s", spf_result_name((enum spf_result)c->spf->result),
		 keyed ? "" : ":", keyed ? "" : c->spf->why);
	return 0;
}
