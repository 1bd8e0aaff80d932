/*
 * dns.c - asynchronous DNS on c-ares, driven by the libevent loop.
 *
 * c-ares owns the sockets and the retry logic; this module only tells the
 * loop what to watch. The sock_state callback adds, changes or removes one
 * persistent event per c-ares socket, and one timer, re-armed from
 * ares_timeout() after every step, lets c-ares see its timeouts. Nothing
 * here blocks.
 *
 * A request (struct dns_req) is what the caller holds; a query (struct
 * dns_query) is what c-ares holds. They are separate because c-ares always
 * calls back, even for a query nobody wants any more: dns_cancel() frees
 * the request at once and leaves an orphan query behind, which frees itself
 * (after caching its answer) when c-ares is done with it.
 *
 * A verified name takes two steps: the PTR records of the client, then the
 * A (or AAAA) records of each PTR name, at most DNS_PTR_TRY of them, until
 * one includes the client. Every step goes through the cache, so a client
 * seen again costs no query at all.
 *
 * Results reach the caller only through a zero-delay event, whether they
 * came from the network, from the cache or from a local error: a caller
 * must never be called back while it is still inside the call that started
 * the lookup, and it may do anything from its callback (cancel others, start
 * new lookups, even dns_free) because no c-ares frame is on the stack then.
 *
 * Cache: (type, name) -> answer, in a chained hash table with a FIFO ring
 * that gives the eviction order (oldest inserted first, O(1)). Positive
 * answers live for their TTL, at most DNS_TTL_MAX; PTR and NS answers for
 * DNS_TTL_NOTTL, because the c-ares 1.18 parsers of those types do not
 * return TTLs; NXDOMAIN and NODATA for DNS_TTL_NEG. Failures (timeouts,
 * SERVFAIL, refused) are never cached: the next client tries again.
 *
 * This module never logs and never exits.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ares.h>
#include <event2/event.h>

#include "dns.h"
#include "hist.h"

#define DNS_NAMESZ 256 /* a presentation name (253) and its NUL, rounded */
#define DNS_MAXN 16    /* names or addresses kept per answer */
/*
 * PTR names checked against the client. The PTR zone belongs to whoever
 * owns the client's address: a long list must not buy a hostile client
 * many forward lookups.
 */
#define DNS_PTR_TRY 3
#define DNS_TTL_MAX 86400  /* cap on any positive TTL */
#define DNS_TTL_NOTTL 3600 /* PTR and NS answers: no TTL from c-ares 1.18 */
#define DNS_TTL_NEG 300	   /* NXDOMAIN and NODATA */
#define DNS_CACHE_MAX (1 << 22)
#define DNS_TRIES 2
#define DNS_SERVERS_CSV 1024 /* converted resolver list */

#define T_A 1
#define T_NS 2
#define T_MX 15
#define T_TXT 16
#define T_PTR 12
#define T_AAAA 28
/*
 * Not a wire type: the SPF records of a name (TXT, joined, filtered). It
 * is asked as T_TXT but cached apart from dns_txt's answers, which are
 * shaped differently. From the private-use range, never on the wire.
 */
#define T_SPF DNS_T_SPF
#define C_IN 1
/*
 * An SPF record longer than this (its strings joined) is delivered as ""
 * so that the caller fails it (RFC 7208 3.4 asks publishers to stay within
 * a 512-byte reply; real records are a few hundred bytes).
 */
#define DNS_SPF_MAX 1024

/* One answer, from the network or the cache: names packed NUL-terminated, or addresses. */
struct dns_ans {
	enum dns_status st;
	int n;
	unsigned ttl; /* seconds it may be cached; 0: not at all */
	size_t len;   /* bytes used in data */
	unsigned char data[DNS_MAXN * DNS_NAMESZ];
};

struct dns_cent {
	struct dns_cent *hnext;
	time_t expires;
	uint32_t hash;
	uint32_t slot; /* index in the ring */
	uint16_t type;
	uint16_t keylen;
	uint16_t len;
	uint8_t st, n;
	char key[]; /* name, NUL, then len bytes of data */
};

struct dns_sock {
	struct dns_sock *next;
	ares_socket_t fd;
	short what;
	struct event *ev;
};

enum dns_kind { DK_NAME, DK_ADDRS, DK_ADDRS6, DK_NS, DK_TXT, DK_MX, DK_SPF };

struct dns_query {
	struct dns *d;
	struct dns_req *req; /* NULL once cancelled */
	int type;
	struct timespec sent; /* CLOCK_MONOTONIC, for the latency histogram */
	char name[DNS_NAMESZ];
};

struct dns_req {
	struct dns *d;
	struct dns_req *prev, *next; /* d->reqs, for dns_free */
	struct dns_query *q;	     /* in flight, or NULL */
	struct event *ev;	     /* delivery */
	enum dns_kind kind;
	enum dns_status st;
	union {
		dns_name_cb name;
		dns_addrs_cb addrs;
		dns_addrs6_cb addrs6;
		dns_names_cb names;
	} cb;
	void *arg;
	int n;
	union {
		struct {
			int fwd;  /* 0: PTR step, 1: forward step */
			int type; /* T_A or T_AAAA */
			int alen; /* 4 or 16 */
			int nptr, iptr;
			int failed; /* a forward lookup failed: the answer is not definite */
			unsigned char ip[16];
			char ptr[DNS_PTR_TRY][DNS_NAMESZ];
		} name;
		unsigned char a4[DNS_MAXN][4];
		unsigned char a6[DNS_MAXN][16];
		char *names; /* packed, malloc'ed */
	} u;
};

struct dns {
	struct event_base *base;
	ares_channel channel;
	int have_lib, have_channel;
	struct event *timer;
	struct dns_sock *socks;
	struct dns_req *reqs;
	int closing;
	struct hist *latency; /* NULL: not observed */

	struct dns_cent **buckets;
	uint32_t mask;
	struct dns_cent **ring;
	int cap, head, used; /* ring slots; used counts empty slots too */
	int count;	     /* live entries */
};

static void dns_lookup(struct dns_req *req, int type, const char *name);

static time_t dns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * dns_name_norm - copy a host name into dst (DNS_NAMESZ) in lower case
 * without its trailing dot. Returns the length, or -1 when src is not a
 * plausible host name: empty, over 253 characters, an empty or over-long
 * label, or a character outside letters, digits, '-', '_' and '.'. Anything
 * else in a PTR or NS answer is a broken or hostile zone (c-ares escapes
 * such bytes as "\DDD", which fails here too); in a caller's name it is a
 * mistake.
 */
static int dns_name_norm(char *dst, const char *src)
{
	size_t len = strnlen(src, DNS_NAMESZ), label = 0;

	if (len > 0 && src[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		dst[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	if (label == 0)
		return -1;
	dst[len] = '\0';
	return (int)len;
}

/* ---- the cache ---- */

static uint32_t dns_hash(int type, const char *key, size_t len)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

static void dns_cache_remove(struct dns *d, struct dns_cent *e)
{
	struct dns_cent **pp = &d->buckets[e->hash & d->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	d->ring[e->slot] = NULL;
	d->count--;
	free(e);
}

static struct dns_cent *dns_cache_find(struct dns *d, int type, const char *key, size_t len,
				       uint32_t h)
{
	for (struct dns_cent *e = d->buckets[h & d->mask]; e != NULL; e = e->hnext)
		if (e->hash == h && e->type == type && e->keylen == len &&
		    memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* dns_cache_get - a live entry for (type, key) into *ans. Returns 1 on a hit. */
static int dns_cache_get(struct dns *d, int type, const char *key, struct dns_ans *ans)
{
	size_t len = strlen(key);
	uint32_t h = dns_hash(type, key, len);
	struct dns_cent *e;

	if (d->cap == 0 || (e = dns_cache_find(d, type, key, len, h)) == NULL)
		return 0;
	if (e->expires <= dns_now()) {
		dns_cache_remove(d, e);
		return 0;
	}
	ans->st = e->st;
	ans->n = e->n;
	ans->ttl = 0;
	ans->len = e->len;
	memcpy(ans->data, e->key + e->keylen + 1, e->len);
	return 1;
}

/*
 * dns_cache_put - remember ans for (type, key), replacing an older entry
 * for the same key. When the ring is full its oldest slot is reused; the
 * slot may already be empty (its entry expired or was replaced), which is
 * what keeps eviction O(1). An allocation failure only means no caching.
 */
static void dns_cache_put(struct dns *d, int type, const char *key, const struct dns_ans *ans)
{
	size_t len = strlen(key);
	uint32_t h = dns_hash(type, key, len);
	struct dns_cent *e;

	if (d->cap == 0 || ans->ttl == 0)
		return;
	if ((e = dns_cache_find(d, type, key, len, h)) != NULL)
		dns_cache_remove(d, e);
	if ((e = malloc(sizeof(*e) + len + 1 + ans->len)) == NULL)
		return;
	if (d->used == d->cap) {
		if (d->ring[d->head] != NULL)
			dns_cache_remove(d, d->ring[d->head]);
		d->head = (d->head + 1) % d->cap;
		d->used--;
	}
	e->expires = dns_now() + (time_t)ans->ttl;
	e->hash = h;
	e->slot = (uint32_t)((d->head + d->used) % d->cap);
	e->type = (uint16_t)type;
	e->keylen = (uint16_t)len;
	e->len = (uint16_t)ans->len;
	e->st = (uint8_t)ans->st;
	e->n = (uint8_t)ans->n;
	memcpy(e->key, key, len + 1);
	memcpy(e->key + len + 1, ans->data, ans->len);
	d->ring[e->slot] = e;
	d->used++;
	e->hnext = d->buckets[h & d->mask];
	d->buckets[h & d->mask] = e;
	d->count++;
}

static void dns_cache_free(struct dns *d)
{
	if (d->ring != NULL)
		for (int i = 0; i < d->cap; i++)
			free(d->ring[i]);
	free(d->ring);
	free(d->buckets);
}

int dns_cache_size(const struct dns *d)
{
	return d->count;
}

/* ---- answers ---- */

static void dns_ans_status(struct dns_ans *ans, enum dns_status st)
{
	ans->st = st;
	ans->n = 0;
	ans->len = 0;
	ans->ttl = st == DNS_NONE ? DNS_TTL_NEG : 0;
}

/* dns_ans_names - the plausible names of list (at most DNS_MAXN) into ans. */
static void dns_ans_names(struct dns_ans *ans, char *const *list)
{
	dns_ans_status(ans, DNS_NONE);
	for (int i = 0; list != NULL && list[i] != NULL && ans->n < DNS_MAXN; i++) {
		int len = dns_name_norm((char *)ans->data + ans->len, list[i]);

		if (len < 0)
			continue;
		ans->len += (size_t)len + 1;
		ans->n++;
	}
	if (ans->n > 0) {
		ans->st = DNS_OK;
		ans->ttl = DNS_TTL_NOTTL;
	}
}

static void dns_ans_ttl(struct dns_ans *ans, int ttl)
{
	unsigned t = ttl < 0 ? 0 : ttl > DNS_TTL_MAX ? DNS_TTL_MAX : (unsigned)ttl;

	if (ans->n == 0 || t < ans->ttl)
		ans->ttl = t;
}

/*
 * dns_parse_txt - TXT strings into ans, each cut at DNS_NAMESZ - 1 bytes
 * and with every byte outside printable ASCII as '?': they come from any
 * zone on the Internet and may end up in a log line or a reply.
 */
static void dns_parse_txt(const unsigned char *abuf, int alen, struct dns_ans *ans)
{
	struct ares_txt_reply *txt = NULL;
	int r = ares_parse_txt_reply(abuf, alen, &txt);

	if (r != ARES_SUCCESS) {
		dns_ans_status(ans, r == ARES_ENODATA ? DNS_NONE : DNS_FAIL);
		return;
	}
	dns_ans_status(ans, DNS_NONE);
	for (struct ares_txt_reply *t = txt; t != NULL && ans->n < DNS_MAXN; t = t->next) {
		size_t n = t->length < DNS_NAMESZ - 1 ? t->length : DNS_NAMESZ - 1;
		char *out = (char *)ans->data + ans->len;

		for (size_t i = 0; i < n; i++)
			out[i] = t->txt[i] >= 0x20 && t->txt[i] < 0x7f ? (char)t->txt[i] : '?';
		out[n] = '\0';
		ans->len += n + 1;
		ans->n++;
	}
	ares_free_data(txt);
	if (ans->n > 0) {
		ans->st = DNS_OK;
		ans->ttl = DNS_TTL_NOTTL;
	}
}

/* dns_spf_version - does rec (len bytes) begin with "v=spf1" and then a space or its end? */
static int dns_spf_version(const char *rec, size_t len)
{
	return len >= 6 && strncasecmp(rec, "v=spf1", 6) == 0 && (len == 6 || rec[6] == ' ');
}

/*
 * dns_spf_keep - one joined TXT record (len bytes, at most DNS_SPF_MAX of
 * them in rec, full: the record was longer) into ans if it is an SPF record:
 * whole, or as "" when it was too long or no longer fits (two records are an
 * error for SPF anyway, so the caller needs only to see that there were).
 */
static void dns_spf_keep(struct dns_ans *ans, const char *rec, size_t len, int full)
{
	char *out = (char *)ans->data + ans->len;

	if (!dns_spf_version(rec, len) || ans->n >= DNS_MAXN || ans->len + 1 > sizeof(ans->data))
		return;
	if (full || ans->len + len + 1 > sizeof(ans->data))
		len = 0;
	memcpy(out, rec, len);
	out[len] = '\0';
	ans->len += len + 1;
	ans->n++;
}

/*
 * dns_parse_spf - the SPF records among the TXT records: the strings of one
 * record joined (RFC 7208 3.3), every byte outside printable ASCII as '?'
 * (a hostile zone's bytes then fail the SPF parser instead of reaching a
 * log line). NONE when there is no SPF record.
 */
static void dns_parse_spf(const unsigned char *abuf, int alen, struct dns_ans *ans)
{
	struct ares_txt_ext *txt = NULL;
	char rec[DNS_SPF_MAX];
	size_t len = 0;
	int full = 0, open = 0;
	int r = ares_parse_txt_reply_ext(abuf, alen, &txt);

	if (r != ARES_SUCCESS) {
		dns_ans_status(ans, r == ARES_ENODATA ? DNS_NONE : DNS_FAIL);
		return;
	}
	dns_ans_status(ans, DNS_NONE);
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		if (t->record_start && open)
			dns_spf_keep(ans, rec, len, full);
		if (t->record_start)
			len = 0, full = 0;
		open = 1;
		for (size_t i = 0; i < t->length; i++) {
			if (len == sizeof(rec)) {
				full = 1;
				break;
			}
			rec[len++] = t->txt[i] >= 0x20 && t->txt[i] < 0x7f ? (char)t->txt[i] : '?';
		}
	}
	if (open)
		dns_spf_keep(ans, rec, len, full);
	ares_free_data(txt);
	if (ans->n > 0) {
		ans->st = DNS_OK;
		ans->ttl = DNS_TTL_NOTTL;
	}
}

/* dns_parse_mx - the exchange names of an MX reply (at most DNS_MAXN plausible ones). */
static void dns_parse_mx(const unsigned char *abuf, int alen, struct dns_ans *ans)
{
	struct ares_mx_reply *mx = NULL;
	char *list[DNS_MAXN + 1];
	int n = 0, r = ares_parse_mx_reply(abuf, alen, &mx);

	if (r != ARES_SUCCESS) {
		dns_ans_status(ans, r == ARES_ENODATA ? DNS_NONE : DNS_FAIL);
		return;
	}
	/* Twice the names kept: implausible ones (the null MX ".") are skipped. */
	for (struct ares_mx_reply *m = mx; m != NULL && n < DNS_MAXN; m = m->next)
		list[n++] = m->host;
	list[n] = NULL;
	dns_ans_names(ans, list);
	ares_free_data(mx);
}

/*
 * dns_parse - turn what c-ares gave for a query of type into ans. Only the
 * parsers' output is used; a reply that they reject is a failure, except
 * a PTR reply (see below).
 */
static void dns_parse(int type, int status, const unsigned char *abuf, int alen,
		      struct dns_ans *ans)
{
	static const unsigned char noaddr[4];
	struct ares_addrttl t4[DNS_MAXN];
	struct ares_addr6ttl t6[DNS_MAXN];
	struct hostent *h = NULL;
	int r, nt = DNS_MAXN;

	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		dns_ans_status(ans, DNS_NONE);
		return;
	}
	if (status != ARES_SUCCESS || abuf == NULL) {
		dns_ans_status(ans, DNS_FAIL);
		return;
	}
	if (type == T_TXT) {
		dns_parse_txt(abuf, alen, ans);
		return;
	}
	if (type == T_SPF) {
		dns_parse_spf(abuf, alen, ans);
		return;
	}
	if (type == T_MX) {
		dns_parse_mx(abuf, alen, ans);
		return;
	}
	switch (type) {
	case T_A:
		r = ares_parse_a_reply(abuf, alen, NULL, t4, &nt);
		break;
	case T_AAAA:
		r = ares_parse_aaaa_reply(abuf, alen, NULL, t6, &nt);
		break;
	case T_PTR:
		/*
		 * The address only fills in h_addr_list: c-ares does not check
		 * it. c-ares 1.18 refuses a PTR name with characters a host
		 * name cannot have as a "misformatted reply": the resolver has
		 * already parsed the message, so that is the zone's content,
		 * and a client with such a name has none (DNS_NONE), not an
		 * unknown one.
		 */
		r = ares_parse_ptr_reply(abuf, alen, noaddr, sizeof(noaddr), AF_INET, &h);
		if (r == ARES_EBADRESP || r == ARES_EBADNAME)
			r = ARES_ENODATA;
		break;
	default:
		r = ares_parse_ns_reply(abuf, alen, &h);
		break;
	}
	if (r != ARES_SUCCESS) {
		dns_ans_status(ans, r == ARES_ENODATA ? DNS_NONE : DNS_FAIL);
		if (h != NULL)
			ares_free_hostent(h);
		return;
	}
	dns_ans_status(ans, DNS_NONE);
	if (type == T_A || type == T_AAAA) {
		size_t asz = type == T_A ? 4 : 16;

		for (int i = 0; i < nt && i < DNS_MAXN; i++) {
			if (type == T_A)
				memcpy(ans->data + ans->len, &t4[i].ipaddr, 4);
			else
				memcpy(ans->data + ans->len, &t6[i].ip6addr, 16);
			dns_ans_ttl(ans, type == T_A ? t4[i].ttl : t6[i].ttl);
			ans->len += asz;
			ans->n++;
		}
		if (ans->n > 0)
			ans->st = DNS_OK;
		return;
	}
	/*
	 * PTR: c-ares 1.18 lists every PTR name in h_aliases (h_name is only
	 * the last one). NS: the server names are the aliases.
	 */
	if (h->h_aliases != NULL && h->h_aliases[0] != NULL) {
		dns_ans_names(ans, h->h_aliases);
	} else {
		char *one[2] = {h->h_name, NULL};

		dns_ans_names(ans, type == T_PTR ? one : NULL);
	}
	ares_free_hostent(h);
}

_Static_assert(DNS_MAXN == DNS_ANSWER_MAXN, "dns.h promises DNS_MAXN items");
_Static_assert(sizeof(((struct dns_ans *)0)->data) == DNS_ANSWER_DATA,
	       "dns.h promises the size of the answer data");

enum dns_status dns_parse_answer(int type, const unsigned char *abuf, int alen,
				 unsigned char *data_r, size_t datasz, int *n_r, size_t *len_r,
				 unsigned *ttl_r)
{
	struct dns_ans ans;

	*n_r = 0;
	*len_r = 0;
	*ttl_r = 0;
	if (datasz < sizeof(ans.data) || abuf == NULL || alen < 0)
		return DNS_FAIL;
	if (type != T_A && type != T_AAAA && type != T_PTR && type != T_NS && type != T_MX &&
	    type != T_TXT && type != T_SPF)
		return DNS_FAIL;
	dns_parse(type, ARES_SUCCESS, abuf, alen, &ans);
	memcpy(data_r, ans.data, ans.len);
	*n_r = ans.n;
	*len_r = ans.len;
	*ttl_r = ans.ttl;
	return ans.st;
}

/* ---- requests ---- */

static void dns_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *req = arg;
	const char *names[DNS_MAXN];
	const char *p;

	/* Off the list first: the callback may call dns_free. */
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		req->d->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	switch (req->kind) {
	case DK_NAME:
		req->cb.name(req->st, req->st == DNS_OK ? req->u.name.ptr[req->u.name.iptr] : NULL,
			     req->arg);
		break;
	case DK_ADDRS:
		req->cb.addrs(req->st, (const unsigned char(*)[4])req->u.a4, req->n, req->arg);
		break;
	case DK_ADDRS6:
		req->cb.addrs6(req->st, (const unsigned char(*)[16])req->u.a6, req->n, req->arg);
		break;
	case DK_NS:
	case DK_TXT:
	case DK_MX:
	case DK_SPF:
		p = req->u.names;
		for (int i = 0; i < req->n; i++, p += strlen(p) + 1)
			names[i] = p;
		req->cb.names(req->st, names, req->n, req->arg);
		free(req->u.names);
		break;
	}
	event_free(req->ev);
	free(req);
}

static void dns_finish(struct dns_req *req, enum dns_status st)
{
	req->st = st;
	event_active(req->ev, EV_TIMEOUT, 1);
}

static int dns_addr_in(const struct dns_req *req, const struct dns_ans *ans)
{
	for (int i = 0; i < ans->n; i++)
		if (memcmp(ans->data + (size_t)i * req->u.name.alen, req->u.name.ip,
			   (size_t)req->u.name.alen) == 0)
			return 1;
	return 0;
}

/* dns_step - the answer to the current step of req: finish, or look up the next thing. */
static void dns_step(struct dns_req *req, const struct dns_ans *ans)
{
	const char *p = (const char *)ans->data;

	switch (req->kind) {
	case DK_ADDRS:
		req->n = ans->n;
		memcpy(req->u.a4, ans->data, (size_t)ans->n * 4);
		dns_finish(req, ans->st);
		return;
	case DK_ADDRS6:
		req->n = ans->n;
		memcpy(req->u.a6, ans->data, (size_t)ans->n * 16);
		dns_finish(req, ans->st);
		return;
	case DK_NS:
	case DK_TXT:
	case DK_MX:
	case DK_SPF:
		if (ans->n > 0 && (req->u.names = malloc(ans->len)) == NULL) {
			dns_finish(req, DNS_FAIL);
			return;
		}
		if (ans->n > 0)
			memcpy(req->u.names, ans->data, ans->len);
		req->n = ans->n;
		dns_finish(req, ans->st);
		return;
	case DK_NAME:
		break;
	}
	if (!req->u.name.fwd) {
		if (ans->st != DNS_OK) {
			dns_finish(req, ans->st);
			return;
		}
		for (int i = 0; i < ans->n && i < DNS_PTR_TRY; i++, p += strlen(p) + 1)
			memcpy(req->u.name.ptr[i], p, strlen(p) + 1);
		req->u.name.nptr = ans->n < DNS_PTR_TRY ? ans->n : DNS_PTR_TRY;
		req->u.name.fwd = 1;
		dns_lookup(req, req->u.name.type, req->u.name.ptr[0]);
		return;
	}
	if (ans->st == DNS_OK && dns_addr_in(req, ans)) {
		dns_finish(req, DNS_OK);
		return;
	}
	if (ans->st == DNS_FAIL)
		req->u.name.failed = 1;
	if (++req->u.name.iptr < req->u.name.nptr) {
		dns_lookup(req, req->u.name.type, req->u.name.ptr[req->u.name.iptr]);
		return;
	}
	dns_finish(req, req->u.name.failed ? DNS_FAIL : DNS_NONE);
}

static void dns_timer_arm(struct dns *d)
{
	struct timeval tv, *tvp;

	if (d->closing)
		return;
	if ((tvp = ares_timeout(d->channel, NULL, &tv)) != NULL)
		evtimer_add(d->timer, tvp);
	else
		evtimer_del(d->timer);
}

static void dns_query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_req *req = q->req;
	struct dns_ans ans;

	if (req != NULL)
		req->q = NULL;
	/* dns_free has already cancelled every request: nothing to tell anyone. */
	if (status == ARES_EDESTRUCTION) {
		free(q);
		return;
	}
	dns_parse(q->type, status, abuf, alen, &ans);
	if (ans.st != DNS_FAIL)
		dns_cache_put(q->d, q->type, q->name, &ans);
	if (ans.st != DNS_FAIL && q->d->latency != NULL) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		hist_observe(q->d->latency, (double)(now.tv_sec - q->sent.tv_sec) +
						(double)(now.tv_nsec - q->sent.tv_nsec) / 1e9);
	}
	free(q);
	if (req != NULL)
		dns_step(req, &ans);
}

/*
 * dns_lookup - one step of req: from the cache, else from the network.
 * name is already normalized. c-ares may call back before ares_query()
 * returns (a local error), so req->q is set first and nothing here touches
 * req or q afterwards.
 */
static void dns_lookup(struct dns_req *req, int type, const char *name)
{
	struct dns *d = req->d;
	struct dns_query *q;
	struct dns_ans ans;

	if (dns_cache_get(d, type, name, &ans)) {
		dns_step(req, &ans);
		return;
	}
	if ((q = malloc(sizeof(*q))) == NULL) {
		dns_ans_status(&ans, DNS_FAIL);
		dns_step(req, &ans);
		return;
	}
	q->d = d;
	q->req = req;
	q->type = type;
	clock_gettime(CLOCK_MONOTONIC, &q->sent);
	memcpy(q->name, name, strlen(name) + 1);
	req->q = q;
	ares_query(d->channel, q->name, C_IN, type == T_SPF ? T_TXT : type, dns_query_cb, q);
	dns_timer_arm(d);
}

static struct dns_req *dns_req_new(struct dns *d, enum dns_kind kind, void *arg)
{
	struct dns_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	if ((req->ev = event_new(d->base, -1, 0, dns_deliver, req)) == NULL) {
		free(req);
		return NULL;
	}
	req->d = d;
	req->kind = kind;
	req->arg = arg;
	req->next = d->reqs;
	if (d->reqs != NULL)
		d->reqs->prev = req;
	d->reqs = req;
	return req;
}

struct dns_req *dns_verified_name(struct dns *d, const struct sockaddr *addr, dns_name_cb cb,
				  void *arg)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)addr;
	unsigned char ip[16];
	char rev[DNS_NAMESZ];
	struct dns_req *req;
	int alen, len = 0;

	if (addr->sa_family == AF_INET) {
		memcpy(ip, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, 4);
		alen = 4;
	} else if (addr->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(ip, sin6->sin6_addr.s6_addr + 12, 4);
		alen = 4;
	} else if (addr->sa_family == AF_INET6) {
		memcpy(ip, sin6->sin6_addr.s6_addr, 16);
		alen = 16;
	} else {
		return NULL;
	}
	if (alen == 4) {
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
	} else {
		static const char hex[] = "0123456789abcdef";

		for (int i = 15; i >= 0; i--) {
			rev[len++] = hex[ip[i] & 15];
			rev[len++] = '.';
			rev[len++] = hex[ip[i] >> 4];
			rev[len++] = '.';
		}
		memcpy(rev + len, "ip6.arpa", sizeof("ip6.arpa"));
	}
	if ((req = dns_req_new(d, DK_NAME, arg)) == NULL)
		return NULL;
	req->cb.name = cb;
	req->u.name.alen = alen;
	req->u.name.type = alen == 4 ? T_A : T_AAAA;
	memcpy(req->u.name.ip, ip, (size_t)alen);
	dns_lookup(req, T_PTR, rev);
	return req;
}

struct dns_req *dns_addrs(struct dns *d, const char *name, dns_addrs_cb cb, void *arg)
{
	char key[DNS_NAMESZ];
	struct dns_req *req;

	if (dns_name_norm(key, name) < 0 || (req = dns_req_new(d, DK_ADDRS, arg)) == NULL)
		return NULL;
	req->cb.addrs = cb;
	dns_lookup(req, T_A, key);
	return req;
}

/* dns_names_lookup - a query whose answer is a list of strings (NS, TXT, MX, SPF). */
static struct dns_req *dns_names_lookup(struct dns *d, enum dns_kind kind, int type,
					const char *name, dns_names_cb cb, void *arg)
{
	char key[DNS_NAMESZ];
	struct dns_req *req;

	if (dns_name_norm(key, name) < 0 || (req = dns_req_new(d, kind, arg)) == NULL)
		return NULL;
	req->cb.names = cb;
	dns_lookup(req, type, key);
	return req;
}

struct dns_req *dns_ns(struct dns *d, const char *domain, dns_names_cb cb, void *arg)
{
	return dns_names_lookup(d, DK_NS, T_NS, domain, cb, arg);
}

struct dns_req *dns_txt(struct dns *d, const char *name, dns_names_cb cb, void *arg)
{
	return dns_names_lookup(d, DK_TXT, T_TXT, name, cb, arg);
}

struct dns_req *dns_mx(struct dns *d, const char *domain, dns_names_cb cb, void *arg)
{
	return dns_names_lookup(d, DK_MX, T_MX, domain, cb, arg);
}

struct dns_req *dns_spf(struct dns *d, const char *domain, dns_names_cb cb, void *arg)
{
	return dns_names_lookup(d, DK_SPF, T_SPF, domain, cb, arg);
}

struct dns_req *dns_addrs6(struct dns *d, const char *name, dns_addrs6_cb cb, void *arg)
{
	char key[DNS_NAMESZ];
	struct dns_req *req;

	if (dns_name_norm(key, name) < 0 || (req = dns_req_new(d, DK_ADDRS6, arg)) == NULL)
		return NULL;
	req->cb.addrs6 = cb;
	dns_lookup(req, T_AAAA, key);
	return req;
}

void dns_cancel(struct dns_req *req)
{
	if (req == NULL)
		return;
	if (req->q != NULL)
		req->q->req = NULL;
	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		req->d->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	if (req->kind == DK_NS || req->kind == DK_TXT || req->kind == DK_MX || req->kind == DK_SPF)
		free(req->u.names);
	event_free(req->ev);
	free(req);
}

/* ---- c-ares on the loop ---- */

static void dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	/* May close fd and free its dns_sock: only d is used afterwards. */
	ares_process_fd(d->channel, what & EV_READ ? fd : ARES_SOCKET_BAD,
			what & EV_WRITE ? fd : ARES_SOCKET_BAD);
	dns_timer_arm(d);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_arm(d);
}

/*
 * dns_sock_state - c-ares opened, closed or changed interest in a socket.
 * If no event can be allocated the socket goes unwatched and its queries
 * end by timeout: slower, never stuck.
 */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	struct dns_sock **pp, *s;

	for (pp = &d->socks; (s = *pp) != NULL; pp = &s->next)
		if (s->fd == fd)
			break;
	if (what == 0) {
		if (s != NULL) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return;
		if ((s->ev = event_new(d->base, fd, what | EV_PERSIST, dns_sock_cb, d)) == NULL) {
			free(s);
			return;
		}
		s->fd = fd;
		s->what = what;
		s->next = d->socks;
		d->socks = s;
	} else if (s->what != what) {
		event_del(s->ev);
		event_assign(s->ev, d->base, fd, what | EV_PERSIST, dns_sock_cb, d);
		s->what = what;
	}
	event_add(s->ev, NULL);
}

/*
 * dns_servers_csv - "ip[:port] [ip6]:port ip6 ..." (white space and/or
 * commas) into the "ip:port,[ip6]:port" that ares_set_servers_ports_csv
 * takes. Every address is checked here, so a typo is reported as such
 * instead of being half-understood by c-ares. Returns the number of
 * servers, or -1 with a message in err.
 */
static int dns_servers_csv(const char *in, char *out, size_t outsz, char *err, size_t errsz)
{
	const char *sep = " \t\r\n,";
	size_t used = 0;
	int n = 0;

	out[0] = '\0';
	for (in += strspn(in, sep); *in != '\0'; in += strspn(in, sep)) {
		size_t len = strcspn(in, sep);
		char tok[80], *host = tok, *port = NULL, *end;
		unsigned char bin[16];
		unsigned long pn = 53;
		int v6, w;

		if (len >= sizeof(tok)) {
			snprintf(err, errsz, "dns: resolver \"%.*s...\" is too long", 20, in);
			return -1;
		}
		memcpy(tok, in, len);
		tok[len] = '\0';
		in += len;
		if (tok[0] == '[') {
			host = tok + 1;
			if ((end = strchr(host, ']')) == NULL || (end[1] != '\0' && end[1] != ':'))
				goto bad;
			*end = '\0';
			if (end[1] == ':')
				port = end + 2;
		} else if (inet_pton(AF_INET6, tok, bin) != 1 && (end = strchr(tok, ':')) != NULL) {
			*end = '\0';
			port = end + 1;
		}
		v6 = inet_pton(AF_INET6, host, bin) == 1;
		if (!v6 && (tok[0] == '[' || inet_pton(AF_INET, host, bin) != 1))
			goto bad;
		if (port != NULL) {
			if (port[0] < '0' || port[0] > '9')
				goto bad;
			pn = strtoul(port, &end, 10);
			if (*end != '\0' || pn == 0 || pn > 65535)
				goto bad;
		}
		w = snprintf(out + used, outsz - used, "%s%s%s%s:%lu", n > 0 ? "," : "",
			     v6 ? "[" : "", host, v6 ? "]" : "", pn);
		if (w < 0 || (size_t)w >= outsz - used) {
			snprintf(err, errsz, "dns: too many resolvers");
			return -1;
		}
		used += (size_t)w;
		n++;
		continue;
	bad:
		snprintf(err, errsz, "dns: bad resolver address \"%.*s\"", (int)len, in - len);
		return -1;
	}
	return n;
}

int dns_resolvers_check(const char *resolvers, char *err, size_t errsz)
{
	char csv[DNS_SERVERS_CSV];

	return resolvers == NULL || dns_servers_csv(resolvers, csv, sizeof(csv), err, errsz) >= 0
		   ? 0
		   : -1;
}

/* ---- life cycle ---- */

struct dns *dns_new(struct event_base *base, const char *resolvers, int timeout_ms,
		    int cache_entries, char *err, size_t errsz)
{
	struct ares_options opt;
	char csv[DNS_SERVERS_CSV];
	struct dns *d;
	int r, nservers = 0;
	uint32_t nb = 16;

	if (timeout_ms <= 0 || cache_entries < 0 || cache_entries > DNS_CACHE_MAX) {
		snprintf(err, errsz, "dns: bad timeout (%d ms) or cache size (%d)", timeout_ms,
			 cache_entries);
		return NULL;
	}
	if (resolvers != NULL &&
	    (nservers = dns_servers_csv(resolvers, csv, sizeof(csv), err, errsz)) < 0)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errsz, "dns: out of memory");
		return NULL;
	}
	d->base = base;
	d->cap = cache_entries;
	if (cache_entries > 0) {
		while (nb < (uint32_t)cache_entries)
			nb <<= 1;
		d->mask = nb - 1;
		d->buckets = calloc(nb, sizeof(*d->buckets));
		d->ring = calloc((size_t)cache_entries, sizeof(*d->ring));
	}
	d->timer = evtimer_new(base, dns_timer_cb, d);
	if (d->timer == NULL || (cache_entries > 0 && (d->buckets == NULL || d->ring == NULL))) {
		snprintf(err, errsz, "dns: out of memory");
		dns_free(&d);
		return NULL;
	}
	/*
	 * Reference-counted by c-ares: each channel holds one reference and
	 * dns_free gives it back, so independent users in one process (the
	 * daemon, mxguardctl, tests) need not agree on who initializes.
	 */
	if ((r = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errsz, "dns: c-ares: %s", ares_strerror(r));
		dns_free(&d);
		return NULL;
	}
	d->have_lib = 1;
	memset(&opt, 0, sizeof(opt));
	opt.sock_state_cb = dns_sock_state;
	opt.sock_state_cb_data = d;
	opt.timeout = timeout_ms;
	opt.tries = DNS_TRIES;
	/* Only fully-qualified names are asked: no search list, no HOSTALIASES. */
	opt.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	r = ares_init_options(&d->channel, &opt,
			      ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				  ARES_OPT_FLAGS);
	if (r != ARES_SUCCESS) {
		snprintf(err, errsz, "dns: c-ares: %s", ares_strerror(r));
		dns_free(&d);
		return NULL;
	}
	d->have_channel = 1;
	if (nservers > 0 && (r = ares_set_servers_ports_csv(d->channel, csv)) != ARES_SUCCESS) {
		snprintf(err, errsz, "dns: resolvers: %s", ares_strerror(r));
		dns_free(&d);
		return NULL;
	}
	return d;
}

/*
 * dns_free - cancel every request, then destroy the channel. c-ares calls
 * the orphaned queries back with ARES_EDESTRUCTION (they free themselves)
 * and reports its sockets closed (their events go).
 */
void dns_set_latency(struct dns *d, struct hist *h)
{
	d->latency = h;
}

void dns_free(struct dns **dp)
{
	struct dns *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	d->closing = 1;
	while (d->reqs != NULL)
		dns_cancel(d->reqs);
	if (d->have_channel)
		ares_destroy(d->channel);
	if (d->have_lib)
		ares_library_cleanup();
	while (d->socks != NULL) {
		struct dns_sock *s = d->socks;

		d->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (d->timer != NULL)
		event_free(d->timer);
	dns_cache_free(d);
	free(d);
}
