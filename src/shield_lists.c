/*
 * shield_lists.c - the reloadable part of the shield (see shield_lists.h):
 * built from a configuration as a whole, so that a reload either gets
 * everything or keeps what runs; the shield swaps the result in.
 *
 * The list files and the filters are operator input, read with the
 * bounded parsers of cidr.c and geo.c; their errors name the parameter.
 */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "config.h"
#include "geo.h"
#include "shield_lists.h"

void lists_free(struct shield_lists *l)
{
	cidr_free(&l->allow);
	cidr_free(&l->deny);
	geo_filter_free(&l->smtp_filter);
	geo_filter_free(&l->attack_filter);
	for (int i = 0; i < CFG_MAX_SERVICES; i++)
		geo_filter_free(&l->svc_filter[i]);
}

/* lists_filter - parse a country filter; empty text: none. */
static int lists_filter(const char *what, const char *text, struct geo_filter **out, char *err,
			size_t errsz)
{
	char why[256];

	*out = NULL;
	if (text == NULL || text[strspn(text, " \t,")] == '\0')
		return 0;
	if ((*out = geo_filter_parse(text, why, sizeof(why))) == NULL) {
		snprintf(err, errsz, "%s: %s", what, why);
		return -1;
	}
	return 0;
}

/* lists_reply_ok - an SMTP reply line the shield may send: "4NN text" / "5NN text". */
static int lists_reply_ok(const char *what, const char *reply, int perm_ok, char *err, size_t errsz)
{
	if (!(reply[0] == '4' || (perm_ok && reply[0] == '5')) || reply[1] < '0' ||
	    reply[1] > '9' || reply[2] < '0' || reply[2] > '9' || reply[3] != ' ' ||
	    strlen(reply) > 400) {
		snprintf(err, errsz, "%s: expected \"%sNN text\" of at most 400 characters", what,
			 perm_ok ? "4NN or 5" : "4");
		return -1;
	}
	return 0;
}

int lists_build(const struct cfg *cfg, struct shield_lists *l, char *err, size_t errsz)
{
	char why[512];

	memset(l, 0, sizeof(*l));
	if (lists_reply_ok("smtp_refuse_temp", cfg->smtp_refuse_temp, 0, err, errsz) < 0 ||
	    lists_reply_ok("smtp_refuse_perm", cfg->smtp_refuse_perm, 1, err, errsz) < 0)
		return -1;
	if ((l->allow = cidr_new()) == NULL || (l->deny = cidr_new()) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (cidr_load(l->allow, cfg->allow_clients, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "allow_clients: %s", why);
		goto fail;
	}
	if (cidr_load(l->deny, cfg->block_clients, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "block_clients: %s", why);
		goto fail;
	}
	if (lists_filter("smtp_countries", cfg->smtp_countries, &l->smtp_filter, err, errsz) < 0 ||
	    lists_filter("attack_countries", cfg->attack_countries, &l->attack_filter, err, errsz) <
		0)
		goto fail;
	for (int i = 0; i < cfg->nservices; i++) {
		char what[CFG_NAME_MAX + 32];

		snprintf(what, sizeof(what), "service_%s: countries", cfg->services[i].name);
		if (lists_filter(what, cfg->services[i].countries, &l->svc_filter[i], err, errsz) <
		    0)
			goto fail;
	}
	return 0;
fail:
	lists_free(l);
	return -1;
}

int lists_need_geo(const struct shield_lists *l, const struct cfg *cfg)
{
	if (l->smtp_filter != NULL || l->attack_filter != NULL)
		return 1;
	for (int i = 0; i < cfg->nservices; i++)
		if (l->svc_filter[i] != NULL)
			return 1;
	return 0;
}

void lists_policy(const struct cfg *cfg, const struct shield_lists *l, int svc,
		  struct shield_policy *p)
{
	if (svc < 0) {
		p->shield = cfg->smtp_shield;
		p->bogus = cfg->smtp_bogus_check;
		p->filter = l->smtp_filter;
		p->conn_src = cfg->conn_per_source;
		p->conn_net = cfg->conn_per_prefix;
		p->rate_src = cfg->rate_per_source;
		p->rate_net = cfg->rate_per_prefix;
		return;
	}
	const struct cfg_service *sv = &cfg->services[svc];

	p->shield = sv->shield;
	p->bogus = sv->bogus;
	p->filter = l->svc_filter[svc];
	p->conn_src = sv->conn_per_source >= 0 ? sv->conn_per_source : cfg->conn_per_source;
	p->conn_net = sv->conn_per_prefix >= 0 ? sv->conn_per_prefix : cfg->conn_per_prefix;
	p->rate_src = sv->rate_per_source >= 0 ? sv->rate_per_source : cfg->rate_per_source;
	p->rate_net = sv->rate_per_prefix >= 0 ? sv->rate_per_prefix : cfg->rate_per_prefix;
}
