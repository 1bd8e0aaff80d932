/*
 * test_keys.c - the keys of the taRgrey engine: postgrey's sender
 * normalisation, pool keys of verified names, network keys.
 */
#include <string.h>

#include "check.h"
#include "grey.h"
#include "netaddr.h"

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

static const struct {
	const char *in, *want;
} pools[] = {
	{"mail-by2nam10on2100.outbound.protection.outlook.com", "outbound.protection.outlook.com"},
	{"a11-22.smtp-out.amazonses.com", "smtp-out.amazonses.com"},
	{"o1.email.sendgrid.net", "email.sendgrid.net"},
	/* Never shorter than the registrable domain. */
	{"mail-gx0-f21.google.com", "google.com"},
	{"web10902.mail.bbt.yahoo.co.jp", "mail.bbt.yahoo.co.jp"},
	{"mx.example.co.uk", "example.co.uk"},
	{"example.com", "example.com"},
	{"localhost", "localhost"},
};

int main(void)
{
	char out[256];

	for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		grey_sender_key(senders[i].in, strlen(senders[i].in), out, sizeof(out));
		CHECK(strcmp(out, senders[i].want) == 0, "sender '%s': got '%s'", senders[i].in,
		      out);
	}
	for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
		grey_pool_key(NULL, pools[i].in, out, sizeof(out));
		CHECK(strcmp(out, pools[i].want) == 0, "pool '%s': got '%s'", pools[i].in, out);
	}
	{
		struct netaddr na;
		char err[100];

		netaddr_parse("192.0.2.77:25", &na, err, sizeof(err));
		grey_net_key((const struct sockaddr *)&na.ss, out, sizeof(out));
		CHECK(strcmp(out, "192.0.2.0/24") == 0, "IPv4 net key: %s", out);
		netaddr_parse("[2001:db8:1:2:3:4:5:6]:25", &na, err, sizeof(err));
		grey_net_key((const struct sockaddr *)&na.ss, out, sizeof(out));
		CHECK(strcmp(out, "2001:db8:1:2::/64") == 0, "IPv6 net key: %s", out);
	}
	return check_done("keys");
}
