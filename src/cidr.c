/*
 * cidr.c - address sets for the shield's allow and block lists.
 *
 * Every network is stored as its masked 16-byte key (IPv4 as
 * ::ffff:a.b.c.d, so a /24 is a /120) in one open-addressing table per
 * prefix length. A lookup masks the client's key once per length present
 * and probes that table: a list of ten thousand /32s and a few /16s costs
 * two probes, not a walk through the list. Lists of real sites use a
 * handful of distinct lengths.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "lines.h"

struct cidr_table {
	struct ipkey *keys;
	unsigned char *used;
	size_t size, n; /* size: power of two */
};

struct cidr {
	struct cidr_table t[129]; /* by prefix length in the 128-bit key space */
	unsigned char lens[129];  /* lengths present, longest first */
	int nlens;
	size_t count;
};

struct cidr *cidr_new(void)
{
	return calloc(1, sizeof(struct cidr));
}

static size_t cidr_slot(const struct cidr_table *t, const struct ipkey *k)
{
	return (size_t)netaddr_key_hash(k) & (t->size - 1);
}

static int cidr_table_has(const struct cidr_table *t, const struct ipkey *k)
{
	if (t->n == 0)
		return 0;
	for (size_t i = cidr_slot(t, k);; i = (i + 1) & (t->size - 1)) {
		if (!t->used[i])
			return 0;
		if (memcmp(&t->keys[i], k, sizeof(*k)) == 0)
			return 1;
	}
}

static int cidr_table_put(struct cidr_table *t, const struct ipkey *k);

/* cidr_grow - keep the table at most half full: probes stay short. */
static int cidr_grow(struct cidr_table *t)
{
	struct cidr_table bigger = {0};

	bigger.size = t->size ? t->size * 2 : 16;
	bigger.keys = calloc(bigger.size, sizeof(*bigger.keys));
	bigger.used = calloc(bigger.size, 1);
	if (bigger.keys == NULL || bigger.used == NULL) {
		free(bigger.keys);
		free(bigger.used);
		return -1;
	}
	for (size_t i = 0; i < t->size; i++)
		if (t->used[i])
			cidr_table_put(&bigger, &t->keys[i]);
	free(t->keys);
	free(t->used);
	*t = bigger;
	return 0;
}

static int cidr_table_put(struct cidr_table *t, const struct ipkey *k)
{
	size_t i;

	if ((t->n + 1) * 2 > t->size && cidr_grow(t) < 0)
		return -1;
	for (i = cidr_slot(t, k); t->used[i]; i = (i + 1) & (t->size - 1))
		if (memcmp(&t->keys[i], k, sizeof(*k)) == 0)
			return 0;
	t->keys[i] = *k;
	t->used[i] = 1;
	t->n++;
	return 1;
}

/*
 * cidr_parse - text ("a.b.c.d[/len]", "v6[/len]") into its key and its
 * prefix length in the 128-bit key space (an IPv4 /24 is a /120). Host
 * bits after len must be zero. Returns 0, or -1 with a message in err.
 */
static int cidr_parse(const char *text, struct ipkey *kp, int *len_r, char *err, size_t errsz)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	struct ipkey k, masked;
	int len, max;

	if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf)) {
		snprintf(err, errsz, "'%.60s': not an address or network", text);
		return -1;
	}
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(&k, 0, sizeof(k));
	if (inet_pton(AF_INET, buf, k.b + 12) == 1) {
		k.b[10] = k.b[11] = 0xff;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, k.b) == 1) {
		max = 128;
	} else {
		snprintf(err, errsz, "'%.60s': not an address or network", text);
		return -1;
	}
	len = max;
	if (slash != NULL) {
		char *end;
		long v;

		errno = 0;
		v = strtol(slash, &end, 10);
		if (errno || end == slash || *end || v < 0 || v > max) {
			snprintf(err, errsz, "'%.60s': bad prefix length", text);
			return -1;
		}
		len = (int)v;
	}
	masked = k;
	/*
	 * netaddr_key_prefix counts bits within the IPv4 address of a mapped
	 * key; an IPv6 text ("::ffff:1.2.3.0/120") counts over all 128.
	 */
	netaddr_key_prefix(&masked, max == 128 && netaddr_key_is_v4(&k) ? len - 96 : len);
	if (memcmp(&masked, &k, sizeof(k)) != 0) {
		snprintf(err, errsz, "'%.60s': host bits set after /%d", text, len);
		return -1;
	}
	*kp = k;
	*len_r = max == 32 ? len + 96 : len;
	return 0;
}

/* cidr_covers - does the network k/len (128-bit key space) hold key? */
static int cidr_covers(const struct ipkey *k, int len, const struct ipkey *key)
{
	struct ipkey m = *key;

	if (netaddr_key_is_v4(&m)) {
		if (len < 96)
			return 0; /* as cidr_match: no IPv6 network shorter than /96 */
		netaddr_key_prefix(&m, len - 96);
	} else {
		netaddr_key_prefix(&m, len);
	}
	return memcmp(&m, k, sizeof(m)) == 0;
}

int cidr_add(struct cidr *set, const char *text, char *err, size_t errsz)
{
	struct ipkey k;
	int len;

	if (cidr_parse(text, &k, &len, err, errsz) < 0)
		return -1;
	switch (cidr_table_put(&set->t[len], &k)) {
	case -1:
		snprintf(err, errsz, "out of memory");
		return -1;
	case 0:
		return 0; /* a duplicate */
	}
	set->count++;
	if (set->t[len].n == 1) {
		/* Keep lens sorted longest first: the most specific answers first. */
		int i = set->nlens++;

		while (i > 0 && set->lens[i - 1] < len) {
			set->lens[i] = set->lens[i - 1];
			i--;
		}
		set->lens[i] = (unsigned char)len;
	}
	return 0;
}

/* cidr_load_file - one network per line, first word; '#' comments. */
static int cidr_load_file(struct cidr *set, const char *path, char *err, size_t errsz)
{
	FILE *fp = fopen(path, "r");
	struct lines lr;
	char why[256], *line;
	int lineno, rc;

	if (fp == NULL) {
		snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	lines_init(&lr, fp, path, 0);
	while ((rc = lines_next(&lr, &line, &lineno, err, errsz)) > 0) {
		char *word = lines_trim(line);

		word[strcspn(word, " \t")] = '\0';
		if (*word == '\0')
			continue;
		if (cidr_add(set, word, why, sizeof(why)) < 0) {
			snprintf(err, errsz, "%s:%d: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	lines_done(&lr);
	fclose(fp);
	return rc < 0 ? -1 : 0;
}

int cidr_load(struct cidr *set, const char *spec, char *err, size_t errsz)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	int rc = 0;

	if (copy == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (strncmp(tok, "cidr:", 5) == 0)
			rc = cidr_load_file(set, tok + 5, err, errsz);
		else
			rc = cidr_add(set, tok, err, errsz);
	}
	free(copy);
	return rc;
}

/* cidr_where_file - the first line of the cidr file path whose network holds key. */
static int cidr_where_file(const char *path, const struct ipkey *key, char *out, size_t outsz)
{
	FILE *fp = fopen(path, "r");
	struct lines lr;
	char why[256], *line;
	int lineno, rc, found = 0;

	if (fp == NULL) {
		snprintf(out, outsz, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	lines_init(&lr, fp, path, 0);
	while (!found && (rc = lines_next(&lr, &line, &lineno, why, sizeof(why))) > 0) {
		char *word = lines_trim(line);
		struct ipkey k;
		int len;

		word[strcspn(word, " \t")] = '\0';
		if (*word != '\0' && cidr_parse(word, &k, &len, why, sizeof(why)) == 0 &&
		    cidr_covers(&k, len, key)) {
			snprintf(out, outsz, "%s:%d: %s", path, lineno, word);
			found = 1;
		}
	}
	lines_done(&lr);
	fclose(fp);
	return found;
}

int cidr_where(const char *spec, const struct ipkey *key, char *out, size_t outsz)
{
	char *copy = strdup(spec != NULL ? spec : ""), *tok, *save = NULL;
	int found = 0;

	if (copy == NULL) {
		snprintf(out, outsz, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ", \t", &save); tok && found == 0;
	     tok = strtok_r(NULL, ", \t", &save)) {
		struct ipkey k;
		int len;
		char why[128];

		if (strncmp(tok, "cidr:", 5) == 0)
			found = cidr_where_file(tok + 5, key, out, outsz);
		else if (cidr_parse(tok, &k, &len, why, sizeof(why)) == 0 &&
			 cidr_covers(&k, len, key))
			found = snprintf(out, outsz, "%s", tok) >= 0;
	}
	free(copy);
	return found;
}

int cidr_match(const struct cidr *set, const struct ipkey *key)
{
	for (int i = 0; i < set->nlens; i++) {
		int len = set->lens[i];
		struct ipkey k = *key;

		/* netaddr_key_prefix counts IPv4 bits within the address. */
		if (netaddr_key_is_v4(&k)) {
			if (len < 96)
				continue; /* an IPv6 network shorter than ::ffff:0:0/96 */
			netaddr_key_prefix(&k, len - 96);
		} else {
			netaddr_key_prefix(&k, len);
		}
		if (cidr_table_has(&set->t[len], &k))
			return 1;
	}
	return 0;
}

int cidr_overlaps(const struct cidr *set, const struct ipkey *net, int bits)
{
	int len = netaddr_key_is_v4(net) ? bits + 96 : bits; /* in the 128-bit key space */

	for (int i = 0; i < set->nlens; i++) {
		const struct cidr_table *t = &set->t[set->lens[i]];

		if (set->lens[i] <= len) {
			/* An entry as wide as net or wider: the one probe of cidr_match. */
			struct ipkey k = *net;

			if (netaddr_key_is_v4(&k) && set->lens[i] < 96)
				continue;
			netaddr_key_prefix(&k, netaddr_key_is_v4(&k) ? set->lens[i] - 96
								     : set->lens[i]);
			if (cidr_table_has(t, &k))
				return 1;
			continue;
		}
		/* Narrower entries: a walk of their table (rare decisions only). */
		for (size_t j = 0; j < t->size; j++)
			if (t->used[j] && netaddr_key_within(&t->keys[j], net, bits))
				return 1;
	}
	return 0;
}

size_t cidr_count(const struct cidr *set)
{
	return set->count;
}

void cidr_free(struct cidr **setp)
{
	struct cidr *set = *setp;

	if (set == NULL)
		return;
	for (int i = 0; i <= 128; i++) {
		free(set->t[i].keys);
		free(set->t[i].used);
	}
	free(set);
	*setp = NULL;
}
