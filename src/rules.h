/*
 * rules.h - classifying an SMTP client as white, black, suspect or clean:
 * the built-in S25R rules on the verified reverse name, and client lists
 * in the formats mail administrators already keep (Postfix regexp and cidr
 * tables, postgrey client whitelists).
 */
#ifndef MXG_RULES_H
#define MXG_RULES_H

#include <stddef.h>
#include <sys/socket.h>

enum verdict { VERDICT_CLEAN, VERDICT_SUSPECT, VERDICT_WHITE, VERDICT_BLACK };

struct rules;

struct classification {
	enum verdict verdict;
	char reason[160];   /* "s25r:r1", "list:/etc/mxguard/white:3", "default" */
	char reply[256];    /* REJECT text (may be empty) */
	int reply_code;     /* 550 unless the list said 4xx/5xx */
	int warned;	    /* a WARN line matched on the way */
	char warn[160];	    /* reason of the first WARN match */
};

/*
 * rules_load - read the client lists named in specs[0..n), each
 * "regexp:PATH", "cidr:PATH" or "postgrey:PATH", in that order. Returns a
 * new rule set, or NULL with "PATH:LINE: message" in err.
 */
struct rules *rules_load(char *const *specs, int n, char *err, size_t errsz);

/*
 * rules_classify - classify a client. name is its verified reverse name, or
 * "unknown" (or NULL) when there is none; addr may be NULL when unknown.
 * Lists are searched in order, first match wins (WARN notes and goes on,
 * DUNNO leaves the current list); then S25R makes a client suspect; else
 * it is clean.
 */
void rules_classify(const struct rules *r, const char *name, const struct sockaddr *addr,
		    struct classification *out);

/*
 * rules_lists - the lists only (no S25R): returns 1 and fills out when a
 * list decided, 0 when none did (out->warned may still be set). For HELO
 * lists, name is the HELO name and addr NULL.
 */
int rules_lists(const struct rules *r, const char *name, const struct sockaddr *addr,
		struct classification *out);

/*
 * rules_white_add - add one entry in postgrey whitelist syntax (address,
 * CIDR, partial IPv4, domain; no regexps) to the operator's whitelist kept
 * in r, as list "store:white". Returns 0, or -1 with a message in err.
 * rules_white_del - remove it again (same text); returns 1 if it was there.
 */
int rules_white_add(struct rules *r, const char *entry, char *err, size_t errsz);
int rules_white_del(struct rules *r, const char *entry);

/*
 * rules_rcpt_load - recipient opt-out files in postgrey's
 * whitelist_recipients syntax ("domain", "user@", "user@domain",
 * "/regexp/"), plus the built-in postmaster@ and abuse@. Returns NULL with
 * "PATH:LINE: message" in err.
 */
struct rules *rules_rcpt_load(char *const *paths, int n, char *err, size_t errsz);

/* rules_rcpt_match - does rcpt opt out? Fills reason ("rcpt:PATH:LINE"). */
int rules_rcpt_match(const struct rules *r, const char *rcpt, char *reason, size_t reasonsz);

/*
 * rules_s25r - the number (0-6) of the first S25R rule that matches the
 * verified name (NULL or "unknown": rule 0), or -1 when none does.
 */
int rules_s25r(const struct rules *r, const char *name);

/* rules_verdict_name - "white", "black", "suspect", "clean". */
const char *rules_verdict_name(enum verdict v);

void rules_free(struct rules **rp);

#endif
