/*
 * test_spf.c - the SPF record parser (spf_record_check, spf_term_next) and
 * macro expansion (spf_expand), table-driven: valid and broken records,
 * the terms they yield, and RFC 7208's macro examples.
 */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "spf.h"

/* A record and the number of terms it has, or -1 (permerror). */
static const struct {
	const char *rec;
	int want;
} records[] = {
    {"v=spf1", 0},
    {"v=spf1 -all", 1},
    {"V=SPF1 IP4:192.0.2.0/24 ~ALL", 2},
    {"v=spf1  ip4:192.0.2.1   mx a:mail.example.com/24//64 -all ", 4},
    {"v=spf1 include:_spf.google.com ~all", 2},
    {"v=spf1 ip6:2001:db8::/32 ip6:2001:db8::1 -all", 3},
    {"v=spf1 a/24 mx//64 a//0 ptr ptr:example.org ?all", 6},
    {"v=spf1 redirect=_spf.example.com", 1},
    {"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", 2},
    {"v=spf1 -all exp=explain._spf.%{d} foo=bar%%baz", 3},
    {"v=spf1 a:%{d}", 1},
    {"v=spf10", -1},
    {"v=spf1x -all", -1},
    {"spf1 -all", -1},
    {"v=spf1 foo", -1},		      /* unknown mechanism */
    {"v=spf1 ip4:192.0.2.0/33", -1},  /* CIDR out of range */
    {"v=spf1 ip4:192.0.2.0/024", -1}, /* leading zero */
    {"v=spf1 ip4:192.0.2", -1},	      /* short address */
    {"v=spf1 ip4:192.0.2.1/", -1},
    {"v=spf1 ip6:2001:db8::/129", -1},
    {"v=spf1 ip6:192.0.2.1", -1},
    {"v=spf1 include", -1}, /* include needs a domain */
    {"v=spf1 include:", -1},
    {"v=spf1 include:localhost", -1}, /* one label */
    {"v=spf1 include:bad..example", -1},
    {"v=spf1 all:x", -1},
    {"v=spf1 a:example.com/24/64", -1},
    {"v=spf1 a:example.com//", -1},
    {"v=spf1 redirect=a.example redirect=b.example", -1},
    {"v=spf1 exp=a.example exp=b.example", -1},
    {"v=spf1 -redirect=a.example", -1}, /* a qualified modifier */
    {"v=spf1 exists:%{x}.example", -1}, /* unknown macro letter */
    {"v=spf1 exists:%{d", -1},
    {"v=spf1 exists:%{d1234}.example", -1},
    {"v=spf1 exists:%", -1},
    {"v=spf1 a:exa?mple.com", -1}, /* '?': a byte dns.c replaced */
    {"v=spf1 ip4:192.0.2.1 ?", -1},
    {"v=spf1 =x", -1},
};

/* A domain-spec, the macro context of RFC 7208 7.4, and the expansion (NULL: error). */
static const struct {
	const char *spec, *want;
} macros[] = {
    {"%{s}", "strong-bad@email.example.com"},
    {"%{o}", "email.example.com"},
    {"%{d}", "email.example.com"},
    {"%{d4}", "email.example.com"},
    {"%{d3}", "email.example.com"},
    {"%{d2}", "example.com"},
    {"%{d1}", "com"},
    {"%{dr}", "com.example.email"},
    {"%{d2r}", "example.email"},
    {"%{l}", "strong-bad"},
    {"%{l-}", "strong.bad"},
    {"%{lr}", "strong-bad"},
    {"%{lr-}", "bad.strong"},
    {"%{l1r-}", "strong"},
    {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
    {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
    {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
    {"%{h}.helo.example", "mx.email.example.com.helo.example"},
    {"%{p}.example", "unknown.example"},
    {"a%%b.example", "a%b.example"},
    {"%{d0}", NULL},
    {"%{q}", NULL},
    {"%{d", NULL},
};

int main(void)
{
	struct spf_macro_ctx m = {"strong-bad@email.example.com",
				  "email.example.com",
				  "mx.email.example.com",
				  AF_INET,
				  {192, 0, 2, 3}};
	struct spf_term t;
	const char *why = NULL, *rec;
	char out[SPF_NAME_MAX + 1];
	size_t pos;

	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
		int n = spf_record_check(records[i].rec, strlen(records[i].rec), &why);

		CHECK(n == records[i].want, "record '%s': got %d (%s)", records[i].rec, n,
		      n < 0 ? why : "ok");
	}
	/* The terms of one record, in order, with what they carry. */
	rec = "v=spf1 -ip4:192.0.2.0/24 ~a:mail.example.com/28//64 ?mx ip6:2001:db8::/48 "
	      "include:spf.example.net redirect=other.example";
	pos = 6;
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 1 && t.kind == SPF_IP4 &&
		  t.qual == '-' && t.cidr4 == 24 && memcmp(t.ip, "\xc0\x00\x02\x00", 4) == 0,
	      "ip4 term");
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 1 && t.kind == SPF_A &&
		  t.qual == '~' && t.cidr4 == 28 && t.cidr6 == 64 && t.domlen == 16 &&
		  strncmp(t.domain, "mail.example.com", 16) == 0,
	      "a term");
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 1 && t.kind == SPF_MX &&
		  t.qual == '?' && t.domain == NULL && t.cidr4 == 32 && t.cidr6 == 128,
	      "mx term");
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 1 && t.kind == SPF_IP6 &&
		  t.qual == '+' && t.cidr6 == 48 && t.ip[0] == 0x20 && t.ip[1] == 0x01,
	      "ip6 term");
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 1 && t.kind == SPF_INCLUDE &&
		  t.domlen == 15 && strncmp(t.domain, "spf.example.net", 15) == 0,
	      "include term");
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 1 && t.kind == SPF_REDIRECT &&
		  t.domlen == 13 && strncmp(t.domain, "other.example", 13) == 0,
	      "redirect term");
	CHECK(spf_term_next(rec, strlen(rec), &pos, &t, &why) == 0, "end of record");
	/* Limits: the record size and the number of terms. */
	{
		static char big[SPF_RECORD_MAX + 64];
		size_t o = (size_t)snprintf(big, sizeof(big), "v=spf1");
		int n;

		while (o + 3 < SPF_RECORD_MAX)
			o += (size_t)snprintf(big + o, sizeof(big) - o, " a");
		n = spf_record_check(big, o, &why);
		CHECK(n < 0 && strcmp(why, "too many terms") == 0, "%zu bytes of ' a': %d", o, n);
		memset(big + 6, ' ', sizeof(big) - 6);
		CHECK(spf_record_check(big, SPF_RECORD_MAX + 1, &why) < 0 &&
			  strcmp(why, "record too long") == 0,
		      "over SPF_RECORD_MAX");
		CHECK(spf_record_check(big, SPF_RECORD_MAX, &why) == 0, "SPF_RECORD_MAX of spaces");
	}
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		int n = spf_expand(macros[i].spec, strlen(macros[i].spec), &m, out, sizeof(out));

		if (macros[i].want == NULL)
			CHECK(n < 0, "macro '%s': got '%s'", macros[i].spec, n < 0 ? "" : out);
		else
			CHECK(n >= 0 && strcmp(out, macros[i].want) == 0, "macro '%s': got '%s'",
			      macros[i].spec, n < 0 ? "(error)" : out);
	}
	/* IPv6 %{i}: dot-separated nibbles; a long expansion loses labels from the left. */
	m.af = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::cb01", m.ip);
	CHECK(spf_expand("%{ir}.%{v}._spf.%{d2}", 21, &m, out, sizeof(out)) > 0 &&
		  strcmp(out,
			 "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
			 "example.com") == 0,
	      "ipv6 %%{ir}: %s", out);
	CHECK(spf_expand("%{i}.%{i}.%{i}.%{i}.example", 27, &m, out, sizeof(out)) > 0 &&
		  strlen(out) <= SPF_NAME_MAX && out[0] != '.',
	      "long expansion: %zu '%s'", strlen(out), out);
	return check_done("spf");
}
