/*
 * greyrec.h - the taRgrey engine's record writes that outlive the
 * connection that caused them (auto-whitelist count, first sighting).
 */
#ifndef MXG_GREYREC_H
#define MXG_GREYREC_H

struct store;

/*
 * greyrec_awl_count - a message the backend accepted from the network key
 * counts towards its auto-whitelist record (at most once per interval
 * seconds; the record lives max_age seconds from the last count). The
 * update is asynchronous; key is copied. A store error bumps *errors, a
 * count *added: both must outlive the store's requests.
 */
void greyrec_awl_count(struct store *store, const char *key, int max_age, int interval,
		       unsigned long *errors, unsigned long *added);

/*
 * greyrec_first_sighting - write the triplet key's first sighting (now,
 * no retries, for window seconds) unless the triplet is known already (it
 * keeps its first sighting, and a passed one its pass). Asynchronous; key is
 * copied; a store error bumps *errors.
 */
void greyrec_first_sighting(struct store *store, const char *key, int window,
			    unsigned long *errors);

#endif
