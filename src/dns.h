/*
 * dns.h - asynchronous DNS for mxguard (c-ares on the libevent loop): the
 * verified reverse name of a client (PTR confirmed by a forward lookup,
 * FCrDNS), address lookups (DNSBL, SPF), NS, MX, TXT and SPF records, with a bounded
 * cache that honours TTLs. A DNS failure is never a permanent verdict: it
 * yields DNS_FAIL and the caller treats the name as "unknown".
 */
#ifndef MXG_DNS_H
#define MXG_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_req;
struct hist;

enum dns_status {
	DNS_OK,	  /* an answer */
	DNS_NONE, /* a definite "no": NXDOMAIN, no data, or PTR not confirmed */
	DNS_FAIL  /* timeout, SERVFAIL, refused, or a local error */
};

/*
 * dns_resolvers_check - would dns_new accept resolvers (the same parser,
 * nothing opened)? Returns 0, or -1 with dns_new's message in err.
 */
int dns_resolvers_check(const char *resolvers, char *err, size_t errsz);

/*
 * dns_new - resolvers: "ip[:port] ip[:port] ..." (IPv6 as [ip]:port), or
 * NULL/"" for /etc/resolv.conf. timeout_ms bounds one query attempt (two
 * attempts per server). cache_entries bounds the cache. Returns NULL with
 * a message in err.
 */
struct dns *dns_new(struct event_base *base, const char *resolvers, int timeout_ms,
		    int cache_entries, char *err, size_t errsz);

/*
 * dns_set_latency - observe into h the seconds each query answered by the
 * network took (not cache hits, not failures); NULL stops it. h must
 * outlive d.
 */
void dns_set_latency(struct dns *d, struct hist *h);

/*
 * dns_verified_name - PTR of addr, then the A (or AAAA) records of that
 * name must include addr. cb gets DNS_OK with the name (lower case, no
 * trailing dot), DNS_NONE (no PTR, or not confirmed: the name is
 * "unknown"), or DNS_FAIL. The callback always runs from the event loop,
 * never before this returns. Returns a request the caller may cancel until
 * cb has run, or NULL when none could be started (cb will not run).
 */
typedef void (*dns_name_cb)(enum dns_status st, const char *name, void *arg);
struct dns_req *dns_verified_name(struct dns *d, const struct sockaddr *addr, dns_name_cb cb,
				  void *arg);

/*
 * dns_addrs - A records of name (for DNSBL queries like
 * "2.0.0.127.zen.example"): cb gets up to n addresses in network order.
 */
typedef void (*dns_addrs_cb)(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg);
struct dns_req *dns_addrs(struct dns *d, const char *name, dns_addrs_cb cb, void *arg);

/*
 * dns_ns - the NS host names of domain: cb gets up to n names (lower case,
 * no trailing dot).
 */
typedef void (*dns_names_cb)(enum dns_status st, const char *const *names, int n, void *arg);
struct dns_req *dns_ns(struct dns *d, const char *domain, dns_names_cb cb, void *arg);

/*
 * dns_txt - the TXT strings of name (a DNSBL's reason text, SPF): up to n
 * strings, bytes outside printable ASCII replaced by '?', each cut to 254.
 */
struct dns_req *dns_txt(struct dns *d, const char *name, dns_names_cb cb, void *arg);

/*
 * dns_addrs6 - AAAA records of name: cb gets up to n addresses (16 bytes
 * each, network order).
 */
typedef void (*dns_addrs6_cb)(enum dns_status st, const unsigned char (*a6)[16], int n, void *arg);
struct dns_req *dns_addrs6(struct dns *d, const char *name, dns_addrs6_cb cb, void *arg);

/*
 * dns_mx - the exchange host names of domain's MX records (lower case, no
 * trailing dot, at most 16, in no particular order; a null MX "." is left
 * out). NONE when there are none.
 */
struct dns_req *dns_mx(struct dns *d, const char *domain, dns_names_cb cb, void *arg);

/*
 * dns_spf - the SPF records of domain (RFC 7208 4.5): the TXT records that
 * begin with "v=spf1" and a space or their end, each with its strings
 * joined and bytes outside printable ASCII as '?'. A record over 1024 bytes
 * is delivered as "" (the caller must fail it). NONE when there is none,
 * even if other TXT records exist.
 */
struct dns_req *dns_spf(struct dns *d, const char *domain, dns_names_cb cb, void *arg);

/*
 * dns_parse_answer - what mxguard keeps of one raw DNS answer: abuf (alen
 * bytes of wire message, as c-ares hands a query callback with
 * ARES_SUCCESS) to a query of type, through the same c-ares parser and
 * the same checks and copies as every answer from the network before it
 * is cached and delivered. type is a wire type, 1 (A), 28 (AAAA), 12 (PTR),
 * 2 (NS), 15 (MX) or 16 (TXT), or DNS_T_SPF (dns_spf's TXT); any other
 * gives DNS_FAIL. Into data_r (datasz bytes, at least DNS_ANSWER_DATA, or
 * DNS_FAIL) go *n_r items (at most DNS_ANSWER_MAXN) in *len_r bytes:
 * addresses of 4 (A) or 16 (AAAA) bytes in network order, or
 * NUL-terminated strings one after another, shaped as the lookups above
 * promise. *ttl_r: the seconds the answer may be cached (0: not at all).
 * Returns the status (DNS_OK with at least one item). Nothing is allocated
 * that outlives the call; abuf is only read. For tests and fuzzing: the
 * daemon reaches this code through the lookups above.
 */
#define DNS_T_SPF 65281		   /* not a wire type: see dns_spf */
#define DNS_ANSWER_MAXN 16	   /* items in one answer, at most */
#define DNS_ANSWER_DATA (16 * 256) /* bytes they take, at most */
enum dns_status dns_parse_answer(int type, const unsigned char *abuf, int alen,
				 unsigned char *data_r, size_t datasz, int *n_r, size_t *len_r,
				 unsigned *ttl_r);

/* dns_cancel - the callback of req will not run. */
void dns_cancel(struct dns_req *req);

/* dns_cache_size - entries currently cached (for status and tests). */
int dns_cache_size(const struct dns *d);

void dns_free(struct dns **dp);

#endif
