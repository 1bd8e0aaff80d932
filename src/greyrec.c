/*
 * greyrec.c - the engine's record writes that outlive a connection: the
 * auto-whitelist count of a delivered message and the first sighting of a
 * dropped client's triplet. The client may close before the store answers,
 * so each write carries its own copy of what it needs; the counters it
 * bumps belong to the engine, which outlives every store request (the
 * store is closed after the engine's last use).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "greykey.h"
#include "greyrec.h"
#include "log.h"
#include "store.h"

/* The AWL update outlives the connection (it may close before the store answers). */
struct awl_update {
	struct store *store;
	unsigned long *errors, *added;
	char key[GREYKEY_MAX];
	int max_age;
	int interval; /* postgrey: at most one counted success per hour */
};

static void greyrec_awl_cb(int found, const struct store_rec *rec, void *arg)
{
	struct awl_update *u = arg;
	struct store_rec r;
	time_t now = time(NULL);

	if (found < 0) {
		(*u->errors)++;
		free(u);
		return;
	}
	if (found) {
		r = *rec;
		if (now - r.last < u->interval) {
			free(u);
			return;
		}
		r.count++;
	} else {
		r.first = now;
		r.count = 1;
	}
	r.last = now;
	r.expires = now + u->max_age;
	if (store_put(u->store, STORE_AWL, u->key, &r) < 0)
		(*u->errors)++;
	(*u->added)++;
	log_info("awl add key=%s count=%u", u->key, r.count);
	free(u);
}

void greyrec_awl_count(struct store *store, const char *key, int max_age, int interval,
		       unsigned long *errors, unsigned long *added)
{
	struct awl_update *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return;
	u->store = store;
	u->errors = errors;
	u->added = added;
	u->max_age = max_age;
	u->interval = interval;
	snprintf(u->key, sizeof(u->key), "%s", key);
	if (store_get(store, STORE_AWL, u->key, greyrec_awl_cb, u) == NULL)
		free(u);
}

/* The first sighting of a triplet outlives the dropped connection. */
struct sighting {
	struct store *store;
	unsigned long *errors;
	char key[3 * GREYKEY_MAX];
	int window;
};

static void greyrec_sighting_cb(int found, const struct store_rec *rec, void *arg)
{
	struct sighting *u = arg;
	struct store_rec r;

	(void)rec;
	/*
	 * A triplet already known keeps its first sighting (and a passed one
	 * its pass): only a new one starts the clock here.
	 */
	if (found < 0)
		(*u->errors)++;
	if (found == 0) {
		r.first = r.last = time(NULL);
		r.count = 0;
		r.expires = r.first + u->window;
		if (store_put(u->store, STORE_GREY, u->key, &r) < 0)
			(*u->errors)++;
		else
			log_info("greylist first key=%s", u->key);
	}
	free(u);
}

void greyrec_first_sighting(struct store *store, const char *key, int window, unsigned long *errors)
{
	struct sighting *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return;
	u->store = store;
	u->errors = errors;
	u->window = window;
	snprintf(u->key, sizeof(u->key), "%s", key);
	if (store_get(store, STORE_GREY, u->key, greyrec_sighting_cb, u) == NULL) {
		(*errors)++;
		free(u);
	}
}
