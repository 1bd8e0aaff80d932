/*
 * shield_notice.c - what the shield tells the admin (see shield_notice.h):
 * the texts of the block burst and attack notices, handed to notify.c,
 * which logs them, mails them, runs the command and rate-limits them.
 *
 * Every text is built in fixed buffers with bounded snprintf calls; a
 * report with many long addresses is cut, never overflowed.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "detect.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"
#include "netaddr.h"
#include "notify.h"
#include "netblock.h"
#include "shield_notice.h"

void notice_block(struct notice_burst *b, struct mxg *mxg, const struct ipkey *k, uint32_t secs,
		  int64_t now)
{
	const struct cfg *cfg = mxg->cfg;

	if (now - b->start >= 60) {
		b->start = now;
		b->count = 0;
		b->noticed = 0;
		b->nrecent = 0;
	}
	b->count++;
	if (b->nrecent < NOTICE_RECENT) {
		b->recent[b->nrecent] = *k;
		b->recent_secs[b->nrecent++] = secs;
	}
	if (b->noticed || b->count < (uint32_t)cfg->block_burst || mxg->notify == NULL)
		return;
	b->noticed = 1;

	char subject[200], body[2048], sources[1024], count[32];
	size_t bo = 0, so = 0;

	snprintf(count, sizeof(count), "%u", b->count);
	snprintf(subject, sizeof(subject), "mxguard %s: %u sources blocked within a minute",
		 cfg->myhostname, b->count);
	bo += (size_t)snprintf(
	    body + bo, sizeof(body) - bo,
	    "mxguard on %s blocked %u sources within a minute (block_burst = %d).\n"
	    "Each made more than flood_threshold = %d connection attempts within "
	    "flood_window = %ds.\n\nFirst blocks of this minute:\n",
	    cfg->myhostname, b->count, cfg->block_burst, cfg->flood_threshold, cfg->flood_window);
	sources[0] = '\0';
	for (int i = 0; i < b->nrecent; i++) {
		char ip[NETADDR_STRLEN];

		netaddr_key_format(&b->recent[i], ip, sizeof(ip));
		if (bo < sizeof(body))
			bo += (size_t)snprintf(body + bo, sizeof(body) - bo, "  %s for %us\n", ip,
					       b->recent_secs[i]);
		if (so < sizeof(sources))
			so += (size_t)snprintf(sources + so, sizeof(sources) - so, "%s%s",
					       i ? " " : "", ip);
	}
	struct notify_kv kv[] = {{"BLOCKS", count}, {"TOP_SOURCES", sources}};

	notify_send(mxg->notify, NOTIFY_BLOCKS, subject, body, kv, 2);
}

void notice_netblock(struct mxg *mxg, const struct ipkey *net, int plen, uint32_t secs,
		     uint32_t level, const struct ipkey *addrs, int n)
{
	const struct cfg *cfg = mxg->cfg;
	char subject[200], body[2048], sources[1024], text[NETBLOCK_STRLEN], count[16];
	size_t bo = 0, so = 0;

	if (mxg->notify == NULL)
		return;
	netblock_format(net, plen, text, sizeof(text));
	snprintf(count, sizeof(count), "%d", n);
	snprintf(subject, sizeof(subject), "mxguard %s: network %s blocked", cfg->myhostname, text);
	bo += (size_t)snprintf(body + bo, sizeof(body) - bo,
			       "mxguard on %s blocked the network %s for %us (level %u):\n"
			       "%d of its addresses were blocked within block_memory = %ds "
			       "(netblock_threshold = %d):\n",
			       cfg->myhostname, text, secs, level, n, cfg->block_memory,
			       cfg->netblock_threshold);
	sources[0] = '\0';
	for (int i = 0; i < n; i++) {
		char ip[NETADDR_STRLEN];

		netaddr_key_format(&addrs[i], ip, sizeof(ip));
		if (bo < sizeof(body))
			bo += (size_t)snprintf(body + bo, sizeof(body) - bo, "  %s\n", ip);
		if (so < sizeof(sources))
			so += (size_t)snprintf(sources + so, sizeof(sources) - so, "%s%s",
					       i ? " " : "", ip);
	}
	struct notify_kv kv[] = {{"NETWORK", text}, {"BLOCKS", count}, {"TOP_SOURCES", sources}};

	notify_send(mxg->notify, NOTIFY_BLOCKS, subject, body, kv, 3);
}

/* notice_top_text - "a (n), b (m)" of the report's tops. */
static void notice_top_text(const struct detect_top *top, int n, char *buf, size_t bufsz)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && o < bufsz; i++) {
		char ip[NETADDR_STRLEN];

		o += (size_t)snprintf(buf + o, bufsz - o, "%s%s (%llu)", i ? ", " : "",
				      netaddr_key_format(&top[i].key, ip, sizeof(ip)),
				      (unsigned long long)top[i].count);
	}
}

void notice_attack(struct mxg *mxg, enum notify_kind kind, int g, const char *name,
		   const struct detect_report *r, const char *countries, uint64_t refused,
		   const uint64_t spoofed[2], uint64_t now_ms)
{
	const struct cfg *cfg = mxg->cfg;
	char subject[256], body[4096], srcs[1024], nets[1024], nsrc[32], natt[32], npeak[32],
	    ndur[32], nref[32], listeners[512], nspoof[64];
	size_t bo = 0, lo = 0;
	uint64_t dur_ms;

	notice_top_text(r->top_sources, r->ntop_sources, srcs, sizeof(srcs));
	notice_top_text(r->top_prefixes, r->ntop_prefixes, nets, sizeof(nets));
	listeners[0] = '\0';
	for (int i = 0; i < mxg->nlisteners; i++)
		if (mxg->listeners[i].group == g && lo < sizeof(listeners))
			lo += (size_t)snprintf(listeners + lo, sizeof(listeners) - lo, "%s%s %s",
					       lo ? ", " : "", mxg->listeners[i].service,
					       mxg->listeners[i].name);
	dur_ms = (r->attack_end_ms ? r->attack_end_ms : now_ms) - r->attack_start_ms;
	snprintf(nsrc, sizeof(nsrc), "%llu", (unsigned long long)r->sources);
	snprintf(natt, sizeof(natt), "%llu", (unsigned long long)r->attempts);
	snprintf(npeak, sizeof(npeak), "%u", r->peak_distinct);
	snprintf(ndur, sizeof(ndur), "%llu", (unsigned long long)(dur_ms / 1000));
	snprintf(nref, sizeof(nref), "%llu", (unsigned long long)refused);
	snprintf(nspoof, sizeof(nspoof), "%llu %llu",
		 (unsigned long long)spoofed[MXG_SPOOF_NETBCAST],
		 (unsigned long long)spoofed[MXG_SPOOF_SPECIAL]);
	if (kind == NOTIFY_ATTACK_START)
		snprintf(subject, sizeof(subject),
			 "mxguard %s: distributed flood on %s: %u sources within %ds",
			 cfg->myhostname, name, r->distinct, cfg->ddos_window);
	else
		snprintf(subject, sizeof(subject),
			 "mxguard %s: flood on %s ended after %llus: %llu sources, %llu attempts",
			 cfg->myhostname, name, (unsigned long long)(dur_ms / 1000),
			 (unsigned long long)r->sources, (unsigned long long)r->attempts);
	bo += (size_t)snprintf(
	    body + bo, sizeof(body) - bo,
	    "mxguard on %s: %s of a distributed connection flood.\n\n"
	    "Group:             %s (%s)\n"
	    "Duration:          %llu s\n"
	    "Distinct sources:  %llu (peak %u within %ds; threshold %d, release %d)\n"
	    "Attempts:          %llu\n"
	    "Refused by the attack policy: %llu\n"
	    "Spoofed sources:   %llu attempts from network or broadcast addresses of "
	    "their /24, %llu from special-purpose ranges (RFC 6890); counted, not refused\n"
	    "Top sources:       %s\n"
	    "Top prefixes:      %s\n"
	    "Top countries:     %s\n\n",
	    cfg->myhostname, kind == NOTIFY_ATTACK_START ? "start" : "end", name, listeners,
	    (unsigned long long)(dur_ms / 1000), (unsigned long long)r->sources, r->peak_distinct,
	    cfg->ddos_window, cfg->ddos_threshold, cfg->ddos_release,
	    (unsigned long long)r->attempts, (unsigned long long)refused,
	    (unsigned long long)spoofed[MXG_SPOOF_NETBCAST],
	    (unsigned long long)spoofed[MXG_SPOOF_SPECIAL], srcs, nets, countries);
	if (bo < sizeof(body) && kind == NOTIFY_ATTACK_START)
		bo += (size_t)snprintf(
		    body + bo, sizeof(body) - bo,
		    "Policy until the flood ends and %ds pass quietly:\n"
		    "- services: %s\n- SMTP: %s; limits divided by %d\n",
		    cfg->ddos_quiet,
		    cfg->attack_service_policy == ATTACK_SVC_KNOWN
			? "only sources known in good standing before the attack (and "
			  "attack_countries) are admitted"
			: "unchanged",
		    cfg->attack_smtp_policy == ATTACK_SMTP_SUSPECT
			? "clients not known before are treated as suspects"
			: "unchanged",
		    cfg->attack_limit_divisor);
	else if (bo < sizeof(body))
		snprintf(body + bo, sizeof(body) - bo, "The normal policy applies again.\n");

	struct notify_kv kv[] = {
	    {"GROUP", name},	    {"STATE", detect_state_name(r->state)},
	    {"SOURCES", nsrc},	    {"ATTEMPTS", natt},
	    {"PEAK", npeak},	    {"DURATION", ndur},
	    {"REFUSED", nref},	    {"TOP_SOURCES", srcs},
	    {"TOP_PREFIXES", nets}, {"TOP_COUNTRIES", countries},
	    {"SPOOFED", nspoof},
	};

	log_warn("attack group=%s state=%s sources=%s attempts=%s peak=%s duration=%ss refused=%s "
		 "top_sources=\"%s\" spoofed_netbcast=%llu spoofed_special=%llu",
		 name, detect_state_name(r->state), nsrc, natt, npeak, ndur, nref, srcs,
		 (unsigned long long)spoofed[MXG_SPOOF_NETBCAST],
		 (unsigned long long)spoofed[MXG_SPOOF_SPECIAL]);
	if (mxg->notify != NULL)
		notify_send(mxg->notify, kind, subject, body, kv,
			    (int)(sizeof(kv) / sizeof(kv[0])));
}
