/*
 * spf.c - SPF check_host() (RFC 7208) on the event loop.
 *
 * The parser reads a record term by term (spf_term_next) with explicit
 * bounds and no recursion: every byte of a TXT record comes from any zone
 * on the Internet. A record is checked whole before it is evaluated (a
 * syntax error anywhere is a permerror, RFC 7208 4.6), then evaluated a
 * term at a time, re-reading the terms instead of storing them, so a check
 * holds only the record texts of the domains it is inside.
 *
 * Evaluation is a small machine driven by dns.c's callbacks. include pushes
 * a frame (the included domain's record), redirect replaces the current
 * frame; the frames are an array bounded by the DNS-term limit (every
 * include and redirect counts, so at most SPF_DNS_TERMS + 1 frames). When
 * a frame ends, spf_frame_done pops it and tells its parent whether the
 * include matched; that walk is a loop, and the only mutual calls
 * (spf_eval -> spf_frame_done -> spf_eval) pop a frame each, so the stack
 * stays within the frame bound too.
 *
 * Limits (RFC 7208 4.6.4): at most 10 DNS-querying terms (include, a, mx,
 * ptr, exists, redirect), at most 2 void lookups (NXDOMAIN or no data) in
 * a, mx and exists terms, at most 10 MX names per mx; a record over
 * SPF_RECORD_MAX bytes or SPF_TERMS_MAX terms, or two SPF records, is a
 * permerror. One timer bounds the whole check (temperror).
 *
 * Not done: "ptr" never matches (it counts as a DNS term; RFC 7208 5.5 asks
 * that it not be used) and "exp" is ignored (nothing here explains a fail).
 *
 * The result reaches the caller only through a zero-delay event, as dns.c
 * does, so a caller is never called back from inside spf_check().
 *
 * This module never logs and never exits.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "dns.h"
#include "spf.h"

#define SPF_FRAMES (SPF_DNS_TERMS + 1)
#define SPF_SENDER_MAX 320 /* local part (64) @ domain (253), rounded */
#define SPF_MACRO_PARTS 128

/* ---- the parser ---------------------------------------------------------- */

static int spf_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int spf_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* spf_delim - a macro delimiter (RFC 7208 7.1). */
static int spf_delim(int c)
{
	return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/*
 * spf_macro_len - the macro at s[0..n) (s[0] is '%'): its length, or -1
 * when it is not one of %{letter digits [r] delimiters}, %%, %_, %-.
 */
static int spf_macro_len(const char *s, size_t n)
{
	size_t i = 2;

	if (n >= 2 && (s[1] == '%' || s[1] == '_' || s[1] == '-'))
		return 2;
	if (n < 4 || s[1] != '{' || s[2] == '\0' || strchr("slodiphcrtvSLODIPHCRTV", s[2]) == NULL)
		return -1;
	for (i = 3; i < n && spf_digit(s[i]); i++)
		if (i - 3 >= 3) /* "128" is the most a transformer can mean */
			return -1;
	if (i < n && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < n && spf_delim(s[i]))
		i++;
	return i < n && s[i] == '}' ? (int)i + 1 : -1;
}

/*
 * spf_spec_end - the end of a domain-spec starting at s[0..n): at a '/'
 * outside a macro (a CIDR length follows), else at n. -1 on a bad macro or
 * a byte that a macro-string cannot hold.
 */
static int spf_spec_end(const char *s, size_t n, size_t *end)
{
	size_t i = 0;

	while (i < n && s[i] != '/') {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int m = spf_macro_len(s + i, n - i);

			if (m < 0)
				return -1;
			i += (size_t)m;
		} else if (c < 0x21 || c > 0x7e) {
			return -1;
		} else {
			i++;
		}
	}
	*end = i;
	return 0;
}

/*
 * spf_spec_ok - a domain-spec without macros must look like a domain name
 * of at least two labels (RFC 7208's domain-end: "." toplabel).
 */
static int spf_spec_ok(const char *s, size_t n)
{
	size_t label = 0, labels = 0;

	if (memchr(s, '%', n) != NULL)
		return n > 0;
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > SPF_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			labels++;
		} else if (spf_alpha(c) || spf_digit(c) || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && labels > 0;
}

/* spf_name_ok - an expanded target that can be looked up. */
static int spf_name_ok(const char *name)
{
	return strchr(name, '%') == NULL && spf_spec_ok(name, strlen(name));
}

/* spf_cidr - "/N" at s[0..n) with 0 <= N <= max, no leading zero; its length, or -1. */
static int spf_cidr(const char *s, size_t n, int max, int *bits)
{
	size_t i = 1;
	int v = 0;

	if (n < 2 || s[0] != '/' || !spf_digit(s[1]) || (s[1] == '0' && n > 2 && spf_digit(s[2])))
		return -1;
	while (i < n && spf_digit(s[i]) && i <= 3)
		v = v * 10 + (s[i++] - '0');
	if (v > max || (i < n && spf_digit(s[i])))
		return -1;
	*bits = v;
	return (int)i;
}

/* spf_dual_cidr - [ "/" ip4-len ] [ "//" ip6-len ] filling all of s[0..n). */
static int spf_dual_cidr(const char *s, size_t n, struct spf_term *t)
{
	int k;

	if (n > 0 && !(n >= 2 && s[1] == '/')) {
		if ((k = spf_cidr(s, n, 32, &t->cidr4)) < 0)
			return -1;
		s += k;
		n -= (size_t)k;
	}
	if (n > 0) {
		if (n < 3 || s[0] != '/' || (k = spf_cidr(s + 1, n - 1, 128, &t->cidr6)) < 0 ||
		    (size_t)k != n - 1)
			return -1;
	}
	return 0;
}

/* spf_ip - "ip4:" or "ip6:" network and optional CIDR length at s[0..n). */
static int spf_ip(const char *s, size_t n, struct spf_term *t)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t alen = 0;
	int v6 = t->kind == SPF_IP6;

	while (alen < n && s[alen] != '/')
		alen++;
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, t->ip) != 1)
		return -1;
	if (alen < n && spf_cidr(s + alen, n - alen, v6 ? 128 : 32, v6 ? &t->cidr6 : &t->cidr4) !=
			    (int)(n - alen))
		return -1;
	return 0;
}

static const struct {
	const char *name;
	enum spf_kind kind;
} spf_mechs[] = {
    {"all", SPF_ALL}, {"include", SPF_INCLUDE}, {"a", SPF_A},	  {"mx", SPF_MX},
    {"ptr", SPF_PTR}, {"ip4", SPF_IP4},		{"ip6", SPF_IP6}, {"exists", SPF_EXISTS},
};

/* spf_term_parse - one term rec[0..n) (no spaces in it) into t. */
static int spf_term_parse(const char *s, size_t n, struct spf_term *t, const char **why)
{
	size_t nl = 0, end;
	int qualified = 0;

	memset(t, 0, sizeof(*t));
	t->qual = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (n > 0 && strchr("+-~?", s[0]) != NULL) {
		t->qual = s[0];
		qualified = 1;
		s++;
		n--;
	}
	/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
	if (n == 0 || !spf_alpha((unsigned char)s[0])) {
		*why = "bad term";
		return -1;
	}
	while (nl < n && (spf_alpha((unsigned char)s[nl]) || spf_digit(s[nl]) || s[nl] == '-' ||
			  s[nl] == '_' || s[nl] == '.'))
		nl++;
	if (nl < n && s[nl] == '=') {
		const char *v = s + nl + 1;
		size_t vn = n - nl - 1;

		if (qualified) {
			*why = "qualified modifier";
			return -1;
		}
		t->kind = nl == 8 && strncasecmp(s, "redirect", 8) == 0 ? SPF_REDIRECT
			  : nl == 3 && strncasecmp(s, "exp", 3) == 0	? SPF_EXP
									: SPF_MODIFIER;
		/* A modifier's value is a macro-string: '/' is a literal there. */
		for (size_t i = 0; i < vn;) {
			int m = v[i] == '%' ? spf_macro_len(v + i, vn - i) : 1;

			if (m < 0 || (unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e) {
				*why = "bad modifier value";
				return -1;
			}
			i += (size_t)m;
		}
		if (t->kind != SPF_MODIFIER && !spf_spec_ok(v, vn)) {
			*why = "bad domain in modifier";
			return -1;
		}
		t->domain = v;
		t->domlen = vn;
		return 0;
	}
	for (size_t i = 0;; i++) {
		if (i == sizeof(spf_mechs) / sizeof(spf_mechs[0])) {
			*why = "unknown mechanism";
			return -1;
		}
		if (strlen(spf_mechs[i].name) == nl && strncasecmp(s, spf_mechs[i].name, nl) == 0) {
			t->kind = spf_mechs[i].kind;
			break;
		}
	}
	s += nl;
	n -= nl;
	*why = "bad mechanism argument";
	switch (t->kind) {
	case SPF_ALL:
		return n == 0 ? 0 : -1;
	case SPF_IP4:
	case SPF_IP6:
		return n > 1 && s[0] == ':' ? spf_ip(s + 1, n - 1, t) : -1;
	case SPF_INCLUDE:
	case SPF_EXISTS:
		if (n < 2 || s[0] != ':' || spf_spec_end(s + 1, n - 1, &end) < 0 || end != n - 1 ||
		    !spf_spec_ok(s + 1, end))
			return -1;
		t->domain = s + 1;
		t->domlen = end;
		return 0;
	case SPF_A:
	case SPF_MX:
	case SPF_PTR:
		if (n > 0 && s[0] == ':') {
			if (spf_spec_end(s + 1, n - 1, &end) < 0 || !spf_spec_ok(s + 1, end))
				return -1;
			t->domain = s + 1;
			t->domlen = end;
			s += end + 1;
			n -= end + 1;
		}
		if (t->kind == SPF_PTR)
			return n == 0 ? 0 : -1;
		return spf_dual_cidr(s, n, t);
	default:
		return -1;
	}
}

int spf_term_next(const char *rec, size_t len, size_t *pos, struct spf_term *t, const char **why)
{
	size_t p = *pos, start;

	while (p < len && rec[p] == ' ')
		p++;
	if (p >= len) {
		*pos = len;
		return 0;
	}
	start = p;
	while (p < len && rec[p] != ' ')
		p++;
	*pos = p;
	return spf_term_parse(rec + start, p - start, t, why) < 0 ? -1 : 1;
}

int spf_record_check(const char *rec, size_t len, const char **why)
{
	struct spf_term t;
	size_t pos = 6;
	int n = 0, redirects = 0, exps = 0, r;

	if (len > SPF_RECORD_MAX) {
		*why = "record too long";
		return -1;
	}
	if (len < 6 || strncasecmp(rec, "v=spf1", 6) != 0 || (len > 6 && rec[6] != ' ')) {
		*why = "not an SPF record";
		return -1;
	}
	while ((r = spf_term_next(rec, len, &pos, &t, why)) > 0) {
		if (++n > SPF_TERMS_MAX) {
			*why = "too many terms";
			return -1;
		}
		redirects += t.kind == SPF_REDIRECT;
		exps += t.kind == SPF_EXP;
	}
	if (r < 0)
		return -1;
	if (redirects > 1 || exps > 1) {
		*why = "repeated modifier";
		return -1;
	}
	return n;
}

/* ---- macros -------------------------------------------------------------- */

/* spf_macro_value - the value of macro letter c into out (SPF_SENDER_MAX). */
static void spf_macro_value(int c, const struct spf_macro_ctx *m, char *out, size_t outsz)
{
	const char *at = strrchr(m->sender, '@');

	switch (c | 0x20) {
	case 's':
		snprintf(out, outsz, "%s", m->sender);
		break;
	case 'l':
		snprintf(out, outsz, "%.*s", at ? (int)(at - m->sender) : 0, m->sender);
		if (out[0] == '\0')
			snprintf(out, outsz, "postmaster");
		break;
	case 'o':
		snprintf(out, outsz, "%s", at ? at + 1 : m->sender);
		break;
	case 'd':
		snprintf(out, outsz, "%s", m->domain);
		break;
	case 'h':
		snprintf(out, outsz, "%s", m->helo ? m->helo : "");
		break;
	case 'v':
		snprintf(out, outsz, "%s", m->af == AF_INET ? "in-addr" : "ip6");
		break;
	case 'i':
		if (m->af == AF_INET) {
			snprintf(out, outsz, "%u.%u.%u.%u", m->ip[0], m->ip[1], m->ip[2], m->ip[3]);
		} else {
			size_t o = 0;

			for (int i = 0; i < 16 && o + 4 < outsz; i++)
				o += (size_t)snprintf(out + o, outsz - o, "%s%x.%x", i ? "." : "",
						      m->ip[i] >> 4, m->ip[i] & 15);
		}
		break;
	default: /* 'p' (and c, r, t, which only exp may use) */
		snprintf(out, outsz, "unknown");
		break;
	}
}

/*
 * spf_macro_apply - value split at the delimiters delims (default "."),
 * reversed if rev, the rightmost keep parts (0: all), joined with dots,
 * appended to out at *o. Returns -1 when out is full.
 */
static int spf_macro_apply(char *value, const char *delims, int keep, int rev, char *out,
			   size_t outsz, size_t *o)
{
	char *parts[SPF_MACRO_PARTS];
	int n = 0, first;

	parts[n++] = value;
	for (char *p = value; *p != '\0'; p++)
		if (strchr(delims, *p) != NULL) {
			*p = '\0';
			if (n == SPF_MACRO_PARTS)
				return -1;
			parts[n++] = p + 1;
		}
	if (rev)
		for (int i = 0; i < n / 2; i++) {
			char *tmp = parts[i];

			parts[i] = parts[n - 1 - i];
			parts[n - 1 - i] = tmp;
		}
	first = keep > 0 && keep < n ? n - keep : 0;
	for (int i = first; i < n; i++) {
		size_t len = strlen(parts[i]) + (i > first);

		if (*o + len >= outsz)
			return -1;
		*o +=
		    (size_t)snprintf(out + *o, outsz - *o, "%s%s", i > first ? "." : "", parts[i]);
	}
	return 0;
}

int spf_expand(const char *spec, size_t len, const struct spf_macro_ctx *m, char *out, size_t outsz)
{
	char buf[4 * SPF_NAME_MAX]; /* long enough for macros that are cut afterwards */
	size_t o = 0, i = 0;
	char *p;

	while (i < len) {
		if (spec[i] != '%') {
			if (o + 1 >= sizeof(buf))
				return -1;
			buf[o++] = spec[i++];
			continue;
		}
		int ml = spf_macro_len(spec + i, len - i);

		if (ml < 0)
			return -1;
		if (ml == 2) {
			if (o + 3 >= sizeof(buf))
				return -1;
			if (spec[i + 1] == '%')
				buf[o++] = '%';
			else if (spec[i + 1] == '_')
				buf[o++] = ' ';
			else
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%%20");
		} else {
			char value[SPF_SENDER_MAX * 2], delims[8] = "";
			size_t j = (size_t)i + 3, nd = 0;
			int keep = 0, rev = 0;

			spf_macro_value(spec[i + 2], m, value, sizeof(value));
			while (spf_digit(spec[j]))
				keep = keep * 10 + (spec[j++] - '0');
			if (j > (size_t)i + 3 && keep == 0)
				return -1; /* "%{d0}": RFC 7208 7.1 */
			if (spec[j] == 'r' || spec[j] == 'R') {
				rev = 1;
				j++;
			}
			while (spec[j] != '}' && nd + 1 < sizeof(delims))
				delims[nd++] = spec[j++];
			delims[nd] = '\0';
			if (spf_macro_apply(value, nd ? delims : ".", keep, rev, buf, sizeof(buf),
					    &o) < 0)
				return -1;
		}
		i += (size_t)ml;
	}
	buf[o] = '\0';
	while (o > 0 && buf[o - 1] == '.')
		buf[--o] = '\0';
	/* RFC 7208 4.8: over 253 characters, labels go from the left. */
	p = buf;
	while (o - (size_t)(p - buf) > SPF_NAME_MAX) {
		char *dot = strchr(p, '.');

		if (dot == NULL)
			return -1;
		p = dot + 1;
	}
	if (strlen(p) + 1 > outsz)
		return -1;
	memcpy(out, p, strlen(p) + 1);
	return (int)strlen(out);
}

/* ---- the check ----------------------------------------------------------- */

struct spf_frame {
	char domain[SPF_NAME_MAX + 1];
	char rec[SPF_RECORD_MAX + 1];
	size_t len, pos;
	int redirected;	     /* reached by redirect: "none" there is a permerror */
	struct spf_term cur; /* the term waiting for DNS */
};

struct spf_req {
	struct dns *dns;
	struct event *timer, *deliver;
	struct dns_req *dreq;
	spf_cb cb;
	void *arg;
	struct spf_macro_ctx mc;
	char sender[SPF_SENDER_MAX], helo[SPF_NAME_MAX + 1];
	int alen; /* 4 or 16 */
	int terms, voids, depth, done;
	/* An mx term: the exchange names, looked up one at a time. */
	char mx[SPF_MX_MAX][SPF_NAME_MAX + 1];
	int nmx, imx;
	struct spf_outcome out;
	struct spf_frame f[SPF_FRAMES];
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = {"none",	"neutral",   "pass",	 "fail",
					    "softfail", "temperror", "permerror"};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

static void spf_eval(struct spf_req *r);
static void spf_lookup_record(struct spf_req *r);

/* spf_finish - the answer is known: deliver it from the loop. */
static void spf_finish(struct spf_req *r, enum spf_result res, const char *why)
{
	if (r->done)
		return;
	r->done = 1;
	r->out.result = res;
	/* Broadness is about what authorised a pass; an include's "-all" says nothing. */
	if (res != SPF_PASS)
		r->out.broad = 0;
	snprintf(r->out.why, sizeof(r->out.why), "%s", why);
	if (r->dreq != NULL) {
		dns_cancel(r->dreq);
		r->dreq = NULL;
	}
	evtimer_del(r->timer);
	event_active(r->deliver, EV_TIMEOUT, 1);
}

static void spf_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct spf_req *r = arg;
	struct spf_outcome out = r->out;
	spf_cb cb = r->cb;
	void *cbarg = r->arg;

	spf_cancel(r);
	cb(&out, cbarg);
}

static void spf_timeout(evutil_socket_t fd, short what, void *arg)
{
	spf_finish(arg, SPF_TEMPERROR, "timeout");
}

static enum spf_result spf_qual(char q)
{
	return q == '-' ? SPF_FAIL : q == '~' ? SPF_SOFTFAIL : q == '?' ? SPF_NEUTRAL : SPF_PASS;
}

/* spf_broad - would this matching term authorise nearly anyone? */
static int spf_broad(const struct spf_term *t, int alen)
{
	if (t->kind == SPF_ALL)
		return 1;
	return alen == 4 ? t->cidr4 < 16 : t->cidr6 < 32;
}

/*
 * spf_frame_done - the current frame's result is res: up the include chain
 * until a frame goes on evaluating or the check ends.
 */
static void spf_frame_done(struct spf_req *r, enum spf_result res, const char *why)
{
	for (;;) {
		if (res == SPF_NONE && r->f[r->depth].redirected) {
			res = SPF_PERMERROR;
			why = "redirect to no record";
		}
		if (r->depth == 0) {
			spf_finish(r, res, why);
			return;
		}
		r->depth--;
		switch (res) {
		case SPF_PASS: /* the include matched: its qualifier decides */
			res = spf_qual(r->f[r->depth].cur.qual);
			continue;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL: /* no match: the including record goes on */
			spf_eval(r);
			return;
		case SPF_TEMPERROR:
			continue;
		default: /* permerror, and none (RFC 7208 5.2) */
			if (res == SPF_NONE)
				why = "include of no record";
			res = SPF_PERMERROR;
			continue;
		}
	}
}

/* spf_match - the current term of the current frame matched. */
static void spf_match(struct spf_req *r, const struct spf_term *t)
{
	/* The innermost matching term is what authorised the client. */
	r->out.broad = spf_broad(t, r->alen);
	spf_frame_done(r, spf_qual(t->qual), t->kind == SPF_ALL ? "all" : "match");
}

/* spf_net_in - is the client in addr/bits (alen bytes)? */
static int spf_net_in(const struct spf_req *r, const unsigned char *addr, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(addr, r->mc.ip, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((addr[full] ^ r->mc.ip[full]) & (0xff << (8 - rest))) == 0;
}

/* spf_void - a lookup answered nothing: count it (RFC 7208 4.6.4). */
static int spf_void(struct spf_req *r)
{
	if (++r->voids > SPF_VOID_MAX) {
		spf_finish(r, SPF_PERMERROR, "void-lookups");
		return -1;
	}
	return 0;
}

static void spf_addrs_cb(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg);
static void spf_addrs6_cb(enum dns_status st, const unsigned char (*a6)[16], int n, void *arg);

/* spf_addr_lookup - the A (IPv4 client) or AAAA records of name for the current term. */
static void spf_addr_lookup(struct spf_req *r, const char *name, int force_a)
{
	if (r->alen == 4 || force_a)
		r->dreq = dns_addrs(r->dns, name, spf_addrs_cb, r);
	else
		r->dreq = dns_addrs6(r->dns, name, spf_addrs6_cb, r);
	if (r->dreq == NULL)
		spf_finish(r, SPF_TEMPERROR, "dns");
}

/* spf_addrs_done - addresses for a, mx or exists are here (alen bytes each). */
static void spf_addrs_done(struct spf_req *r, enum dns_status st, const unsigned char *a, int alen,
			   int n)
{
	struct spf_frame *f = &r->f[r->depth];
	const struct spf_term *t = &f->cur;
	int bits = r->alen == 4 ? t->cidr4 : t->cidr6;

	if (st == DNS_FAIL) {
		spf_finish(r, SPF_TEMPERROR, "dns");
		return;
	}
	if (t->kind == SPF_EXISTS) {
		if (st == DNS_OK && n > 0) {
			spf_match(r, t);
			return;
		}
	} else {
		for (int i = 0; st == DNS_OK && alen == r->alen && i < n; i++)
			if (spf_net_in(r, a + (size_t)i * (size_t)alen, bits)) {
				spf_match(r, t);
				return;
			}
	}
	/* Only the term's own lookup counts as void, not an MX host's. */
	if (st == DNS_NONE && t->kind != SPF_MX && spf_void(r) < 0)
		return;
	if (t->kind == SPF_MX && ++r->imx < r->nmx) {
		spf_addr_lookup(r, r->mx[r->imx], 0);
		return;
	}
	spf_eval(r);
}

static void spf_addrs_cb(enum dns_status st, const unsigned char (*a4)[4], int n, void *arg)
{
	struct spf_req *r = arg;

	r->dreq = NULL;
	spf_addrs_done(r, st, (const unsigned char *)a4, 4, n);
}

static void spf_addrs6_cb(enum dns_status st, const unsigned char (*a6)[16], int n, void *arg)
{
	struct spf_req *r = arg;

	r->dreq = NULL;
	spf_addrs_done(r, st, (const unsigned char *)a6, 16, n);
}

static void spf_mx_cb(enum dns_status st, const char *const *names, int n, void *arg)
{
	struct spf_req *r = arg;

	r->dreq = NULL;
	if (st == DNS_FAIL) {
		spf_finish(r, SPF_TEMPERROR, "dns");
		return;
	}
	if (st != DNS_OK || n == 0) {
		if (spf_void(r) == 0)
			spf_eval(r);
		return;
	}
	if (n > SPF_MX_MAX) {
		spf_finish(r, SPF_PERMERROR, "mx-limit");
		return;
	}
	for (int i = 0; i < n; i++)
		snprintf(r->mx[i], sizeof(r->mx[i]), "%s", names[i]);
	r->nmx = n;
	r->imx = 0;
	spf_addr_lookup(r, r->mx[0], 0);
}

/*
 * spf_target - the current term's domain (expanded), or the frame's domain
 * when the term has none. Returns -1 after finishing r with a permerror.
 */
static int spf_target(struct spf_req *r, const struct spf_term *t, char *out, size_t outsz)
{
	struct spf_frame *f = &r->f[r->depth];

	if (t->domain == NULL) {
		snprintf(out, outsz, "%s", f->domain);
		return 0;
	}
	r->mc.domain = f->domain;
	if (spf_expand(t->domain, t->domlen, &r->mc, out, outsz) < 0) {
		spf_finish(r, SPF_PERMERROR, "bad-macro");
		return -1;
	}
	return 0;
}

/*
 * spf_eval - go on with the current frame's terms: the next match, the
 * next DNS lookup, or the end of the record (redirect, or neutral).
 */
static void spf_eval(struct spf_req *r)
{
	struct spf_frame *f = &r->f[r->depth];
	struct spf_term *t = &f->cur;
	char target[SPF_NAME_MAX + 1];
	const char *why;
	int k;

	while ((k = spf_term_next(f->rec, f->len, &f->pos, t, &why)) > 0) {
		switch (t->kind) {
		case SPF_ALL:
			spf_match(r, t);
			return;
		case SPF_IP4:
		case SPF_IP6:
			if ((t->kind == SPF_IP4) == (r->alen == 4) &&
			    spf_net_in(r, t->ip, r->alen == 4 ? t->cidr4 : t->cidr6)) {
				spf_match(r, t);
				return;
			}
			continue;
		case SPF_REDIRECT:
		case SPF_EXP:
		case SPF_MODIFIER:
			continue;
		default:
			break;
		}
		if (++r->terms > SPF_DNS_TERMS) {
			spf_finish(r, SPF_PERMERROR, "dns-term-limit");
			return;
		}
		if (t->kind == SPF_PTR)
			continue; /* never matches: see the top of this file */
		if (spf_target(r, t, target, sizeof(target)) < 0)
			return;
		/*
		 * A macro can make a name DNS cannot hold (a local part with
		 * "!" in it): nothing to look up, as if nothing answered.
		 */
		if (t->kind != SPF_INCLUDE && !spf_name_ok(target)) {
			if (spf_void(r) < 0)
				return;
			continue;
		}
		switch (t->kind) {
		case SPF_INCLUDE:
			if (r->depth + 1 >= SPF_FRAMES) { /* cannot happen: terms bound it */
				spf_finish(r, SPF_PERMERROR, "depth");
				return;
			}
			r->depth++;
			snprintf(r->f[r->depth].domain, sizeof(r->f[r->depth].domain), "%s",
				 target);
			r->f[r->depth].redirected = 0;
			spf_lookup_record(r);
			return;
		case SPF_MX:
			r->dreq = dns_mx(r->dns, target, spf_mx_cb, r);
			if (r->dreq == NULL)
				spf_finish(r, SPF_TEMPERROR, "dns");
			return;
		default: /* a, exists */
			spf_addr_lookup(r, target, t->kind == SPF_EXISTS);
			return;
		}
	}
	if (k < 0) { /* checked before: cannot happen */
		spf_finish(r, SPF_PERMERROR, why);
		return;
	}
	/* The end: a redirect (anywhere in the record) takes over this frame. */
	for (size_t pos = 6; spf_term_next(f->rec, f->len, &pos, t, &why) > 0;) {
		if (t->kind != SPF_REDIRECT)
			continue;
		if (++r->terms > SPF_DNS_TERMS) {
			spf_finish(r, SPF_PERMERROR, "dns-term-limit");
			return;
		}
		if (spf_target(r, t, target, sizeof(target)) < 0)
			return;
		snprintf(f->domain, sizeof(f->domain), "%s", target);
		f->redirected = 1;
		spf_lookup_record(r);
		return;
	}
	spf_frame_done(r, SPF_NEUTRAL, "no-match");
}

static void spf_record_cb(enum dns_status st, const char *const *recs, int n, void *arg)
{
	struct spf_req *r = arg;
	struct spf_frame *f = &r->f[r->depth];
	const char *why;

	r->dreq = NULL;
	if (st == DNS_FAIL) {
		spf_finish(r, SPF_TEMPERROR, "dns");
		return;
	}
	if (st != DNS_OK || n == 0) {
		spf_frame_done(r, SPF_NONE, "no-record");
		return;
	}
	if (n > 1) {
		spf_finish(r, SPF_PERMERROR, "two-records");
		return;
	}
	f->len = strlen(recs[0]);
	if (f->len == 0 || f->len > SPF_RECORD_MAX) {
		spf_finish(r, SPF_PERMERROR, "record-too-long");
		return;
	}
	memcpy(f->rec, recs[0], f->len + 1);
	if (spf_record_check(f->rec, f->len, &why) < 0) {
		spf_finish(r, SPF_PERMERROR, "syntax");
		return;
	}
	f->pos = 6;
	spf_eval(r);
}

/* spf_lookup_record - the SPF record of the current frame's domain. */
static void spf_lookup_record(struct spf_req *r)
{
	struct spf_frame *f = &r->f[r->depth];

	/* A target that is no domain name has no record (RFC 7208 4.3). */
	if (!spf_name_ok(f->domain)) {
		spf_frame_done(r, SPF_NONE, "bad-domain");
		return;
	}
	r->dreq = dns_spf(r->dns, f->domain, spf_record_cb, r);
	if (r->dreq == NULL)
		spf_finish(r, SPF_TEMPERROR, "dns");
}

struct spf_req *spf_check(struct event_base *base, struct dns *d, const struct sockaddr *client,
			  const char *domain, const char *sender, const char *helo, int timeout_ms,
			  spf_cb cb, void *arg)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)client;
	struct spf_req *r = calloc(1, sizeof(*r));
	struct timeval tv;

	if (r == NULL)
		return NULL;
	r->timer = evtimer_new(base, spf_timeout, r);
	r->deliver = event_new(base, -1, 0, spf_deliver, r);
	if (r->timer == NULL || r->deliver == NULL) {
		spf_cancel(r);
		return NULL;
	}
	r->dns = d;
	r->cb = cb;
	r->arg = arg;
	snprintf(r->sender, sizeof(r->sender), "%s", sender);
	snprintf(r->helo, sizeof(r->helo), "%s", helo ? helo : "");
	r->mc.sender = r->sender;
	r->mc.helo = r->helo;
	snprintf(r->f[0].domain, sizeof(r->f[0].domain), "%s", domain);
	/* RFC 7208 5: an IPv4-mapped IPv6 client is an IPv4 client. */
	if (client->sa_family == AF_INET) {
		memcpy(r->mc.ip, &((const struct sockaddr_in *)(const void *)client)->sin_addr, 4);
		r->alen = 4;
	} else if (client->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(r->mc.ip, sin6->sin6_addr.s6_addr + 12, 4);
		r->alen = 4;
	} else if (client->sa_family == AF_INET6) {
		memcpy(r->mc.ip, sin6->sin6_addr.s6_addr, 16);
		r->alen = 16;
	}
	r->mc.af = r->alen == 16 ? AF_INET6 : AF_INET;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	if (r->alen == 0 || strlen(domain) > SPF_NAME_MAX)
		spf_finish(r, SPF_NONE, "bad-domain");
	else
		spf_lookup_record(r);
	return r;
}

void spf_cancel(struct spf_req *r)
{
	if (r == NULL)
		return;
	if (r->dreq != NULL)
		dns_cancel(r->dreq);
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->deliver != NULL)
		event_free(r->deliver);
	free(r);
}
