/*
 * grey.h - the taRgrey engine: who is slowed down, who is greylisted, who
 * passes. Classification starts when a client connects (its verified
 * reverse name is looked up while it reads the greeting); the decision is
 * made at the hand-off point of the dialogue (first RCPT, or STARTTLS).
 */
#ifndef MXG_GREY_H
#define MXG_GREY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#include "netaddr.h"

struct mxg;
struct conn;
struct cfg;
struct engine;
struct store;
struct judge_lists;

enum grey_dns_state { GDNS_PENDING, GDNS_NAME, GDNS_UNKNOWN, GDNS_FAILED };
/* struct conn keeps it in 2 bits (dns_state). */
_Static_assert(GDNS_FAILED < 4, "enum grey_dns_state fits in struct conn");

/* The outcome of a decision, handed to the decided hook. */
enum grey_outcome {
	GREY_PASS,     /* hand the client to the backend now */
	GREY_TARPIT,   /* hold the reply: tarpit.c */
	GREY_TEMPFAIL, /* answer 4xx and stay in the dialogue */
	GREY_REJECT    /* answer the list's 5xx (or 4xx) and stay in the dialogue */
};

/*
 * What the engine tells the layers above it: it calls nothing above
 * itself by name. The program (main.c) gives these to grey_new.
 */
struct grey_hooks {
	/*
	 * decided - the answer to grey_decide(c): outcome is an enum
	 * grey_outcome, reply a CRLF-terminated line for TEMPFAIL and REJECT
	 * (else NULL). Always called from the event loop, never inside
	 * grey_decide; not for a connection closed meanwhile. c may be gone
	 * on return.
	 */
	void (*decided)(struct conn *c, int outcome, const char *reply);
	/* greet_settled - the name lookup of c ended while c is in STAGE_GREET. */
	void (*greet_settled)(struct conn *c);
	/* name_known - the name lookup of c ended while c is in the hand-off (c->ho). */
	void (*name_known)(struct conn *c);
	/*
	 * counted - c got its first verdict (an enum verdict), once per
	 * connection: for counters kept above the engine (per listener).
	 * May be NULL.
	 */
	void (*counted)(struct conn *c, int verdict);
	/*
	 * lost - the decision for c could not be queued (out of memory): the
	 * layer that owns c ends it. May run inside grey_decide. NULL:
	 * conn_close(c).
	 */
	void (*lost)(struct conn *c);
};

/* One remembered verdict (grey_recent). */
#define GREY_RECENT 64
struct grey_recent {
	int64_t ms; /* unix time, milliseconds */
	char client[NETADDR_STRLEN];
	char name[256];	  /* verified name, "unknown" without one */
	char helo[256];	  /* the HELO/EHLO argument as sent ("" without one): any bytes */
	char reason[160]; /* the rule that decided */
	int verdict;	  /* enum verdict */
};

/*
 * grey_check - would grey_new accept cfg: every list (client_lists,
 * helo_lists, recipient_whitelist, sender_ns_lists) read and parsed,
 * dnsbl_sites and dns_resolvers parsed, with grey_new's own functions;
 * nothing kept, nothing opened but the list files (mxguard -n). Returns 0,
 * or -1 with the message grey_new would give in err.
 */
int grey_check(const struct cfg *cfg, char *err, size_t errsz);

/*
 * grey_new - the engine for mxg->cfg: client lists, resolver, public
 * suffix list. store is the daemon's (it must outlive the engine's last
 * use; the engine never closes it); hooks (copied) are how it reports to
 * the layers above. Returns NULL with a message in err.
 */
struct engine *grey_new(struct mxg *mxg, struct store *store, const struct grey_hooks *hooks,
			char *err, size_t errsz);

/* grey_reload - re-read the client lists for cfg; on error keep the old ones. */
int grey_reload(struct engine *e, const struct cfg *cfg, char *err, size_t errsz);

/*
 * grey_white_add / grey_white_del - the operator's whitelist (mxguardctl
 * add white CIDR|NAME): kept in the store, so it survives restarts, and in
 * memory for matching. add returns 0 or -1 with err; del returns 1 if the
 * entry existed, 0 if not, -1 on a store error.
 */
int grey_white_add(struct engine *e, const char *entry, char *err, size_t errsz);
int grey_white_del(struct engine *e, const char *entry);

/*
 * grey_recent - the i-th most recent verdict (0: the newest), for
 * mxguardctl top; NULL past the last one kept (at most GREY_RECENT) or
 * when e is NULL.
 */
const struct grey_recent *grey_recent(const struct engine *e, unsigned i);

/*
 * grey_key_for - the client key of tarpit records and greylist triplets
 * for a client at sa with the verified name (NULL: none) under cfg's
 * greylist_key, before the SPF step (whose "spf:<domain>" key depends on
 * the sender). Returns 1 when it is the network key, else 0.
 */
int grey_key_for(const struct engine *e, const struct cfg *cfg, const char *name,
		 const struct sockaddr *sa, char *out, size_t outsz);

/* grey_lists - the rule sets the engine judges with (the engine keeps them). */
void grey_lists(const struct engine *e, struct judge_lists *l);

/*
 * grey_status - the engine's counts for the control socket's status, set
 * as members of obj (held, verdicts, tarpit, greylist, awl, store,
 * dns_cache).
 */
void grey_status(struct engine *e, json_t *obj);

void grey_free(struct engine **ep);

/* grey_connect - a client arrived: start looking up its verified name. */
void grey_connect(struct conn *c);

/*
 * grey_connect_named - a client whose verified name another MTA looked up
 * (the policy service: Postfix's client_name): name, or NULL for none, is
 * taken as the verified name without a lookup of its own; the DNS list
 * queries start as at grey_connect. grey_decide follows.
 */
void grey_connect_named(struct conn *c, const char *name);

/*
 * grey_decide - c->pending holds the RCPT (or STARTTLS) the client waits
 * on. The outcome arrives through the decided hook, always from the event
 * loop, never inside this call. c stays valid on return (unless memory ran
 * out: then it was closed; the caller must not touch it either way).
 */
void grey_decide(struct conn *c);

/*
 * grey_greet_suspect - should c's final greeting line be held (greet_wait)?
 * -1 while its verified name is still being looked up; 1 when the name is
 * unverified or S25R-dynamic (or c is an attack suspect) and no client list
 * decided on it; 0 otherwise, and always in mode warn. When the lookup
 * settles while c->stage is STAGE_GREET, the greet_settled hook runs.
 */
int grey_greet_suspect(const struct conn *c);

/*
 * grey_pregreet_drop - c talked before the final greeting: log it and write
 * a tarpit record for its client key, as a tarpit drop does, so that its
 * retry is greylisted. held_s is the time it was held, for the log.
 */
void grey_pregreet_drop(struct conn *c, double held_s);

/*
 * grey_tarpit_done - the hold ended: survived (hand off) or dropped. A drop
 * (mode targrey) leaves a tarpit record and the first sighting of the
 * triplet, so that a retry after greylist_delay is on time.
 */
void grey_tarpit_done(struct conn *c, int survived);

/*
 * grey_delivered - the backend accepted a message of c (a 2xx reply to the
 * end of data, seen by relay.c): a suspect's network counts towards the
 * auto-whitelist (at most once per awl_interval). Call at most once per
 * connection; c is not changed.
 */
void grey_delivered(struct conn *c);

/*
 * grey_name_lookup - start the verified-name lookup of c if nothing started
 * it (pass mode, for XCLIENT NAME). When it ends, the name_known hook runs
 * if c is in the hand-off.
 */
void grey_name_lookup(struct conn *c);

/*
 * grey_xclient_name - the XCLIENT NAME value for c: the verified name,
 * "[TEMPUNAVAIL]" when the lookup failed temporarily, "[UNAVAILABLE]" when
 * there is none; NULL while the lookup is still running.
 */
const char *grey_xclient_name(const struct conn *c);

/*
 * grey_conn_free - cancel what c still waits for (closing), a decision not
 * yet delivered included; may be called twice.
 */
void grey_conn_free(struct conn *c);

#endif
