/*
 * greyspf.h - the SPF step of the taRgrey engine (greylist_spf): for a
 * suspect at RCPT whose key would be its network, the sender domain's SPF
 * record is checked for the client; a pass by a named network keys its
 * tarpit record and triplet by "spf:<domain>" instead.
 */
#ifndef MXG_GREYSPF_H
#define MXG_GREYSPF_H

#include <stddef.h>

struct conn;
struct dns;
struct spf_outcome;

/*
 * greyspf_start - check the SPF record of the domain of c->mail for c's
 * address (c->spf holds the step). Returns 0 when the check runs: cb(o, c)
 * is called from the event loop, and must call greyspf_settle(c, o) first.
 * Returns -1 when there is nothing to check (null sender, no domain) or the
 * check cannot start: cb is not called, and the key stays the network.
 */
int greyspf_start(struct conn *c, struct dns *dns,
		  void (*cb)(const struct spf_outcome *o, void *arg));

/*
 * greyspf_settle - record the outcome o in c->spf: the result for the log
 * and, for a pass by a named network, the key "spf:<domain>". c->spf may
 * move (it grows to hold the key).
 */
void greyspf_settle(struct conn *c, const struct spf_outcome *o);

/* greyspf_key - "spf:<domain>" after a pass, else NULL. */
const char *greyspf_key(const struct conn *c);

/*
 * greyspf_describe - "RESULT" when the step gave c a key, else
 * "RESULT:why", into out; 0, or -1 when the step did not run to its end.
 */
int greyspf_describe(const struct conn *c, char *out, size_t outsz);

/* greyspf_free - cancel and free c's SPF step, if any; may be called twice. */
void greyspf_free(struct conn *c);

#endif
