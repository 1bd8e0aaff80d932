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
 * would be its network. Held clients keep the outcome through the hold,
 * and they are what mxguard has most of: the result and the reason are
 * small fields of the connection (c->spf_done, spf_result, spf_why, an
 * index into greyspf_whys), and this allocation exists only while the
 * check runs, after a pass that gave a key, or for a reason not in the
 * table. text is the key, "spf:<domain>" or "", then, when spf_why is 0,
 * the reason.
 */
struct greyspf {
	struct spf_req *req;
	char text[];
};

/*
 * The reasons spf.c gives (spf_finish, spf_frame_done), and "broad"; index
 * 0 is not one: the reason is in the allocation. A reason missing here
 * costs only an allocation.
 */
static const char *const greyspf_whys[] = {
    NULL,
    "all",
    "match",
    "no-match",
    "no-record",
    "bad-domain",
    "dns",
    "timeout",
    "void-lookups",
    "mx-limit",
    "bad-macro",
    "dns-term-limit",
    "depth",
    "two-records",
    "record-too-long",
    "syntax",
    "redirect to no record",
    "include of no record",
    "broad",
};

/* c->spf_result has 3 bits. */
_Static_assert(SPF_PERMERROR < 8, "enum spf_result fits in c->spf_result");

/* greyspf_why_index - why's index in greyspf_whys, 0 when it is not there. */
static uint8_t greyspf_why_index(const char *why)
{
	for (size_t i = 1; i < sizeof(greyspf_whys) / sizeof(greyspf_whys[0]); i++)
		if (strcmp(greyspf_whys[i], why) == 0)
			return (uint8_t)i;
	return 0;
}

void greyspf_settle(struct conn *c, const struct spf_outcome *o)
{
	struct greyspf *sp = c->spf, *grown;
	char domain[GREYKEY_MAX - 4]; /* "spf:" and it fit a key */
	char why[30];
	size_t kl = 0, wl;

	sp->req = NULL;
	c->spf_done = 1;
	c->spf_result = (uint8_t)o->result & 7;
	snprintf(why, sizeof(why), "%.29s", o->broad && o->result == SPF_PASS ? "broad" : o->why);
	c->spf_why = greyspf_why_index(why);
	wl = c->spf_why == 0 ? strlen(why) + 1 : 0;
	/*
	 * Only a pass by a named network: "+all" (or a /8) is something any
	 * bot's domain can publish, and its key would let strangers through.
	 */
	if (o->result == SPF_PASS && !o->broad &&
	    greykey_sender_domain(c->mail, domain, sizeof(domain)) == 0)
		kl = strlen(domain) + 4;
	if (kl == 0 && wl == 0) {
		/* The usual end for a bot: nothing left to keep apart. */
		free(sp);
		c->spf = NULL;
		return;
	}
	/* Out of memory: no key, and "?" for a reason not in the table. */
	if ((grown = realloc(sp, sizeof(*sp) + kl + 1 + wl)) == NULL) {
		free(sp);
		c->spf = NULL;
		return;
	}
	c->spf = sp = grown;
	if (kl > 0)
		snprintf(sp->text, kl + 1, "spf:%s", domain);
	else
		sp->text[0] = '\0';
	if (wl > 0)
		memcpy(sp->text + kl + 1, why, wl);
}

void greyspf_free(struct conn *c)
{
	c->spf_done = 0;
	c->spf_result = 0;
	c->spf_why = 0;
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
	return c->spf != NULL && c->spf_done && c->spf->text[0] != '\0' ? c->spf->text : NULL;
}

int greyspf_describe(const struct conn *c, char *out, size_t outsz)
{
	const char *why = "?";
	int keyed = greyspf_key(c) != NULL;

	if (!c->spf_done)
		return -1;
	if (c->spf_why != 0)
		why = greyspf_whys[c->spf_why];
	else if (c->spf != NULL)
		why = c->spf->text + strlen(c->spf->text) + 1;
	snprintf(out, outsz, "%s%s%s", spf_result_name((enum spf_result)c->spf_result),
		 keyed ? "" : ":", keyed ? "" : why);
	return 0;
}
