/*
 * shield_lists.h - what the configuration tells the shield and a reload
 * may change: the allow and block lists, the country filters, the refusal
 * replies (checked), and each listener's admission policy.
 */
#ifndef MXG_SHIELD_LISTS_H
#define MXG_SHIELD_LISTS_H

#include <stddef.h>

#include "config.h"

struct cidr;
struct geo_filter;

/* What can change with a reload: rebuilt as a whole, then swapped. */
struct shield_lists {
	struct cidr *allow, *deny;
	struct geo_filter *smtp_filter, *attack_filter;
	struct geo_filter *svc_filter[CFG_MAX_SERVICES];
};

/* The policy of one listener, from the current configuration. */
struct shield_policy {
	int shield, bogus;
	const struct geo_filter *filter; /* NULL: no country filter */
	int conn_src, conn_net, rate_src, rate_net;
};

/*
 * lists_build - everything reloadable, from cfg, into l: the lists read,
 * the filters parsed, smtp_refuse_temp and smtp_refuse_perm checked.
 * Returns 0, or -1 with a message in err and nothing kept in l. Free
 * with lists_free.
 */
int lists_build(const struct cfg *cfg, struct shield_lists *l, char *err, size_t errsz);

/* lists_free - what lists_build made (a zeroed l is fine too). */
void lists_free(struct shield_lists *l);

/* lists_need_geo - does any filter of l (built from cfg) need the country database? */
int lists_need_geo(const struct shield_lists *l, const struct cfg *cfg);

/*
 * lists_policy - the policy under cfg and l of a listener for service svc
 * (an index in cfg->services; -1: an SMTP listener). A service's limits
 * of -1 fall back to the SMTP ones.
 */
void lists_policy(const struct cfg *cfg, const struct shield_lists *l, int svc,
		  struct shield_policy *p);

#endif
