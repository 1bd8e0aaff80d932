/*
 * shield.c - admission at accept (lists, dynamic blocks, country filters,
 * per-source and per-prefix limits), the refusal, blocks and what follows
 * them (store, peers, nftables), reloads, status (see shield.h). The
 * lists and filters a reload rebuilds are made in shield_lists.c, the
 * attack state of the listener groups is kept in shield_attack.c, the
 * notices are written in shield_notice.c.
 *
 * The accept path is the hot path of a flood: every check below is a
 * table probe or two on a fixed-size table, in the order of what is
 * cheapest and most decisive. Allowed sources skip everything; blocked
 * ones are refused before any other work. Nothing is allocated for a
 * refused client and nothing is written for it but (at most) one line.
 *
 * Logging is bounded too: a flood must not turn into a log flood. Blocks
 * are logged one line each (they are rate-limited by nature: a source is
 * blocked once per block time); refusals are logged individually up to
 * SHIELD_LOG_PER_SEC per second and summarised once a minute otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "block.h"
#include "cidr.h"
#include "detect.h"
#include "fw.h"
#include "geo.h"
#include "srclimit.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"
#include "netblock.h"
#include "shield.h"
#include "shield_attack.h"
#include "shield_lists.h"
#include "shield_net.h"
#include "shield_notice.h"
#include "store.h"

#define SHIELD_LOG_PER_SEC 10
#define SHIELD_SUMMARY_SECS 60
#define SHIELD_LIMIT_ENTRIES (1u << 18) /* 8 MB per table */
#define SHIELD_BLOCK_ENTRIES (1u << 17)
#define SHIELD_NETBLOCK_ENTRIES (1u << 14)

/*
 * RFC 6890 special-purpose ranges, not globally reachable (and multicast).
 * Not ::ffff:0:0/96: every IPv4 source is keyed as a mapped address
 * (netaddr_key), so that entry matched them all, and the IPv6 listeners
 * are IPV6_V6ONLY: a mapped source is an IPv4 one, judged by the entries
 * above.
 */
static const char shield_bogus_list[] =
    "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 "
    "192.0.0.0/24 192.0.2.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 "
    "203.0.113.0/24 224.0.0.0/4 240.0.0.0/4 "
    "::/128 ::1/128 100::/64 2001:db8::/32 fc00::/7 fe80::/10 ff00::/8";

static const char *const shield_reason_names[REFUSE_NREASONS] = {
    "overload",	   "blocked",	  "static",	 "bogus",	"country",
    "conn_source", "conn_prefix", "rate_source", "rate_prefix", "attack",
};

struct shield {
	struct mxg *mxg;
	struct shield_lists l;
	struct shield_lists next; /* prepared by a reload, until commit or abort */
	int have_next;
	struct geo *next_geo;
	struct cidr *bogus;
	struct geo *geo; /* NULL unless a country filter needs it */
	struct detect *det;
	struct srclimit *src, *net;
	struct blocks *blocks;
	struct blocks *netblocks; /* networks (netblk_plen), keyed by the masked address */
	struct netblk *nb;	  /* escalation from addresses to networks */
	int restored;		  /* blocks taken from the store at start */
	struct attack *attack;	  /* groups and their attack state */
	struct event *tick;
	/* Refusal logging. */
	int64_t log_second;
	int log_count;
	uint64_t unlogged[REFUSE_NREASONS];
	int64_t summary_at;
	struct notice_burst burst; /* blocks toward a burst notice */
};

const char *shield_reason_name(int why)
{
	return why >= 0 && why < REFUSE_NREASONS ? shield_reason_names[why] : "?";
}

/* shield_now - the loop's cached clock: one call per accept, not two. */
static void shield_now(const struct mxg *mxg, int64_t *secs, uint64_t *ms)
{
	struct timeval tv;

	if (mxg->base == NULL || event_base_gettimeofday_cached(mxg->base, &tv) < 0)
		gettimeofday(&tv, NULL);
	*secs = tv.tv_sec;
	*ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* shield_key_sa - the socket address (port 0) of key. */
static void shield_key_sa(const struct ipkey *k, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (netaddr_key_is_v4(k)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, k->b + 12, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, k->b, 16);
	}
}

/*
 * shield_table - the table of blocks of prefix length plen for k's family:
 * the addresses' (the full length), the networks' (netblk_plen), or NULL
 * for any other length: a network block never covers more (or less) than
 * its configured prefix.
 */
static struct blocks *shield_table(const struct shield *sh, const struct ipkey *k, int plen)
{
	if (plen == netblock_full(k))
		return sh->blocks;
	return plen == netblk_plen(sh->mxg, k) ? sh->netblocks : NULL;
}

/*
 * shield_parse_key - an address or a network of the configured prefix
 * length ("192.0.2.0/24") into k, *plen_r and its table. Returns the
 * table, or NULL with err.
 */
static struct blocks *shield_parse_key(const struct shield *sh, const char *text, struct ipkey *k,
				       int *plen_r, char *err, size_t errsz)
{
	struct blocks *t;

	if (netblock_parse(text, k, plen_r, err, errsz) < 0)
		return NULL;
	if ((t = shield_table(sh, k, *plen_r)) == NULL)
		snprintf(err, errsz, "%.64s: a network block is a /%d (prefix_%s)", text,
			 netblk_plen(sh->mxg, k), netaddr_key_is_v4(k) ? "v4" : "v6");
	return t;
}

int shield_check(const struct cfg *cfg, char *err, size_t errsz)
{
	struct shield_lists l;

	if (lists_build(cfg, &l, err, errsz) < 0)
		return -1;
	lists_free(&l);
	return 0;
}

static void shield_detect_cfg(const struct cfg *cfg, struct detect_cfg *dc)
{
	memset(dc, 0, sizeof(*dc));
	dc->src_window_ms = (uint32_t)cfg->flood_window * 1000;
	dc->max_sources = 262144;
	dc->ddos_window_ms = (uint32_t)cfg->ddos_window * 1000;
	dc->ddos_threshold = (uint32_t)cfg->ddos_threshold;
	/* The release point must lie below the threshold, or there is no hysteresis. */
	dc->ddos_release =
	    (uint32_t)(cfg->ddos_release < cfg->ddos_threshold ? cfg->ddos_release
							       : cfg->ddos_threshold / 2 + 1);
	dc->quiet_ms = (uint32_t)cfg->ddos_quiet * 1000;
	dc->exact_max = 65536;
	dc->good_max = 262144;
	dc->prefix_v4 = cfg->prefix_v4;
	dc->prefix_v6 = cfg->prefix_v6;
}

/*
 * shield_persist - a block of k/plen (an address: its full length) into
 * the store, and to the other instances.
 */
static void shield_persist(struct shield *sh, const struct ipkey *k, int plen,
			   const struct block_info *bi)
{
	struct mxg *mxg = sh->mxg;
	struct store *st = mxg->store;
	struct store_rec rec;
	char ip[NETBLOCK_STRLEN], msg[200];

	netblock_format(k, plen, ip, sizeof(ip));
	memset(&rec, 0, sizeof(rec));
	rec.first = bi->first;
	rec.last = bi->until;
	rec.expires = bi->until + mxg->cfg->block_memory;
	rec.count = bi->level;
	if (st == NULL)
		return;
	if (store_put(st, STORE_BLOCK, ip, &rec) < 0)
		log_warn("block %s: cannot record it in the store", ip);
	snprintf(msg, sizeof(msg), "block %s %lld %u %lld %lld", ip, (long long)bi->until,
		 bi->level, (long long)bi->first, (long long)bi->last);
	store_publish(st, msg);
}

/* shield_fw - push the block of k/plen to nftables for its remaining time. */
static void shield_fw(struct shield *sh, const struct ipkey *k, int plen, int64_t until,
		      int64_t now)
{
	struct sockaddr_storage ss;

	if (sh->mxg->fw == NULL || until <= now)
		return;
	shield_key_sa(k, &ss);
	fw_block_net(sh->mxg->fw, (struct sockaddr *)&ss, plen, (uint32_t)(until - now));
}

/*
 * shield_net_apply - the netblk hook: block the network net/plen that the
 * addresses addrs flooded from, everywhere mxguard can.
 */
static void shield_net_apply(void *arg, const struct ipkey *net, int plen,
			     const struct ipkey *addrs, int n)
{
	struct shield *sh = arg;
	struct mxg *mxg = sh->mxg;
	const struct cfg *cfg = mxg->cfg;
	struct block_info bi;
	char text[NETBLOCK_STRLEN], list[NETBLOCK_ADDRS * NETADDR_STRLEN];
	size_t o = 0;
	int64_t now = time(NULL);
	uint32_t secs =
	    block_offend(sh->netblocks, net, now, (uint32_t)cfg->block_time,
			 (uint32_t)cfg->block_time_max, (uint32_t)cfg->block_memory, &bi);

	list[0] = '\0';
	for (int i = 0; i < n && o < sizeof(list); i++) {
		char ip[NETADDR_STRLEN];

		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "",
				      netaddr_key_format(&addrs[i], ip, sizeof(ip)));
	}
	mxg->stats.blocks++;
	mxg->stats.netblocks++;
	log_info("block network=%s seconds=%u level=%u addresses=%d sources=%s",
		 netblock_format(net, plen, text, sizeof(text)), secs, bi.level, n, list);
	shield_persist(sh, net, plen, &bi);
	shield_fw(sh, net, plen, bi.until, now);
	notice_netblock(mxg, net, plen, secs, bi.level, addrs, n);
}

/* shield_offend - key flooded: block it, everywhere mxguard can. */
static void shield_offend(struct shield *sh, const struct listener *lst, const struct ipkey *k,
			  uint32_t attempts, int64_t now)
{
	struct mxg *mxg = sh->mxg;
	const struct cfg *cfg = mxg->cfg;
	struct block_info bi;
	char ip[NETADDR_STRLEN];
	uint32_t secs =
	    block_offend(sh->blocks, k, now, (uint32_t)cfg->block_time,
			 (uint32_t)cfg->block_time_max, (uint32_t)cfg->block_memory, &bi);

	detect_source_forget(sh->det, k);
	mxg->stats.blocks++;
	log_info("block client=%s seconds=%u level=%u attempts=%u window=%ds listener=%s "
		 "service=%s",
		 netaddr_key_format(k, ip, sizeof(ip)), secs, bi.level, attempts, cfg->flood_window,
		 lst->name, lst->service);
	shield_persist(sh, k, netblock_full(k), &bi);
	shield_fw(sh, k, netblock_full(k), bi.until, now);
	notice_block(&sh->burst, mxg, k, secs, now);
	/* Enough addresses of one network: the network may follow. */
	if (sh->nb != NULL) {
		struct ipkey net = *k;

		netaddr_key_prefix(&net, netblk_plen(mxg, k));
		netblk_offend(sh->nb, sh->l.allow, sh->det, k,
			      block_until(sh->netblocks, &net, now) != 0, now);
	}
}

/* shield_cc - sa's country in cc, looked up the first time only (cc[0] == 0). */
static const char *shield_cc(const struct shield *sh, const struct sockaddr *sa, char cc[3])
{
	if (cc[0] == '\0')
		geo_lookup(sh->geo, sa, cc);
	return cc;
}

/*
 * shield_spoof - count k when it cannot be a real host of the Internet:
 * the network or broadcast address of its /24 (a flood seen in the wild
 * came partly from such sources), or a special-purpose range that this
 * listener does not refuse already. Only counted: such a source is not
 * refused for it (a /23 has hosts ending in .0). The range check costs a
 * few probes, so it runs only while the group is not normal, when the
 * attack notice reports it.
 */
static void shield_spoof(struct shield *sh, const struct shield_policy *p, const struct ipkey *k,
			 int gstate)
{
	struct mxg_stats *st = &sh->mxg->stats;

	if (netaddr_key_is_v4(k) && (k->b[15] == 0 || k->b[15] == 255))
		st->spoofed[MXG_SPOOF_NETBCAST]++;
	else if (gstate != DETECT_NORMAL && !p->bogus && cidr_match(sh->bogus, k))
		st->spoofed[MXG_SPOOF_SPECIAL]++;
}

/*
 * shield_limit - a limit under attack: divided by div, but a limit that is
 * set never falls to 0 (off); 0 stays off. shield_admit applies it and
 * shield_explain shows it: one rule for both.
 */
static int shield_limit(int v, int div)
{
	return v == 0 ? 0 : v / div > 0 ? v / div : 1;
}

int shield_admit(struct mxg *mxg, struct listener *lst, const struct sockaddr *sa)
{
	struct shield *sh = mxg->shield;
	const struct cfg *cfg = mxg->cfg;
	struct shield_policy p;
	struct ipkey k, net;
	int64_t now;
	uint64_t now_ms;
	int g = lst->group, attacked, div, gstate;
	char cc[3] = ""; /* the country, looked up once when a check needs it */

	/*
	 * Descriptors and memory first: this limit protects mxguard itself.
	 * max_connections is the host's: each of several workers takes its share.
	 */
	if (mxg->nconns >= cfg_worker_share(cfg, cfg->max_connections) ||
	    (mxg->conn_cap > 0 && mxg->nconns >= mxg->conn_cap))
		return REFUSE_OVERLOAD;
	if (sh == NULL)
		return -1;
	netaddr_key(sa, &k);
	if (cidr_match(sh->l.allow, &k))
		return -1;
	shield_now(mxg, &now, &now_ms);
	lists_policy(cfg, &sh->l, lst->svc, &p);
	/* Every attempt counts toward the group's distinct sources, refused or not. */
	gstate = detect_group(sh->det, g, &k, now_ms);
	if (gstate != DETECT_NORMAL && sh->geo != NULL)
		attack_country(sh->attack, g, shield_cc(sh, sa, cc));
	shield_spoof(sh, &p, &k, gstate);
	if (p.shield && block_until(sh->blocks, &k, now) != 0)
		return REFUSE_BLOCKED;
	net = k;
	netaddr_key_prefix(&net, netaddr_key_is_v4(&k) ? cfg->prefix_v4 : cfg->prefix_v6);
	/* A blocked network: but a source in good standing is let through. */
	if (p.shield && block_until(sh->netblocks, &net, now) != 0 &&
	    !detect_good_before(sh->det, -1, &k))
		return REFUSE_BLOCKED;
	if (cidr_match(sh->l.deny, &k))
		return REFUSE_STATIC;
	if (p.bogus && cidr_match(sh->bogus, &k))
		return REFUSE_BOGUS;
	if (p.shield) {
		uint32_t n = detect_source(sh->det, &k, now_ms);

		if (n >= (uint32_t)cfg->flood_threshold) {
			shield_offend(sh, lst, &k, n, now);
			return REFUSE_BLOCKED;
		}
	}
	attacked = p.shield && attack_under(sh->attack, sh->det, g, now);
	if (attacked && lst->svc >= 0 && cfg->attack_service_policy == ATTACK_SVC_KNOWN &&
	    !detect_good_before(sh->det, g, &k)) {
		/* attack_countries may keep a country open even to unknown sources. */
		if (sh->l.attack_filter == NULL || sh->geo == NULL ||
		    !geo_filter_allows(sh->l.attack_filter, shield_cc(sh, sa, cc)))
			return REFUSE_ATTACK;
	}
	if (p.filter != NULL && sh->geo != NULL &&
	    !geo_filter_allows(p.filter, shield_cc(sh, sa, cc)))
		return REFUSE_COUNTRY;
	/* Under attack every limit tightens (never below one). */
	div = attacked ? cfg->attack_limit_divisor : 1;
	if (p.conn_src && srclimit_conns(sh->src, &k) >= (uint32_t)shield_limit(p.conn_src, div))
		return REFUSE_CONN_SOURCE;
	if (p.conn_net && srclimit_conns(sh->net, &net) >= (uint32_t)shield_limit(p.conn_net, div))
		return REFUSE_CONN_PREFIX;
	if (p.rate_src &&
	    srclimit_attempt(sh->src, &k, (uint32_t)now) > (uint32_t)shield_limit(p.rate_src, div))
		return REFUSE_RATE_SOURCE;
	if (p.rate_net &&
	    srclimit_attempt(sh->net, &net, (uint32_t)now) > (uint32_t)shield_limit(p.rate_net, div))
		return REFUSE_RATE_PREFIX;
	return -1;
}

/* shield_log_refusal - one line per refusal up to a few per second. */
static void shield_log_refusal(struct shield *sh, const struct listener *lst,
			       const struct sockaddr *sa, int why)
{
	int64_t now;
	uint64_t ms;
	char ip[NETADDR_STRLEN];

	if (sh == NULL) {
		log_info("refuse client=%s listener=%s service=%s reason=%s",
			 netaddr_ip(sa, ip, sizeof(ip)), lst->name, lst->service,
			 shield_reason_name(why));
		return;
	}
	shield_now(sh->mxg, &now, &ms);
	if (now != sh->log_second) {
		sh->log_second = now;
		sh->log_count = 0;
	}
	if (sh->log_count++ < SHIELD_LOG_PER_SEC)
		log_info("refuse client=%s listener=%s service=%s reason=%s",
			 netaddr_ip(sa, ip, sizeof(ip)), lst->name, lst->service,
			 shield_reason_name(why));
	else
		sh->unlogged[why]++;
}

void shield_refuse(struct mxg *mxg, struct listener *lst, int fd, const struct sockaddr *sa,
		   int why)
{
	const struct cfg *cfg = mxg->cfg;

	mxg->stats.refused++;
	mxg->stats.refusals[why]++;
	lst->stats.refused++;
	shield_log_refusal(mxg->shield, lst, sa, why);
	if (lst->svc < 0) {
		char reply[512];
		int n;

		if (why == REFUSE_OVERLOAD)
			n = snprintf(reply, sizeof(reply),
				     "421 4.7.0 %s Error: too many connections\r\n",
				     cfg->myhostname);
		else
			n = snprintf(reply, sizeof(reply), "%s\r\n",
				     why == REFUSE_STATIC || why == REFUSE_BOGUS ||
					     why == REFUSE_COUNTRY
					 ? cfg->smtp_refuse_perm
					 : cfg->smtp_refuse_temp);
		/*
		 * One line, no waiting: the client has sent nothing yet, and
		 * under a flood a lingering refusal would hold the very
		 * descriptors the shield protects.
		 */
		if (n < 0)
			n = 0;
		/* snprintf returns the length it wanted: never send past reply. */
		if ((size_t)n >= sizeof(reply))
			n = (int)sizeof(reply) - 1;
		(void)send(fd, reply, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	} else if (cfg->services[lst->svc].refuse == REFUSE_RST) {
		struct linger lg = {1, 0};

		/* A reset frees the socket at once: no FIN_WAIT, no TIME_WAIT here. */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

/* shield_addr_keys - addr's key and its network (cfg's prefix_v4/prefix_v6). */
static void shield_addr_keys(const struct cfg *cfg, const struct sockaddr *addr, struct ipkey *k,
			     struct ipkey *net)
{
	netaddr_key(addr, k);
	*net = *k;
	netaddr_key_prefix(net, netaddr_key_is_v4(k) ? cfg->prefix_v4 : cfg->prefix_v6);
}

unsigned shield_conn_open(struct shield *sh, const struct cfg *cfg, const struct sockaddr *addr)
{
	struct ipkey k, net;
	int64_t now;
	uint64_t ms;
	unsigned lim = 0;

	if (sh == NULL)
		return 0;
	shield_addr_keys(cfg, addr, &k, &net);
	if (cidr_match(sh->l.allow, &k))
		return 0;
	shield_now(sh->mxg, &now, &ms);
	if (srclimit_open(sh->src, &k, (uint32_t)now) == 0)
		lim |= SHIELD_LIM_SRC;
	if (srclimit_open(sh->net, &net, (uint32_t)now) == 0)
		lim |= SHIELD_LIM_NET;
	return lim;
}

void shield_conn_close(struct shield *sh, const struct cfg *cfg, const struct sockaddr *addr,
		       unsigned lim, int good)
{
	struct ipkey k, net;
	int64_t now;
	uint64_t ms;

	if (sh == NULL)
		return;
	shield_addr_keys(cfg, addr, &k, &net);
	if (lim & SHIELD_LIM_SRC)
		srclimit_close(sh->src, &k);
	if (lim & SHIELD_LIM_NET)
		srclimit_close(sh->net, &net);
	/* Good standing: what the attack policy lets in while a group is attacked. */
	if (good) {
		shield_now(sh->mxg, &now, &ms);
		detect_good_mark(sh->det, &k, ms);
	}
}

int shield_smtp_suspect(const struct shield *sh, const struct cfg *cfg, const struct listener *lst,
			const struct sockaddr *addr)
{
	struct ipkey k;
	int64_t now;
	uint64_t ms;

	if (sh == NULL || lst->svc >= 0 || !cfg->smtp_shield ||
	    cfg->attack_smtp_policy != ATTACK_SMTP_SUSPECT)
		return 0;
	shield_now(sh->mxg, &now, &ms);
	if (!attack_under(sh->attack, sh->det, lst->group, now))
		return 0;
	netaddr_key(addr, &k);
	return !cidr_match(sh->l.allow, &k) && !detect_good_before(sh->det, lst->group, &k);
}

/* shield_summary - once a minute: the refusals that were not logged one by one. */
static void shield_summary(struct shield *sh, int64_t now)
{
	char line[512];
	size_t o = 0;
	uint64_t total = 0;

	if (now - sh->summary_at < SHIELD_SUMMARY_SECS)
		return;
	sh->summary_at = now;
	for (int i = 0; i < REFUSE_NREASONS; i++) {
		if (sh->unlogged[i] == 0)
			continue;
		total += sh->unlogged[i];
		o += (size_t)snprintf(line + o, sizeof(line) - o, " %s=%llu",
				      shield_reason_names[i], (unsigned long long)sh->unlogged[i]);
		sh->unlogged[i] = 0;
	}
	if (total > 0)
		log_info("refused %llu more connections not logged one by one:%s",
			 (unsigned long long)total, line);
}

static void shield_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct shield *sh = arg;
	int64_t now;
	uint64_t ms;

	shield_now(sh->mxg, &now, &ms);
	attack_tick(sh->attack, sh->det, sh->geo != NULL, now, ms);
	shield_summary(sh, now);
}

/* shield_what - "client" or "network": the word of a block's log lines. */
static const char *shield_what(const struct ipkey *k, int plen)
{
	return plen == netblock_full(k) ? "client" : "network";
}

/*
 * shield_peer_msg - a line another mxguard published through the shared
 * store. Hostile like the store: a block must name an address or a network
 * of the configured prefix, and end within block_time_max.
 */
static void shield_peer_msg(const char *msg, void *arg)
{
	struct shield *sh = arg;
	struct mxg *mxg = sh->mxg;
	char ip[NETADDR_STRLEN], a[CFG_NAME_MAX], b[32], err[128];
	long long until, first, last;
	unsigned level;
	struct ipkey k;
	struct blocks *t;
	int plen;
	int64_t now;
	uint64_t ms;

	shield_now(mxg, &now, &ms);
	if (sscanf(msg, "block %63s %lld %u %lld %lld", ip, &until, &level, &first, &last) == 5 &&
	    (t = shield_parse_key(sh, ip, &k, &plen, err, sizeof(err))) != NULL && level > 0 &&
	    until <= now + (long long)mxg->cfg->block_time_max + 60) {
		struct block_info bi = {first, until, last, level};

		if (block_until(t, &k, now) >= until)
			return; /* known already */
		block_set(t, &k, &bi);
		if (store_from_sibling(mxg->store))
			return; /* one block of this host: the worker that made it counted it */
		mxg->stats.blocks++;
		if (t == sh->netblocks)
			mxg->stats.netblocks++;
		log_info("block %s=%s seconds=%lld level=%u from=peer", shield_what(&k, plen), ip,
			 until - now, level);
		shield_fw(sh, &k, plen, until, now);
	} else if (sscanf(msg, "unblock %63s", ip) == 1 &&
		   (t = shield_parse_key(sh, ip, &k, &plen, err, sizeof(err))) != NULL) {
		struct sockaddr_storage ss;

		if (block_del(t, &k) && !store_from_sibling(mxg->store)) {
			mxg->stats.blocks_released++;
			log_info("unblock %s=%s from=peer", shield_what(&k, plen), ip);
		}
		if (store_from_sibling(mxg->store))
			return;
		shield_key_sa(&k, &ss);
		if (mxg->fw != NULL)
			fw_unblock_net(mxg->fw, (struct sockaddr *)&ss, plen);
	} else if (sscanf(msg, "attack %31s %31s", a, b) == 2 && !store_from_sibling(mxg->store)) {
		/* Another worker's word is not another host's: each adds up all their counts. */
		attack_peer(sh->attack, a, b, now);
	}
}

/* shield_restore_cb - a block kept in the store (start-up). */
static int shield_restore_cb(const char *key, const struct store_rec *rec, void *arg)
{
	struct shield *sh = arg;
	struct block_info bi = {rec->first, rec->last, rec->last, rec->count};
	struct ipkey k;
	struct blocks *t;
	int plen;
	int64_t now = time(NULL);
	char err[128];

	/*
	 * The store is writable by others (a shared Redis): a block must name an
	 * address or a network of the configured prefix, and last no longer
	 * than block_time_max from now, else one planted record would block an
	 * address (or a whole network) for good.
	 */
	if ((t = shield_parse_key(sh, key, &k, &plen, err, sizeof(err))) == NULL ||
	    rec->count == 0 || rec->last > now + (int64_t)sh->mxg->cfg->block_time_max + 60) {
		char esc[80];

		log_warn("blocks: bad record in the store skipped: key=\"%s\" level=%u until=%lld",
			 log_escape(esc, sizeof(esc), key, strlen(key)), (unsigned)rec->count,
			 (long long)rec->last);
		return 0;
	}
	block_set(t, &k, &bi);
	sh->restored++;
	shield_fw(sh, &k, plen, rec->last, now);
	return 0;
}

struct shield *shield_new(struct mxg *mxg, char *err, size_t errsz)
{
	const struct cfg *cfg = mxg->cfg;
	struct shield *sh = calloc(1, sizeof(*sh));
	struct detect_cfg dc;
	struct store *store = mxg->store;
	static const struct timeval second = {1, 0};
	char why[512];

	if (sh == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	sh->mxg = mxg;
	if (lists_build(cfg, &sh->l, err, errsz) < 0) {
		free(sh);
		return NULL;
	}
	if ((sh->attack = attack_new(mxg, err, errsz)) == NULL)
		goto fail;
	shield_detect_cfg(cfg, &dc);
	sh->bogus = cidr_new();
	sh->det = detect_new(&dc, attack_ngroups(sh->attack));
	sh->src = srclimit_new(SHIELD_LIMIT_ENTRIES);
	sh->net = srclimit_new(SHIELD_LIMIT_ENTRIES);
	sh->blocks = block_new(SHIELD_BLOCK_ENTRIES);
	sh->netblocks = block_new(SHIELD_NETBLOCK_ENTRIES);
	sh->nb = netblk_new(mxg, shield_net_apply, sh);
	if (sh->bogus == NULL || sh->det == NULL || sh->src == NULL || sh->net == NULL ||
	    sh->blocks == NULL || sh->netblocks == NULL || sh->nb == NULL ||
	    cidr_load(sh->bogus, shield_bogus_list, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "shield: out of memory");
		goto fail;
	}
	if (lists_need_geo(&sh->l, cfg)) {
		if ((sh->geo = geo_open(cfg->geo_database, why, sizeof(why))) == NULL) {
			snprintf(err, errsz, "geo_database (needed by a country filter): %s", why);
			goto fail;
		}
		log_info("countries: %zu ranges from %s", geo_count(sh->geo), cfg->geo_database);
	}
	if (store != NULL) {
		if (store_list(store, STORE_BLOCK, shield_restore_cb, sh) > 0 && sh->restored > 0)
			log_info("blocks: %d restored from the store, %zu in force (%zu networks)",
				 sh->restored,
				 block_active(sh->blocks, time(NULL)) +
				     block_active(sh->netblocks, time(NULL)),
				 block_active(sh->netblocks, time(NULL)));
		store_subscribe(store, shield_peer_msg, sh);
	}
	if (mxg->base != NULL) {
		sh->tick = event_new(mxg->base, -1, EV_PERSIST, shield_tick_cb, sh);
		if (sh->tick == NULL || event_add(sh->tick, &second) < 0) {
			snprintf(err, errsz, "shield: cannot start its timer");
			goto fail;
		}
	}
	sh->summary_at = time(NULL);
	return sh;
fail:
	shield_free(&sh);
	return NULL;
}

int shield_prepare(struct mxg *mxg, const struct cfg *fresh, char *err, size_t errsz)
{
	struct shield *sh = mxg->shield;

	if (sh == NULL)
		return shield_check(fresh, err, errsz);
	shield_abort(mxg);
	if (lists_build(fresh, &sh->next, err, errsz) < 0)
		return -1;
	sh->have_next = 1;
	/* The database is opened now, so that a damaged file fails the reload. */
	if (sh->geo == NULL && lists_need_geo(&sh->next, fresh)) {
		char why[512];

		if ((sh->next_geo = geo_open(fresh->geo_database, why, sizeof(why))) == NULL) {
			snprintf(err, errsz, "geo_database (needed by a country filter): %s", why);
			shield_abort(mxg);
			return -1;
		}
	}
	return 0;
}

void shield_abort(struct mxg *mxg)
{
	struct shield *sh = mxg->shield;

	if (sh == NULL)
		return;
	if (sh->have_next)
		lists_free(&sh->next);
	sh->have_next = 0;
	geo_free(&sh->next_geo);
}

void shield_commit(struct mxg *mxg, const struct cfg *fresh)
{
	struct shield *sh = mxg->shield;
	struct detect_cfg dc;

	if (sh == NULL || !sh->have_next)
		return;
	lists_free(&sh->l);
	sh->l = sh->next;
	sh->have_next = 0;
	if (sh->next_geo != NULL) {
		sh->geo = sh->next_geo;
		sh->next_geo = NULL;
		log_info("countries: %zu ranges from %s", geo_count(sh->geo), fresh->geo_database);
	}
	shield_detect_cfg(fresh, &dc);
	detect_configure(sh->det, &dc);
}

int shield_block(struct mxg *mxg, const char *addr, uint32_t seconds, char *err, size_t errsz)
{
	struct shield *sh = mxg->shield;
	struct ipkey k;
	struct block_info bi;
	struct blocks *t;
	int plen;
	int64_t now = time(NULL);
	char text[NETBLOCK_STRLEN];

	if (sh == NULL) {
		snprintf(err, errsz, "the shield is not running");
		return -1;
	}
	if ((t = shield_parse_key(sh, addr, &k, &plen, err, errsz)) == NULL)
		return -1;
	if (seconds == 0)
		seconds = (uint32_t)mxg->cfg->block_time;
	bi.first = bi.last = now;
	bi.until = now + seconds;
	bi.level = 1;
	block_set(t, &k, &bi);
	mxg->stats.blocks++;
	if (t == sh->netblocks)
		mxg->stats.netblocks++;
	log_info("block %s=%s seconds=%u level=1 from=operator", shield_what(&k, plen),
		 netblock_format(&k, plen, text, sizeof(text)), seconds);
	shield_persist(sh, &k, plen, &bi);
	shield_fw(sh, &k, plen, bi.until, now);
	return 0;
}

int shield_unblock(struct mxg *mxg, const char *addr, char *err, size_t errsz)
{
	struct shield *sh = mxg->shield;
	struct store *store = mxg->store;
	struct sockaddr_storage ss;
	struct ipkey k;
	struct blocks *t;
	char ip[NETBLOCK_STRLEN], msg[128];
	int had = 0, plen;

	if (sh == NULL) {
		snprintf(err, errsz, "the shield is not running");
		return -1;
	}
	/* Any prefix length: a record of an older prefix_v4 must still go. */
	if (netblock_parse(addr, &k, &plen, err, errsz) < 0)
		return -1;
	netblock_format(&k, plen, ip, sizeof(ip));
	if ((t = shield_table(sh, &k, plen)) != NULL)
		had = block_del(t, &k);
	if (store != NULL) {
		had |= store_del(store, STORE_BLOCK, ip) == 1;
		snprintf(msg, sizeof(msg), "unblock %s", ip);
		store_publish(store, msg);
	}
	shield_key_sa(&k, &ss);
	if (mxg->fw != NULL)
		fw_unblock_net(mxg->fw, (struct sockaddr *)&ss, plen);
	if (had) {
		mxg->stats.blocks_released++;
		log_info("unblock %s=%s from=operator", shield_what(&k, plen), ip);
	}
	return had;
}

/* shield_memory - bytes held by the shield's tables now. */
static size_t shield_memory(const struct shield *sh)
{
	return detect_memory(sh->det) + srclimit_memory(sh->src) + srclimit_memory(sh->net) +
	       block_memory(sh->blocks) + block_memory(sh->netblocks);
}

/* shield_count - o[key] = n (jansson's integers are signed 64-bit). */
static void shield_count(json_t *o, const char *key, unsigned long long n)
{
	json_object_set_new(o, key, json_integer((json_int_t)n));
}

void shield_status(struct mxg *mxg, json_t *obj)
{
	struct shield *sh = mxg->shield;
	int64_t now = time(NULL);
	json_t *o, *groups, *spoofed;

	if (sh == NULL) {
		json_object_set_new(obj, "shield", json_null());
		return;
	}
	o = json_object();
	groups = json_array();
	attack_status(sh->attack, sh->det, groups, now);
	json_object_set_new(o, "groups", groups);
	shield_count(o, "blocks_active",
		     block_active(sh->blocks, now) + block_active(sh->netblocks, now));
	shield_count(o, "network_blocks_active", block_active(sh->netblocks, now));
	json_object_set_new(o, "network_checks", json_integer(netblk_pending(sh->nb)));
	shield_count(o, "allow_entries", cidr_count(sh->l.allow));
	shield_count(o, "block_entries", cidr_count(sh->l.deny));
	shield_count(o, "geo_ranges", sh->geo ? geo_count(sh->geo) : 0);
	json_object_set_new(o, "firewall", json_boolean(mxg->fw != NULL));
	shield_count(o, "firewall_lost", mxg->fw ? fw_lost(mxg->fw) : 0);
	shield_count(o, "untracked", srclimit_untracked(sh->src) + srclimit_untracked(sh->net));
	shield_count(o, "memory", shield_memory(sh));
	spoofed = json_object();
	shield_count(spoofed, "network_broadcast", mxg->stats.spoofed[MXG_SPOOF_NETBCAST]);
	shield_count(spoofed, "special_purpose", mxg->stats.spoofed[MXG_SPOOF_SPECIAL]);
	json_object_set_new(o, "spoofed", spoofed);
	json_object_set_new(obj, "shield", o);
}

/* shield_explain_block - a block entry of key in table t into the view's fields. */
static void shield_explain_block(const struct blocks *t, const struct ipkey *k, int64_t *first,
				 int64_t *until, int64_t *last, unsigned *level)
{
	struct block_info bi;

	if (block_get(t, k, &bi)) {
		*first = bi.first;
		*until = bi.until;
		*last = bi.last;
		*level = bi.level;
	}
}

int shield_explain(struct mxg *mxg, const struct sockaddr *addr, struct shield_view *v)
{
	struct shield *sh = mxg->shield;
	const struct cfg *cfg = mxg->cfg;
	struct shield_policy p;
	struct ipkey k, net;
	uint64_t ms;
	int div;

	memset(v, 0, sizeof(*v));
	if (sh == NULL)
		return -1;
	shield_now(mxg, &v->now, &ms);
	shield_addr_keys(cfg, addr, &k, &net);
	lists_policy(cfg, &sh->l, -1, &p);
	if ((v->allowed = cidr_match(sh->l.allow, &k)) != 0)
		cidr_where(cfg->allow_clients, &k, v->allow_where, sizeof(v->allow_where));
	if ((v->denied = cidr_match(sh->l.deny, &k)) != 0)
		cidr_where(cfg->block_clients, &k, v->deny_where, sizeof(v->deny_where));
	v->bogus = cidr_match(sh->bogus, &k);
	v->bogus_refused = v->bogus && p.bogus;
	shield_explain_block(sh->blocks, &k, &v->block_first, &v->block_until, &v->block_last,
			     &v->block_level);
	netblock_format(&net, netblk_plen(mxg, &k), v->net, sizeof(v->net));
	shield_explain_block(sh->netblocks, &net, &v->net_first, &v->net_until, &v->net_last,
			     &v->net_level);
	v->good = detect_good_before(sh->det, -1, &k);
	v->geo = sh->geo != NULL;
	if (sh->geo != NULL)
		geo_lookup(sh->geo, addr, v->cc);
	v->country_filter = p.filter != NULL;
	v->country_allowed =
	    p.filter == NULL || (sh->geo != NULL && geo_filter_allows(p.filter, v->cc));
	/* The smtp group is group 0 (attack_new); limits as shield_admit divides them. */
	v->attacked = p.shield && attack_under(sh->attack, sh->det, 0, v->now);
	v->divisor = div = v->attacked ? cfg->attack_limit_divisor : 1;
	v->conn_src = shield_limit(p.conn_src, div);
	v->conn_net = shield_limit(p.conn_net, div);
	v->rate_src = shield_limit(p.rate_src, div);
	v->rate_net = shield_limit(p.rate_net, div);
	v->now_conn_src = srclimit_conns(sh->src, &k);
	v->now_conn_net = srclimit_conns(sh->net, &net);
	v->now_rate_src = srclimit_rate(sh->src, &k, (uint32_t)v->now);
	v->now_rate_net = srclimit_rate(sh->net, &net, (uint32_t)v->now);
	return 0;
}

void shield_metrics(const struct mxg *mxg, struct evbuffer *out)
{
	struct shield *sh = mxg->shield;
	int64_t now = time(NULL);

	if (sh == NULL)
		return;
	attack_metrics(sh->attack, sh->det, out, now);
	size_t addrs = block_active(sh->blocks, now), nets = block_active(sh->netblocks, now);

	/* mxguard_blocks_active stays the total: the shipped dashboard and alerts read it. */
	evbuffer_add_printf(
	    out,
	    "# HELP mxguard_blocks_active Dynamic blocks in force.\n"
	    "# TYPE mxguard_blocks_active gauge\nmxguard_blocks_active %zu\n"
	    "# HELP mxguard_blocks_active_by_kind Dynamic blocks in force, of addresses and of "
	    "networks.\n"
	    "# TYPE mxguard_blocks_active_by_kind gauge\n"
	    "mxguard_blocks_active_by_kind{kind=\"address\"} %zu\n"
	    "mxguard_blocks_active_by_kind{kind=\"network\"} %zu\n"
	    "# HELP mxguard_shield_memory_bytes Memory of the shield's tables.\n"
	    "# TYPE mxguard_shield_memory_bytes gauge\nmxguard_shield_memory_bytes %zu\n",
	    addrs + nets, addrs, nets, shield_memory(sh));
}

int shield_fw_ports(const struct cfg *cfg, uint16_t *ports, int max)
{
	int n = 0;

	for (int i = 0; i < cfg->smtp_listen_n && cfg->smtp_shield; i++)
		if (n < max)
			ports[n++] = (uint16_t)netaddr_port(
			    (const struct sockaddr *)&cfg->smtp_listen[i].ss);
	for (int s = 0; s < cfg->nservices; s++)
		for (int i = 0; i < cfg->services[s].nlisten && cfg->services[s].shield; i++)
			if (n < max)
				ports[n++] = (uint16_t)netaddr_port(
				    (const struct sockaddr *)&cfg->services[s].listen[i].ss);
	return n;
}

int shield_distinct(struct shield *sh, uint32_t *local, int max)
{
	int64_t now;
	uint64_t ms;
	int n = attack_ngroups(sh->attack);

	shield_now(sh->mxg, &now, &ms);
	for (int g = 0; g < n && g < max; g++)
		local[g] = detect_distinct(sh->det, g, ms);
	return n < max ? n : max;
}

void shield_distinct_others(struct shield *sh, int g, uint32_t n)
{
	detect_set_others(sh->det, g, n);
}

void shield_free(struct shield **sp)
{
	struct shield *sh = *sp;

	if (sh == NULL)
		return;
	if (sh->tick != NULL)
		event_free(sh->tick);
	shield_abort(sh->mxg);
	lists_free(&sh->l);
	cidr_free(&sh->bogus);
	geo_free(&sh->geo);
	detect_free(&sh->det);
	srclimit_free(&sh->src);
	srclimit_free(&sh->net);
	block_free(&sh->blocks);
	block_free(&sh->netblocks);
	netblk_free(&sh->nb);
	attack_free(&sh->attack);
	free(sh);
	*sp = NULL;
}
