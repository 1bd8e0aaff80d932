/*
 * netblock.h - network blocks, the parts that need only libc: the text of
 * a block's key ("192.0.2.7" for an address, "192.0.2.0/24" for a
 * network) and the offence tracker, which remembers per network the
 * addresses blocked there recently, so that the shield can tell when a
 * network (not one host) is flooding.
 *
 * The tracker is a bounded table of NETBLOCK_WAYS-slot windows (see
 * srclimit.h for the scheme): it never grows; a new network takes the
 * slot of its window that saw an offence the longest time ago, so a flood
 * from many networks cannot grow it, it only forgets the oldest.
 */
#ifndef MXG_NETBLOCK_H
#define MXG_NETBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define NETBLOCK_ADDRS 16 /* addresses remembered per network (threshold at most this) */
#define NETBLOCK_WAYS 8
#define NETBLOCK_STRLEN (NETADDR_STRLEN + 5)

struct netblocks;

/*
 * netblock_parse - "a.b.c.d", "a.b.c.d/len", "v6" or "v6/len" into key and
 * *plen_r (counted within the family: 24 for a /24; 32 or 128 for a single
 * address). Host bits after len must be zero, as in cidr tables: a typo
 * must not silently block a whole network. Returns 0, or -1 with a
 * message in err.
 */
int netblock_parse(const char *text, struct ipkey *key, int *plen_r, char *err, size_t errsz);

/*
 * netblock_format - key as text into buf (NETBLOCK_STRLEN): the address
 * alone when plen is the family's full length (or 0), else "net/plen".
 */
char *netblock_format(const struct ipkey *key, int plen, char *buf, size_t bufsz);

/* netblock_full - the full prefix length of key's family: 32 or 128. */
int netblock_full(const struct ipkey *key);

/*
 * netblock_overlaps - do the networks a/alen and b/blen (family-relative
 * lengths) share an address? (One lies inside the other.)
 */
int netblock_overlaps(const struct ipkey *a, int alen, const struct ipkey *b, int blen);

/* netblock_new - a tracker of size networks (rounded up to a power of two). NULL: no memory. */
struct netblocks *netblock_new(uint32_t size);

/*
 * netblock_note - addr, in network net, was blocked at now. Returns how
 * many distinct addresses of net were blocked within the last memory
 * seconds (addr included), and copies up to max of them, most recent
 * last, into out (may be NULL when max is 0).
 */
int netblock_note(struct netblocks *t, const struct ipkey *net, const struct ipkey *addr,
		  int64_t now, uint32_t memory, struct ipkey *out, int max);

/* netblock_forget - start counting net's offences from zero (it was blocked). */
void netblock_forget(struct netblocks *t, const struct ipkey *net);

size_t netblock_memory(const struct netblocks *t);

void netblock_free(struct netblocks **tp);

#endif
