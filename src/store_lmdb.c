/*
 * store_lmdb.c - the embedded store on LMDB (stub: being written).
 */
#include <stdio.h>

#include "store.h"

struct store *store_open(struct event_base *base, const char *state_dir, char *err,
			 size_t errsz)
{
	snprintf(err, errsz, "store: not implemented yet");
	return NULL;
}

struct store_req *store_get(struct store *s, enum store_kind kind, const char *key,
			    store_get_cb cb, void *arg)
{
	return NULL;
}

void store_cancel(struct store_req *req)
{
}

int store_put(struct store *s, enum store_kind kind, const char *key, const struct store_rec *rec)
{
	return -1;
}

int store_del(struct store *s, enum store_kind kind, const char *key)
{
	return -1;
}

int store_list(struct store *s, enum store_kind kind,
	       int (*fn)(const char *key, const struct store_rec *rec, void *arg), void *arg)
{
	return -1;
}

long store_count(struct store *s, enum store_kind kind)
{
	return -1;
}

void store_close(struct store **sp)
{
	*sp = NULL;
}
