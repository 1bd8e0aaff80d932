/*
 * store.c - the store interface: names of record kinds. The embedded
 * backend is store_lmdb.c.
 */
#include <string.h>

#include "store.h"

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
