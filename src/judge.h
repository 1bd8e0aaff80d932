/*
 * judge.h - the taRgrey engine's decision as a pure function: plain data in
 * (the client's address, verified name, HELO, recipient, list and DNSBL
 * results, store records, the configuration), a verdict with its reason
 * out. No sockets, no timers, no store: grey.c gathers the data and acts;
 * tests/unit/test_judge.c drives it from .in tables.
 */
#ifndef MXG_JUDGE_H
#define MXG_JUDGE_H

#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "rules.h"

struct cfg;
struct store_rec;

/* The rule sets the classification reads (the engine's). */
struct judge_lists {
	const struct rules *client; /* client_lists and the operator's whitelist */
	const struct rules *helo;   /* helo_lists */
	const struct rules *rcpt;   /* recipient_whitelist */
};

/* What is known of the client when it is decided. */
struct judge_facts {
	const struct sockaddr *client, *local;
	const char *name; /* verified reverse name; NULL: none */
	int dns_failed;	  /* the name lookup failed temporarily */
	const char *helo; /* HELO argument, helolen bytes, not terminated */
	size_t helolen;
	const char *rcpt; /* the RCPT address, rcptlen bytes; NULL at STARTTLS */
	size_t rcptlen;
	int attack_suspect; /* the listener group is under attack, the client unknown */
	int bl_done;	    /* DNSBL/NS lookups ran: the four below are valid */
	int bl_score;
	const char *bl_hits;
	const struct classification *ns_cl; /* an NS name's list decision, or NULL */
};

enum judge_action {
	JUDGE_PASS,	/* hand off now */
	JUDGE_REJECT,	/* reply (the list's code), the dialogue goes on */
	JUDGE_TEMPFAIL, /* reply 4xx, the dialogue goes on */
	JUDGE_SUSPECT	/* a suspect: on to the auto-whitelist and the chain */
};

struct judge_verdict {
	int classified; /* cl holds a verdict (not so for a DNS failure's pass/defer) */
	struct classification cl;
	enum judge_action action;
	const char *what; /* the log line's label: "verdict", "warn: verdict", ... */
	char extra[512];  /* the log line's fields */
	const char *note; /* a second log line in mode warn, or NULL */
	char reply[400];  /* CRLF-terminated, for REJECT and TEMPFAIL */
};

/*
 * judge_classify - in order: a DNS failure's dns_failure_action; the
 * recipient opts out; the client lists (and the operator's whitelist); a
 * HELO that claims to be this server, or that helo_lists decide on; an NS
 * name's list; the DNSBL/DNSWL score; S25R on the verified name; the attack
 * policy. Mode warn passes everyone, with a note of what it would do.
 * myhostname and the thresholds come from cfg. Fills v.
 */
void judge_classify(const struct judge_lists *l, const struct judge_facts *f, const struct cfg *cfg,
		    struct judge_verdict *v);

/* judge_awl - does an auto-whitelist record (found) let a suspect pass? 1 or 0. */
int judge_awl(const struct cfg *cfg, int found, const struct store_rec *rec);

/* What a greylist triplet's lookup gives (judge_greylist). */
enum judge_grey { JUDGE_GREY_NEW, JUDGE_GREY_EARLY, JUDGE_GREY_PASS };

/*
 * judge_greylist - the triplet's record (found, rec) at now: new (first
 * sighting), early (too soon, or too few retries), or pass (greylist_delay
 * since the first sighting and greylist_retries comebacks). *out is the
 * record to write back (retry window, or greylist_max_age after a pass).
 */
enum judge_grey judge_greylist(const struct cfg *cfg, int found, const struct store_rec *rec,
			       time_t now, struct store_rec *out);

#endif
