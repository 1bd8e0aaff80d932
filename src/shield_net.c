/*
 * shield_net.c - escalation from blocked addresses to their network (see
 * shield_net.h).
 *
 * Safety rules decide by skipping, never by splitting: a network that
 * holds a source mxguard must keep serving (allow_clients, the operator's
 * whitelist, a source in good standing, an AWL network) is not blocked at
 * all, and its flooding addresses keep their own blocks. A split would
 * turn one kernel element into up to one per bit of the prefix for every
 * hole, and good standing changes all the time: a source that becomes
 * good after the split would be cut off by the block made before.
 *
 * The AWL lives in the store, which answers through the event loop: the
 * decision then waits (a bounded number of decisions at once; the next
 * offence in that network tries again when the bound is reached). A store
 * error counts as "in doubt", and in doubt mxguard does not block a
 * network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "config.h"
#include "detect.h"
#include "log.h"
#include "mxguard.h"
#include "shield_net.h"
#include "store.h"

#define NETBLK_TRACKED 1024 /* networks whose offences are remembered */
#define NETBLK_CHECKS 32    /* decisions waiting for the store at once */
#define NETBLK_AWL_KEYS 256 /* AWL records a decision may read (a /16 of /24s) */

struct netblk_check;

/* One AWL lookup of a decision: the callback's argument. */
struct netblk_look {
	struct netblk_check *c;
	struct store_req *req; /* NULL once answered */
	char key[NETBLOCK_STRLEN];
};

/* One decision waiting for the store's answers about the AWL. */
struct netblk_check {
	struct netblk *nb;
	struct netblk_check *next;
	struct ipkey net;
	int plen;
	struct ipkey addrs[NETBLOCK_ADDRS];
	int naddrs;
	int outstanding; /* lookups not answered yet */
	int veto;	 /* an AWL record (or a store error) was found */
	char why[NETBLOCK_STRLEN + 16];
	int nlook;
	struct netblk_look look[NETBLK_AWL_KEYS];
};

struct netblk {
	struct mxg *mxg;
	struct netblocks *track;
	netblk_apply_fn apply;
	void *arg;
	struct netblk_check *checks;
	int nchecks;
};

struct netblk *netblk_new(struct mxg *mxg, netblk_apply_fn apply, void *arg)
{
	struct netblk *nb = calloc(1, sizeof(*nb));

	if (nb == NULL)
		return NULL;
	nb->mxg = mxg;
	nb->apply = apply;
	nb->arg = arg;
	if ((nb->track = netblock_new(NETBLK_TRACKED)) == NULL) {
		free(nb);
		return NULL;
	}
	return nb;
}

int netblk_plen(const struct mxg *mxg, const struct ipkey *key)
{
	return netaddr_key_is_v4(key) ? mxg->cfg->prefix_v4 : mxg->cfg->prefix_v6;
}

/* The operator's white entries: one inside (or around) the network vetoes it. */
struct netblk_white {
	const struct ipkey *net;
	int plen;
	int hit;
	char entry[NETBLOCK_STRLEN];
};

static int netblk_white_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct netblk_white *w = arg;
	struct ipkey k;
	int plen;
	char err[128];

	(void)rec;
	/* Names (and anything else that is not an address) cannot lie in a network. */
	if (netblock_parse(key, &k, &plen, err, sizeof(err)) < 0 ||
	    !netblock_overlaps(&k, plen, w->net, w->plen))
		return 0;
	w->hit = 1;
	snprintf(w->entry, sizeof(w->entry), "%s", key);
	return 1;
}

/* netblk_check_done - every lookup answered: block, or say why not. */
static void netblk_check_done(struct netblk_check *c)
{
	struct netblk *nb = c->nb;
	struct netblk_check **pp;
	char net[NETBLOCK_STRLEN];

	for (pp = &nb->checks; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			nb->nchecks--;
			break;
		}
	netblock_format(&c->net, c->plen, net, sizeof(net));
	if (c->veto)
		log_info("netblock network=%s not blocked: %s", net, c->why);
	else
		nb->apply(nb->arg, &c->net, c->plen, c->addrs, c->naddrs);
	free(c);
}

static void netblk_awl_cb(int found, const struct store_rec *rec, void *arg)
{
	struct netblk_look *l = arg;
	struct netblk_check *c = l->c;

	(void)rec;
	l->req = NULL;
	if (found != 0 && !c->veto) {
		c->veto = 1;
		snprintf(c->why, sizeof(c->why), found > 0 ? "AWL network %s" : "store error (%s)",
			 l->key);
	}
	if (--c->outstanding == 0)
		netblk_check_done(c);
}

/*
 * netblk_awl - ask the store for the AWL records inside c's network: its
 * /24s (/64s), the AWL's unit, or the one around it when the network is
 * narrower. Returns 0 when the lookups are under way, 1 when there is
 * nothing to wait for (no store), -1 when they cannot be made.
 */
static int netblk_awl(struct netblk *nb, struct netblk_check *c)
{
	int v4 = netaddr_key_is_v4(&c->net), unit = v4 ? 24 : 64;
	int spread = c->plen < unit ? unit - c->plen : 0;

	if (nb->mxg->store == NULL)
		return 1;
	if (spread > 8)
		return -1; /* more than NETBLK_AWL_KEYS: the configuration check refuses it */
	c->nlook = 1 << spread;
	for (int i = 0; i < c->nlook; i++) {
		struct ipkey k = c->net;
		/* The i-th /unit inside the network: bits plen..unit-1 count i. */
		int bit0 = (v4 ? 96 : 0) + unit - 1; /* the last bit of the unit, in key bits */

		for (int b = 0; b < spread; b++) {
			int kb = bit0 - b;

			if (i & (1 << b))
				k.b[kb / 8] |= (uint8_t)(0x80 >> (kb % 8));
		}
		if (c->plen > unit)
			netaddr_key_prefix(&k, unit);
		c->look[i].c = c;
		netblock_format(&k, unit, c->look[i].key, sizeof(c->look[i].key));
	}
	c->outstanding = c->nlook;
	for (int i = 0; i < c->nlook; i++) {
		c->look[i].req = store_get(nb->mxg->store, STORE_AWL, c->look[i].key, netblk_awl_cb,
					   &c->look[i]);
		if (c->look[i].req == NULL) {
			/* Not queued: its callback will not run; count it as in doubt. */
			c->outstanding--;
			if (!c->veto) {
				c->veto = 1;
				snprintf(c->why, sizeof(c->why), "store error (%s)",
					 c->look[i].key);
			}
		}
	}
	return c->outstanding == 0 ? 1 : 0;
}

void netblk_offend(struct netblk *nb, const struct cidr *allow, const struct detect *det,
		   const struct ipkey *addr, int blocked, int64_t now)
{
	const struct cfg *cfg = nb->mxg->cfg;
	struct ipkey net = *addr, addrs[NETBLOCK_ADDRS];
	int plen = netblk_plen(nb->mxg, addr), n;
	struct netblk_white w = {&net, plen, 0, ""};
	struct netblk_check *c;
	char text[NETBLOCK_STRLEN];

	if (cfg->netblock_threshold == 0)
		return;
	netaddr_key_prefix(&net, plen);
	n = netblock_note(nb->track, &net, addr, now, (uint32_t)cfg->block_memory, addrs,
			  NETBLOCK_ADDRS);
	if (blocked || n < cfg->netblock_threshold)
		return;
	for (c = nb->checks; c != NULL; c = c->next)
		if (memcmp(&c->net, &net, sizeof(net)) == 0)
			return; /* decided already, waiting for the store */
	netblock_format(&net, plen, text, sizeof(text));
	/* The sure vetoes first: they need no store round trip. */
	if (cidr_overlaps(allow, &net, plen)) {
		log_info("netblock network=%s not blocked: allow_clients has an entry in it", text);
		netblock_forget(nb->track, &net);
		return;
	}
	if (detect_good_within(det, &net, plen)) {
		log_info("netblock network=%s not blocked: a source in it is in good standing",
			 text);
		netblock_forget(nb->track, &net);
		return;
	}
	if (nb->mxg->store != NULL &&
	    (store_list(nb->mxg->store, STORE_WHITE, netblk_white_cb, &w) < 0 || w.hit)) {
		log_info("netblock network=%s not blocked: %s%s", text,
			 w.hit ? "whitelist entry " : "store error reading the whitelist", w.entry);
		netblock_forget(nb->track, &net);
		return;
	}
	if (nb->nchecks >= NETBLK_CHECKS)
		return; /* the next offence in this network tries again */
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->nb = nb;
	c->net = net;
	c->plen = plen;
	c->naddrs = n < NETBLOCK_ADDRS ? n : NETBLOCK_ADDRS;
	memcpy(c->addrs, addrs, (size_t)c->naddrs * sizeof(addrs[0]));
	/* Counting starts again for this network whatever the store says. */
	netblock_forget(nb->track, &net);
	c->next = nb->checks;
	nb->checks = c;
	nb->nchecks++;
	switch (netblk_awl(nb, c)) {
	case -1:
		c->veto = 1;
		snprintf(c->why, sizeof(c->why), "wider than /%d: its AWL cannot be checked",
			 netaddr_key_is_v4(&net) ? 16 : 56);
		/* fall through */
	case 1:
		netblk_check_done(c); /* nothing to wait for */
		break;
	default:
		break;
	}
}

int netblk_pending(const struct netblk *nb)
{
	return nb != NULL ? nb->nchecks : 0;
}

void netblk_free(struct netblk **nbp)
{
	struct netblk *nb = *nbp;

	if (nb == NULL)
		return;
	while (nb->checks != NULL) {
		struct netblk_check *c = nb->checks;

		nb->checks = c->next;
		for (int i = 0; i < c->nlook; i++)
			if (c->look[i].req != NULL)
				store_cancel(c->look[i].req);
		free(c);
	}
	netblock_free(&nb->track);
	free(nb);
	*nbp = NULL;
}
