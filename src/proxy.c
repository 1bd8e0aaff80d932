/*
 * proxy.c - PROXY protocol headers (HAProxy's proxy-protocol.txt).
 *
 * The header carries the client's real address to the backend (Postfix
 * smtpd_upstream_proxy_protocol = haproxy, Dovecot, Exim). It must be the
 * very first bytes on the backend connection and is sent in one write.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "proxy.h"

static const unsigned char proxy_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* proxy_pair - normalise src and dst to one family; 4, 6, or 0 if mixed. */
static int proxy_pair(const struct sockaddr *src, const struct sockaddr *dst,
		      struct netaddr *s, struct netaddr *d)
{
	memset(s, 0, sizeof(*s));
	memset(d, 0, sizeof(*d));
	if ((src->sa_family != AF_INET && src->sa_family != AF_INET6) ||
	    (dst->sa_family != AF_INET && dst->sa_family != AF_INET6))
		return 0;
	memcpy(&s->ss, src, src->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						      : sizeof(struct sockaddr_in6));
	memcpy(&d->ss, dst, dst->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						      : sizeof(struct sockaddr_in6));
	netaddr_unmap(s);
	netaddr_unmap(d);
	if (s->ss.sa.sa_family != d->ss.sa.sa_family)
		return 0;
	return s->ss.sa.sa_family == AF_INET ? 4 : 6;
}

int proxy_v1_unknown(char *buf, size_t bufsz)
{
	return snprintf(buf, bufsz, "PROXY UNKNOWN\r\n");
}

int proxy_v1(char *buf, size_t bufsz, const struct sockaddr *src, const struct sockaddr *dst)
{
	struct netaddr s, d;
	char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
	int fam = proxy_pair(src, dst, &s, &d);

	if (fam == 0)
		return proxy_v1_unknown(buf, bufsz);
	netaddr_ip((struct sockaddr *)&s.ss, sip, sizeof(sip));
	netaddr_ip((struct sockaddr *)&d.ss, dip, sizeof(dip));
	return snprintf(buf, bufsz, "PROXY TCP%d %s %s %u %u\r\n", fam, sip, dip,
			netaddr_port((struct sockaddr *)&s.ss),
			netaddr_port((struct sockaddr *)&d.ss));
}

int proxy_v2_local(char *buf, size_t bufsz)
{
	if (bufsz < 16)
		return -1;
	memcpy(buf, proxy_sig, 12);
	buf[12] = 0x20; /* version 2, LOCAL */
	buf[13] = 0x00; /* UNSPEC */
	buf[14] = 0;
	buf[15] = 0;
	return 16;
}

int proxy_v2(char *buf, size_t bufsz, const struct sockaddr *src, const struct sockaddr *dst)
{
	struct netaddr s, d;
	int fam = proxy_pair(src, dst, &s, &d);
	unsigned char *p = (unsigned char *)buf;
	size_t alen;

	if (fam == 0)
		return proxy_v2_local(buf, bufsz);
	alen = fam == 4 ? 12 : 36;
	if (bufsz < 16 + alen)
		return -1;
	memcpy(p, proxy_sig, 12);
	p[12] = 0x21;			  /* version 2, PROXY */
	p[13] = fam == 4 ? 0x11 : 0x21; /* TCP over IPv4 / IPv6 */
	p[14] = (unsigned char)(alen >> 8);
	p[15] = (unsigned char)(alen & 0xff);
	if (fam == 4) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&s.ss;
		const struct sockaddr_in *b = (const struct sockaddr_in *)&d.ss;

		memcpy(p + 16, &a->sin_addr, 4);
		memcpy(p + 20, &b->sin_addr, 4);
		memcpy(p + 24, &a->sin_port, 2);
		memcpy(p + 26, &b->sin_port, 2);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&s.ss;
		const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&d.ss;

		memcpy(p + 16, &a->sin6_addr, 16);
		memcpy(p + 32, &b->sin6_addr, 16);
		memcpy(p + 48, &a->sin6_port, 2);
		memcpy(p + 50, &b->sin6_port, 2);
	}
	return (int)(16 + alen);
}

/* proxy_parse_v1 - "PROXY TCP4 a b p q\r\n" or "PROXY UNKNOWN...\r\n". */
static enum proxy_status proxy_parse_v1(const unsigned char *buf, size_t len, struct proxy_info *pi)
{
	char line[108], proto[8], sip[64], dip[64];
	unsigned sport, dport;
	const unsigned char *cr;
	size_t window = len < 107 ? len : 107;
	int n;

	cr = memchr(buf, '\r', window);
	if (cr == NULL)
		return len >= 107 ? PROXY_BAD : PROXY_MORE;
	size_t ll = (size_t)(cr - buf);

	if (ll + 1 >= len)
		return PROXY_MORE;
	if (cr[1] != '\n')
		return PROXY_BAD;
	memcpy(line, buf, ll);
	line[ll] = '\0';
	if (memchr(line, '\0', ll))
		return PROXY_BAD;
	pi->version = 1;
	pi->len = ll + 2;
	if (strncmp(line, "PROXY UNKNOWN", 13) == 0) {
		pi->local = 1;
		return PROXY_DONE;
	}
	n = sscanf(line, "PROXY %7s %63s %63s %5u %5u", proto, sip, dip, &sport, &dport);
	if (n != 5 || sport > 65535 || dport > 65535)
		return PROXY_BAD;
	int fam = strcmp(proto, "TCP4") == 0 ? AF_INET : strcmp(proto, "TCP6") == 0 ? AF_INET6 : 0;

	if (fam == 0)
		return PROXY_BAD;
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&pi->src;
		struct sockaddr_in *b = (struct sockaddr_in *)&pi->dst;

		if (inet_pton(AF_INET, sip, &a->sin_addr) != 1 ||
		    inet_pton(AF_INET, dip, &b->sin_addr) != 1)
			return PROXY_BAD;
		a->sin_family = b->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)sport);
		b->sin_port = htons((uint16_t)dport);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&pi->src;
		struct sockaddr_in6 *b = (struct sockaddr_in6 *)&pi->dst;

		if (inet_pton(AF_INET6, sip, &a->sin6_addr) != 1 ||
		    inet_pton(AF_INET6, dip, &b->sin6_addr) != 1)
			return PROXY_BAD;
		a->sin6_family = b->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)sport);
		b->sin6_port = htons((uint16_t)dport);
	}
	return PROXY_DONE;
}

enum proxy_status proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	if (len == 0)
		return PROXY_MORE;
	if (buf[0] == 'P') {
		if (memcmp(buf, "PROXY ", len < 6 ? len : 6) != 0)
			return PROXY_BAD;
		return proxy_parse_v1(buf, len, pi);
	}
	if (memcmp(buf, proxy_sig, len < 12 ? len : 12) != 0)
		return PROXY_BAD;
	if (len < 16)
		return PROXY_MORE;
	if ((buf[12] & 0xf0) != 0x20)
		return PROXY_BAD;
	size_t alen = (size_t)buf[14] << 8 | buf[15];

	if (len < 16 + alen)
		return PROXY_MORE;
	pi->version = 2;
	pi->len = 16 + alen;
	switch (buf[12] & 0x0f) {
	case 0x0: /* LOCAL: addresses, if any, are ignored */
		pi->local = 1;
		return PROXY_DONE;
	case 0x1:
		break;
	default:
		return PROXY_BAD;
	}
	if (buf[13] == 0x11 && alen >= 12) {
		struct sockaddr_in *a = (struct sockaddr_in *)&pi->src;
		struct sockaddr_in *b = (struct sockaddr_in *)&pi->dst;

		a->sin_family = b->sin_family = AF_INET;
		memcpy(&a->sin_addr, buf + 16, 4);
		memcpy(&b->sin_addr, buf + 20, 4);
		memcpy(&a->sin_port, buf + 24, 2);
		memcpy(&b->sin_port, buf + 26, 2);
		return PROXY_DONE;
	}
	if (buf[13] == 0x21 && alen >= 36) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&pi->src;
		struct sockaddr_in6 *b = (struct sockaddr_in6 *)&pi->dst;

		a->sin6_family = b->sin6_family = AF_INET6;
		memcpy(&a->sin6_addr, buf + 16, 16);
		memcpy(&b->sin6_addr, buf + 32, 16);
		memcpy(&a->sin6_port, buf + 48, 2);
		memcpy(&b->sin6_port, buf + 50, 2);
		return PROXY_DONE;
	}
	/* Other families (UNIX, UNSPEC with PROXY): treated as no address. */
	pi->local = 1;
	return PROXY_DONE;
}
