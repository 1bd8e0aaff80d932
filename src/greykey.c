/*
 * greykey.c - the keys of the taRgrey engine.
 *
 * A tarpit record and a greylist triplet are keyed by the client key: by
 * default (greylist_key = auto) the pool of the verified name, so that a
 * sender that retries from another address of its pool (outlook.com,
 * amazonses.com, ...) is recognised; without a verified name, the /24
 * (IPv4) or /64 (IPv6). The auto-whitelist is always keyed by network:
 * counting survivals per pool would, after a few patient hosts, whitelist a
 * whole dynamic ISP pool. Senders are normalised as postgrey does.
 *
 * Everything here reads what a client sent: bounded, never trusting a
 * length or a terminator that the caller did not check.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <libpsl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "greykey.h"
#include "rules.h"

void greykey_net(const struct sockaddr *sa, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		struct in_addr a = ((const struct sockaddr_in *)sa)->sin_addr;

		a.s_addr &= htonl(0xffffff00);
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		snprintf(out, outsz, "%s/24", ip);
	} else {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;

		memset(a.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a, ip, sizeof(ip));
		snprintf(out, outsz, "%s/64", ip);
	}
}
int greykey_auto(const struct psl_ctx_st *psl_in, const struct rules *r, const char *name,
		 const struct sockaddr *sa, char *out, size_t outsz)
{
	const psl_ctx_t *psl = psl_in != NULL ? psl_in : psl_builtin();
	const char *reg, *dot;

	/*
	 * A pool key lets a host through on its first contact because another
	 * host of the pool passed. That is right for a sender's farm
	 * (mta4.out.bigsender.example retrying from mta7), wrong for strangers
	 * who merely share a provider: dynamic (S25R) names and names directly
	 * under their registrable domain (dhcp-12.example.net: one label says
	 * nothing about a pool) are keyed by their network.
	 */
	if (name == NULL || (r != NULL && rules_s25r(r, name) >= 0))
		goto net;
	reg = psl ? psl_registrable_domain(psl, name) : NULL;
	dot = strchr(name, '.');
	if (reg == NULL || dot == NULL || dot + 1 >= reg)
		goto net;
	snprintf(out, outsz, "%s", dot + 1);
	return 1;
net:
	greykey_net(sa, out, outsz);
	return 0;
}

void greykey_sender(const char *addr, size_t len, char *out, size_t outsz)
{
	char buf[GREYKEY_MAX];
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1, o = 0;
	char *at, *local = buf;

	for (size_t i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)addr[i]);
	buf[n] = '\0';
	/* BATV: prvs=tag=user@domain (and the older user=tag form is left alone). */
	if (strncmp(local, "prvs=", 5) == 0) {
		char *eq = strchr(local + 5, '=');

		if (eq != NULL && (at = strchr(local, '@')) != NULL && eq < at)
			local = eq + 1;
	}
	at = strchr(local, '@');
	for (char *p = local; *p && o + 1 < outsz; p++) {
		if (*p == '+' && at != NULL && p < at) {
			p = at - 1; /* skip the +extension */
			continue;
		}
		if (isdigit((unsigned char)*p)) {
			while (isdigit((unsigned char)p[1]))
				p++;
			out[o++] = '#';
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

size_t greykey_angle(const char *line, const char **addr)
{
	const char *lt = line ? strchr(line, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt == NULL || gt == NULL) {
		*addr = "";
		return 0;
	}
	*addr = lt + 1;
	return (size_t)(gt - lt - 1);
}

size_t greykey_helo(const char *line, const char **helo)
{
	if (line == NULL) {
		*helo = "";
		return 0;
	}
	*helo = line + 4 + strspn(line + 4, " ");
	return strcspn(*helo, "\r\n");
}

int greykey_sender_domain(const char *mail, char *out, size_t outsz)
{
	const char *s, *at;
	size_t n = greykey_angle(mail, &s), dn;

	at = n ? memrchr(s, '@', n) : NULL;
	if (at == NULL)
		return -1;
	dn = (size_t)(s + n - at - 1);
	if (dn > 0 && at[dn] == '.')
		dn--;
	if (dn == 0 || dn >= outsz)
		return -1;
	for (size_t i = 0; i < dn; i++)
		out[i] = (char)tolower((unsigned char)at[1 + i]);
	out[dn] = '\0';
	return 0;
}
