/*
 * spf.h - SPF (RFC 7208): does a sender domain authorise a client address?
 *
 * Two parts: a pure parser of a record's terms (spf_record_check,
 * spf_term_next, spf_expand), which touches nothing but its arguments, and
 * an asynchronous check_host() (spf_check) whose DNS work goes through
 * dns.c on the event loop. The engine uses the result only to choose a key;
 * nothing here rejects mail.
 */
#ifndef MXG_SPF_H
#define MXG_SPF_H

#include <stddef.h>
#include <sys/socket.h>

struct dns;
struct event_base;
struct spf_req;

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR
};

/* The terms of a record (RFC 7208 4.6.1, 5, 6). */
enum spf_kind {
	SPF_ALL,
	SPF_INCLUDE,
	SPF_A,
	SPF_MX,
	SPF_PTR,
	SPF_IP4,
	SPF_IP6,
	SPF_EXISTS,
	SPF_REDIRECT,
	SPF_EXP,
	SPF_MODIFIER /* an unknown modifier: ignored */
};

#define SPF_RECORD_MAX 1024 /* bytes of a record; dns_spf delivers longer ones as "" */
#define SPF_TERMS_MAX 128   /* terms of a record; more is a permerror */
#define SPF_DNS_TERMS 10    /* include, a, mx, ptr, exists, redirect (RFC 7208 4.6.4) */
#define SPF_VOID_MAX 2	    /* lookups answering NXDOMAIN or no data */
#define SPF_MX_MAX 10	    /* MX names looked up per mx term */
#define SPF_NAME_MAX 253

struct spf_term {
	enum spf_kind kind;
	char qual;	    /* '+', '-', '~' or '?' */
	const char *domain; /* the domain-spec (in the record), or NULL when there is none */
	size_t domlen;
	unsigned char ip[16]; /* ip4 (first 4 bytes) and ip6 */
	int cidr4, cidr6;     /* prefix lengths; 32 and 128 when not given */
};

/*
 * spf_record_check - is rec (len bytes, need not be NUL-terminated) a
 * syntactically valid SPF record: "v=spf1", terms that all parse, at most
 * SPF_TERMS_MAX of them, at most one redirect and one exp, len at most
 * SPF_RECORD_MAX? Returns the number of terms, or -1 with a static reason
 * in *why (a syntax error: permerror).
 */
int spf_record_check(const char *rec, size_t len, const char **why);

/*
 * spf_term_next - the term at rec[*pos..len): skips spaces, fills t (its
 * domain points into rec) and moves *pos past it. Returns 1 for a term, 0
 * at the end of the record, -1 on a syntax error (*why set). Start with
 * *pos = 6, after "v=spf1". Reads nothing outside rec[0..len).
 */
int spf_term_next(const char *rec, size_t len, size_t *pos, struct spf_term *t, const char **why);

/* The values macros expand to (RFC 7208 7.2). */
struct spf_macro_ctx {
	const char *sender; /* local@domain */
	const char *domain; /* the current domain (<domain> of check_host) */
	const char *helo;   /* the HELO name, or "" */
	int af;		    /* AF_INET or AF_INET6 */
	unsigned char ip[16];
};

/*
 * spf_expand - the domain-spec spec (len bytes) with its macros expanded
 * into out (outsz >= SPF_NAME_MAX + 1), without a trailing dot, shortened
 * from the left to at most 253 characters (RFC 7208 4.8). Supported: %{s l
 * o d i p v h} with digits, 'r' and delimiters, %%, %_, %- ("p" expands to
 * "unknown", as RFC 7208 allows). Returns the length, or -1 (a bad macro:
 * permerror).
 */
int spf_expand(const char *spec, size_t len, const struct spf_macro_ctx *m, char *out,
	       size_t outsz);

/*
 * What a check found: the result, whether a pass came from a mechanism so
 * broad that it says nothing about the sender ("all", or a network shorter
 * than /16 or /32 for IPv6: anyone can publish "+all"), and a short reason
 * for the log (printable, no spaces).
 */
struct spf_outcome {
	enum spf_result result;
	int broad;
	char why[64];
};

/*
 * spf_check - check_host(client, domain, sender) on the loop: the SPF
 * record of domain and what it includes or redirects to, within RFC
 * 7208's limits, and within timeout_ms in all (then temperror). helo may be
 * "" or NULL. cb runs exactly once, always from the event loop (never
 * before this returns), unless spf_cancel is called first; out is valid
 * during the callback only. Returns NULL when no check could be started
 * (out of memory; cb will not run).
 */
typedef void (*spf_cb)(const struct spf_outcome *out, void *arg);
struct spf_req *spf_check(struct event_base *base, struct dns *d, const struct sockaddr *client,
			  const char *domain, const char *sender, const char *helo, int timeout_ms,
			  spf_cb cb, void *arg);

/* spf_cancel - stop req; its callback will not run. NULL is ignored. */
void spf_cancel(struct spf_req *req);

/* spf_result_name - "pass", "fail", ... for logs. */
const char *spf_result_name(enum spf_result r);

#endif
