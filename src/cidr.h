/*
 * cidr.h - sets of addresses and networks (IPv4 and IPv6) with a lookup
 * that costs one hash probe per distinct prefix length in the set: the
 * allow and block lists the shield checks on every accept.
 */
#ifndef MXG_CIDR_H
#define MXG_CIDR_H

#include <stddef.h>

#include "netaddr.h"

struct cidr;

/* cidr_new - an empty set. NULL: out of memory. */
struct cidr *cidr_new(void);

/*
 * cidr_add - add "a.b.c.d", "a.b.c.d/len", "v6", "v6/len". Host bits
 * after len must be zero (as in Postfix cidr tables: a typo should not
 * silently block a whole network). Returns 0, or -1 with a message in err.
 */
int cidr_add(struct cidr *set, const char *text, char *err, size_t errsz);

/*
 * cidr_load - add every entry of spec: white-space or comma separated
 * addresses and networks, and "cidr:PATH" files: one network per line,
 * '#' comments; a Postfix cidr table works as it is (words after the
 * network are ignored). Returns 0, or -1 with "PATH:LINE: message" (or
 * the bad entry) in err.
 */
int cidr_load(struct cidr *set, const char *spec, char *err, size_t errsz);

/* cidr_match - is key in one of the set's networks? */
int cidr_match(const struct cidr *set, const struct ipkey *key);

/*
 * cidr_where - where in spec (cidr_load's) the first entry holding key is
 * written: "PATH:LINE: NETWORK" for a line of a cidr: file, the entry
 * itself for one written in spec, into out. Reads the files again: for
 * mxguardctl explain, not per accept. Returns 1 (found), 0 (not there),
 * or -1 with the reason in out (a file that cannot be opened).
 */
int cidr_where(const char *spec, const struct ipkey *key, char *out, size_t outsz);

/*
 * cidr_overlaps - does any entry of the set share an address with net (a
 * key whose bits after bits, counted within its family, are clear)? Walks
 * the entries narrower than net: for rare decisions, not per accept.
 */
int cidr_overlaps(const struct cidr *set, const struct ipkey *net, int bits);

/* cidr_count - entries in the set. */
size_t cidr_count(const struct cidr *set);

void cidr_free(struct cidr **setp);

#endif
