/*
 * test_keys.c - the keys of the taRgrey engine: postgrey's sender
 * normalisation, greylist_key = auto (pool or network), network keys.
 */
#include <string.h>

#include "check.h"
#include "greykey.h"
#include "netaddr.h"
#include "rules.h"

static const struct {
	const char *in, *want;
} senders[] = {
	{"User@Example.COM", "user@example.com"},
	{"prvs=1234abcd=user@example.com", "user@example.com"},
	{"user+list-42@example.com", "user@example.com"},
	{"bounce-12345-678@mail.example.com", "bounce-#-#@mail.example.com"},
	{"", ""},
	{"no-at-sign", "no-at-sign"},
	{"a+b+c@x.example", "a@x.example"},
	{"prvs=oops", "prvs=oops"},
};

/*
 * greylist_key = auto: a pool key only for a name that does not look
 * dynamic and lies at least two labels below its registrable domain; all
 * others (dynamic names, a host directly under its domain, no name) are
 * keyed by their network, here 192.0.2.0/24.
 */
static const struct {
	const char *in, *want;
} autokeys[] = {
	{"mta.out.bigsender.example", "out.bigsender.example"},
	{"relay.mail.bbt.yahoo.co.jp", "mail.bbt.yahoo.co.jp"},
	{"smtp.a.b.example.co.uk", "a.b.example.co.uk"},
	{"o.email.sendgrid.net", "email.sendgrid.net"},
	/* Dynamic (S25R) names: each host on its own. */
	{"mail-by2nam10on2100.outbound.protection.outlook.com", "192.0.2.0/24"},
	{"a11-22.smtp-out.amazonses.com", "192.0.2.0/24"},
	{"c-73-1-2-3.hsd1.wa.comcast.net", "192.0.2.0/24"},
	{"p5b0c1d2e.dip0.t-ipconnect.de", "192.0.2.0/24"},
	{"dhcp-81-5-1.example.net", "192.0.2.0/24"},
	/* Directly under the registrable domain: strangers sharing a provider. */
	{"dhcp-12.example.net", "192.0.2.0/24"},
	{"mx.example.co.uk", "192.0.2.0/24"},
	{"mail.google.com", "192.0.2.0/24"},
	{"example.com", "192.0.2.0/24"},
	{"localhost", "192.0.2.0/24"},
	{NULL, "192.0.2.0/24"},
};

int main(void)
{
	char out[256];

	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		greykey_sender(senders[i].in, strlen(senders[i].in), out, sizeof(out));
		CHECK(strcmp(out, senders[i].want) == 0, "sender '%s': got '%s'", senders[i].in,
		      out);
	}
	{
		struct netaddr na;
		char err[100];
		struct rules *r = rules_load(NULL, 0, err, sizeof(err));

		CHECK(r != NULL, "rules_load: %s", err);
		netaddr_parse("192.0.2.77:25", &na, err, sizeof(err));
		for (size_t i = 0; r && i < sizeof(autokeys) / sizeof(autokeys[0]); i++) {
			const char *in = autokeys[i].in;
			int pool = greykey_auto(NULL, r, in, (const struct sockaddr *)&na.ss, out,
					       sizeof(out));

			CHECK(strcmp(out, autokeys[i].want) == 0, "auto key '%s': got '%s'",
			      in ? in : "(none)", out);
			CHECK(pool == (strchr(autokeys[i].want, '/') == NULL),
			      "auto key '%s': pool=%d", in ? in : "(none)", pool);
		}
		rules_free(&r);
	}
	{
		struct netaddr na;
		char err[100];

		netaddr_parse("192.0.2.77:25", &na, err, sizeof(err));
		greykey_net((const struct sockaddr *)&na.ss, out, sizeof(out));
		CHECK(strcmp(out, "192.0.2.0/24") == 0, "IPv4 net key: %s", out);
		netaddr_parse("[2001:db8:1:2:3:4:5:6]:25", &na, err, sizeof(err));
		greykey_net((const struct sockaddr *)&na.ss, out, sizeof(out));
		CHECK(strcmp(out, "2001:db8:1:2::/64") == 0, "IPv6 net key: %s", out);
	}
	return check_done("keys");
}
