/*
 * store_kind.c - what the store holds and where it lives (store_kind.h):
 * the names of the record kinds, the checks on keys and records that every
 * backend and store.c apply to what they read back, and the parsing of
 * the store parameter. Plain libc: mxguardctl links this file alone, not
 * the backends.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_kind.h"

static const char *const store_kinds[STORE_NKINDS] = {"tarpit", "grey", "awl", "white", "block"};

const char *store_kind_name(enum store_kind kind)
{
	return kind < STORE_NKINDS ? store_kinds[kind] : "?";
}

int store_kind_parse(const char *name)
{
	for (int i = 0; i < STORE_NKINDS; i++)
		if (strcmp(name, store_kinds[i]) == 0)
			return i;
	return -1;
}

/* Keys end up in control socket lines and Redis key names: printable only. */
int store_kind_key_valid(const char *key)
{
	size_t len = strnlen(key, STORE_KEY_MAX + 1);

	if (len == 0 || len > STORE_KEY_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return 0;
	return 1;
}

int store_kind_rec_valid(const struct store_rec *rec)
{
	/* Times are unix seconds after 1970 and before the year 10000. */
	const int64_t tmax = INT64_C(253402300800);

	return rec->first >= 0 && rec->first < tmax && rec->last >= 0 && rec->last < tmax &&
	       rec->expires > 0;
}

void store_kind_spec_free(struct store_spec *sp)
{
	free(sp->host);
	free(sp->path);
	free(sp->user);
	free(sp->pass);
	sp->host = sp->path = sp->user = sp->pass = NULL;
}

/*
 * spec_redis - redis://[[user]:password@]host[:port][/db],
 * redis:///path/to/socket[?db=N] or unix:/path/to/socket[?db=N].
 */
static int spec_redis(struct store_spec *r, const char *spec, char *err, size_t errsz)
{
	const char *p, *q, *at, *end;
	char *dbs = NULL, *e;
	long v;

	r->port = 6379;
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "redis:///", 9) == 0) {
		p = spec[0] == 'u' ? spec + 5 : spec + 8;
		q = strchr(p, '?');
		r->path = q ? strndup(p, (size_t)(q - p)) : strdup(p);
		if (q != NULL) {
			if (strncmp(q, "?db=", 4) != 0)
				goto bad;
			dbs = strdup(q + 4);
		}
		if (r->path == NULL || r->path[0] != '/' || strlen(r->path) >= 108)
			goto bad;
		snprintf(r->where, sizeof(r->where), "%s", r->path);
	} else {
		p = spec + 8;
		end = p + strcspn(p, "/");
		at = NULL;
		for (q = p; q < end; q++)
			if (*q == '@')
				at = q;
		if (at != NULL) {
			const char *colon = memchr(p, ':', (size_t)(at - p));

			if (colon == NULL)
				goto bad;
			if (colon > p)
				r->user = strndup(p, (size_t)(colon - p));
			r->pass = strndup(colon + 1, (size_t)(at - colon - 1));
			p = at + 1;
		}
		if (*p == '[') {
			if ((q = memchr(p, ']', (size_t)(end - p))) == NULL)
				goto bad;
			r->host = strndup(p + 1, (size_t)(q - p - 1));
			q++;
		} else {
			q = memchr(p, ':', (size_t)(end - p));
			if (q == NULL)
				q = end;
			r->host = strndup(p, (size_t)(q - p));
		}
		if (r->host == NULL || r->host[0] == '\0')
			goto bad;
		if (q < end) {
			if (*q != ':')
				goto bad;
			errno = 0;
			v = strtol(q + 1, &e, 10);
			if (e != end || e == q + 1 || v < 1 || v > 65535)
				goto bad;
			r->port = (int)v;
		}
		if (*end == '/' && end[1] != '\0')
			dbs = strdup(end + 1);
		snprintf(r->where, sizeof(r->where), "%s%s%s:%d", strchr(r->host, ':') ? "[" : "",
			 r->host, strchr(r->host, ':') ? "]" : "", r->port);
	}
	if (dbs != NULL) {
		v = strtol(dbs, &e, 10);
		if (*e != '\0' || e == dbs || v < 0 || v > 1000000)
			goto bad;
		r->db = (int)v;
		free(dbs);
	}
	return 0;
bad:
	free(dbs);
	snprintf(err, errsz,
		 "store: bad redis address '%.100s' (redis://[:password@]host[:port][/db], "
		 "redis:///socket[?db=N] or unix:/socket[?db=N])",
		 spec);
	return -1;
}

int store_kind_spec_parse(const char *spec, struct store_spec *sp, char *err, size_t errsz)
{
	memset(sp, 0, sizeof(*sp));
	if (spec == NULL || spec[0] == '\0' || strcmp(spec, "lmdb") == 0) {
		sp->backend = STORE_LMDB;
		return 0;
	}
	if (strncmp(spec, "redis://", 8) == 0 || strncmp(spec, "unix:", 5) == 0) {
		sp->backend = STORE_REDIS;
		if (spec_redis(sp, spec, err, errsz) == 0)
			return 0;
		store_kind_spec_free(sp);
		return -1;
	}
	snprintf(err, errsz, "store: unknown store '%.100s' (lmdb, redis://... or unix:...)", spec);
	return -1;
}
