/*
 * shield_net.h - escalation from addresses to their network: when
 * netblock_threshold addresses of one network (prefix_v4 / prefix_v6) were
 * blocked within block_memory, the network is blocked too, unless it holds
 * a source mxguard must keep serving.
 *
 * This module decides; the shield applies (its block table, the store,
 * the peers, nftables, the notice) through the hook it gives netblk_new.
 * The decision may wait for the store (the AWL lookups), so the hook runs
 * either inside netblk_offend or later from the event loop.
 */
#ifndef MXG_SHIELD_NET_H
#define MXG_SHIELD_NET_H

#include <stdint.h>

#include "netaddr.h"
#include "netblock.h"

struct mxg;
struct cidr;
struct detect;
struct netblk;

/*
 * The hook: make the block of net/plen (plen counted within the family),
 * caused by the n addresses addrs (most recent last).
 */
typedef void (*netblk_apply_fn)(void *arg, const struct ipkey *net, int plen,
				const struct ipkey *addrs, int n);

/* netblk_new - NULL: out of memory. mxg's store and cfg are read at each decision. */
struct netblk *netblk_new(struct mxg *mxg, netblk_apply_fn apply, void *arg);

/*
 * netblk_plen - the prefix length of a network block for key's family
 * (cfg's prefix_v4 or prefix_v6, fixed at start).
 */
int netblk_plen(const struct mxg *mxg, const struct ipkey *key);

/*
 * netblk_offend - addr was blocked at now. Counts it toward its network;
 * at netblock_threshold addresses within block_memory, checks the safety
 * rules: no entry of allow (allow_clients), of the operator's whitelist
 * (the store's white entries), no source in good standing with det, and
 * no AWL network (the store's awl records of its /24s or /64s) inside the
 * network. When all hold, calls the hook (now, or once the store answered).
 * blocked: the network is blocked already (then only counted).
 */
void netblk_offend(struct netblk *nb, const struct cidr *allow, const struct detect *det,
		   const struct ipkey *addr, int blocked, int64_t now);

/* netblk_pending - decisions waiting for the store (status). */
int netblk_pending(const struct netblk *nb);

/* netblk_free - cancel what waits for the store, free (NULL is fine), set *nbp to NULL. */
void netblk_free(struct netblk **nbp);

#endif
