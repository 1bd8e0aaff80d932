/*
 * netblock.c - block keys as text, and the per-network offence tracker
 * (see netblock.h).
 *
 * A network's entry keeps the last NETBLOCK_ADDRS distinct addresses
 * blocked there with the time of each: the count is of those still within
 * block_memory, so old offences fall away without a timer.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netblock.h"

struct netblock_ent {
	struct ipkey net;
	int64_t last; /* 0: free slot */
	int n;
	struct ipkey addr[NETBLOCK_ADDRS];
	int64_t when[NETBLOCK_ADDRS];
};

struct netblocks {
	struct netblock_ent *ent;
	uint32_t mask;
};

int netblock_full(const struct ipkey *key)
{
	return netaddr_key_is_v4(key) ? 32 : 128;
}

int netblock_parse(const char *text, struct ipkey *key, int *plen_r, char *err, size_t errsz)
{
	char buf[NETBLOCK_STRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	int full, plen;
	struct ipkey masked;

	memset(key, 0, sizeof(*key));
	if (alen == 0 || alen >= sizeof(buf)) {
		snprintf(err, errsz, "not an IP address or network: %.64s", text);
		return -1;
	}
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, key->b + 12) == 1) {
		key->b[10] = key->b[11] = 0xff;
	} else if (inet_pton(AF_INET6, buf, key->b) != 1) {
		snprintf(err, errsz, "not an IP address or network: %.64s", text);
		return -1;
	}
	full = netblock_full(key);
	plen = full;
	if (slash != NULL) {
		char *end;
		long v = strtol(slash + 1, &end, 10);

		/* Digits only: strtol would take " 24" or "+24". */
		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || v < 0 || v > full) {
			snprintf(err, errsz, "bad prefix length in %.64s (0 to %d)", text, full);
			return -1;
		}
		plen = (int)v;
	}
	masked = *key;
	netaddr_key_prefix(&masked, plen);
	if (memcmp(&masked, key, sizeof(masked)) != 0) {
		snprintf(err, errsz, "%.64s: bits set after the prefix length", text);
		return -1;
	}
	*plen_r = plen;
	return 0;
}

char *netblock_format(const struct ipkey *key, int plen, char *buf, size_t bufsz)
{
	char ip[NETADDR_STRLEN];

	netaddr_key_format(key, ip, sizeof(ip));
	if (plen <= 0 || plen >= netblock_full(key))
		snprintf(buf, bufsz, "%s", ip);
	else
		snprintf(buf, bufsz, "%s/%d", ip, plen);
	return buf;
}

int netblock_overlaps(const struct ipkey *a, int alen, const struct ipkey *b, int blen)
{
	struct ipkey x = *a, y = *b;
	int len = alen < blen ? alen : blen;

	if (netaddr_key_is_v4(a) != netaddr_key_is_v4(b))
		return 0;
	netaddr_key_prefix(&x, len);
	netaddr_key_prefix(&y, len);
	return memcmp(&x, &y, sizeof(x)) == 0;
}

struct netblocks *netblock_new(uint32_t size)
{
	struct netblocks *t = calloc(1, sizeof(*t));
	uint32_t n = NETBLOCK_WAYS;

	if (t == NULL)
		return NULL;
	while (n < size && n < (1u << 20))
		n <<= 1;
	t->mask = n - 1;
	t->ent = calloc((size_t)n + NETBLOCK_WAYS - 1, sizeof(*t->ent));
	if (t->ent == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

/* netblock_slot - net's entry, or a slot for it (the stalest of its window). */
static struct netblock_ent *netblock_slot(struct netblocks *t, const struct ipkey *net, int take)
{
	struct netblock_ent *w = &t->ent[netaddr_key_hash(net) & t->mask], *victim = &w[0];

	for (int i = 0; i < NETBLOCK_WAYS; i++) {
		if (w[i].last != 0 && memcmp(&w[i].net, net, sizeof(*net)) == 0)
			return &w[i];
		if (w[i].last < victim->last)
			victim = &w[i];
	}
	if (!take)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->net = *net;
	return victim;
}

int netblock_note(struct netblocks *t, const struct ipkey *net, const struct ipkey *addr,
		  int64_t now, uint32_t memory, struct ipkey *out, int max)
{
	struct netblock_ent *e = netblock_slot(t, net, 1);
	int i, j, live = 0;

	/* Drop the offences older than memory, and addr's own earlier one. */
	for (i = j = 0; i < e->n; i++) {
		if (e->when[i] + (int64_t)memory < now ||
		    memcmp(&e->addr[i], addr, sizeof(*addr)) == 0)
			continue;
		e->addr[j] = e->addr[i];
		e->when[j++] = e->when[i];
	}
	e->n = j;
	if (e->n == NETBLOCK_ADDRS) { /* full: the oldest gives way */
		memmove(e->addr, e->addr + 1, (NETBLOCK_ADDRS - 1) * sizeof(e->addr[0]));
		memmove(e->when, e->when + 1, (NETBLOCK_ADDRS - 1) * sizeof(e->when[0]));
		e->n--;
	}
	e->addr[e->n] = *addr;
	e->when[e->n++] = now;
	e->last = now > 0 ? now : 1;
	live = e->n;
	for (i = live > max ? live - max : 0, j = 0; i < live && out != NULL; i++)
		out[j++] = e->addr[i];
	return live;
}

void netblock_forget(struct netblocks *t, const struct ipkey *net)
{
	struct netblock_ent *e = netblock_slot(t, net, 0);

	if (e != NULL)
		e->n = 0;
}

size_t netblock_memory(const struct netblocks *t)
{
	return sizeof(*t) + ((size_t)t->mask + NETBLOCK_WAYS) * sizeof(struct netblock_ent);
}

void netblock_free(struct netblocks **tp)
{
	if (*tp == NULL)
		return;
	free((*tp)->ent);
	free(*tp);
	*tp = NULL;
}
