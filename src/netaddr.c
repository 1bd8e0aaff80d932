/*
 * netaddr.c - numeric socket address parsing and formatting.
 *
 * Only numeric forms are accepted: a listener or backend given by name would
 * make start-up depend on DNS, which a front-line guard must not.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

static int netaddr_parse_port(const char *s, unsigned *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int netaddr_parse(const char *text, struct netaddr *out, char *err, size_t errsz)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs, *he;
	unsigned port;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		hs = text + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':') {
			snprintf(err, errsz, "bad address '%s': expected [ipv6]:port", text);
			return -1;
		}
		colon = he + 1;
	} else {
		hs = text;
		colon = strrchr(text, ':');
		if (colon == NULL) {
			snprintf(err, errsz, "bad address '%s': expected ip:port", text);
			return -1;
		}
		he = colon;
	}
	if ((size_t)(he - hs) >= sizeof(host) || he == hs) {
		snprintf(err, errsz, "bad address '%s'", text);
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (netaddr_parse_port(colon + 1, &port) < 0) {
		snprintf(err, errsz, "bad port in '%s': expected 1-65535", text);
		return -1;
	}
	if (text[0] != '[') {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			snprintf(err, errsz, "bad IPv4 address in '%s' (IPv6 goes in [])", text);
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			snprintf(err, errsz, "bad IPv6 address in '%s'", text);
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
	}
	return 0;
}

char *netaddr_ip(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
			  (socklen_t)bufsz);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)bufsz);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)bufsz);
	} else {
		snprintf(buf, bufsz, "unknown");
	}
	return buf;
}

unsigned netaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

char *netaddr_format(const struct sockaddr *sa, char *buf, size_t bufsz)
{
	char ip[INET6_ADDRSTRLEN];

	netaddr_ip(sa, ip, sizeof(ip));
	if (strchr(ip, ':'))
		snprintf(buf, bufsz, "[%s]:%u", ip, netaddr_port(sa));
	else
		snprintf(buf, bufsz, "%s:%u", ip, netaddr_port(sa));
	return buf;
}

void netaddr_unmap(struct netaddr *na)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&na->ss;
	struct sockaddr_in sin;

	if (s6->sin6_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = s6->sin6_port;
	memcpy(&sin.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(&na->ss, 0, sizeof(na->ss));
	memcpy(&na->ss, &sin, sizeof(sin));
	na->len = sizeof(sin);
}

void netaddr_key(const struct sockaddr *sa, struct ipkey *key)
{
	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET) {
		key->b[10] = key->b[11] = 0xff;
		memcpy(key->b + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(key->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	}
}

int netaddr_key_is_v4(const struct ipkey *key)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(key->b, mapped, 12) == 0;
}

void netaddr_key_prefix(struct ipkey *key, int bits)
{
	if (netaddr_key_is_v4(key))
		bits += 96;
	if (bits < 0)
		bits = 0;
	for (int i = 0; i < 16; i++) {
		int keep = bits - i * 8;

		if (keep >= 8)
			continue;
		key->b[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

int netaddr_key_within(const struct ipkey *key, const struct ipkey *net, int bits)
{
	struct ipkey k = *key;

	if (netaddr_key_is_v4(&k) != netaddr_key_is_v4(net))
		return 0;
	netaddr_key_prefix(&k, bits);
	return memcmp(&k, net, sizeof(k)) == 0;
}

char *netaddr_key_format(const struct ipkey *key, char *buf, size_t bufsz)
{
	if (netaddr_key_is_v4(key))
		inet_ntop(AF_INET, key->b + 12, buf, (socklen_t)bufsz);
	else
		inet_ntop(AF_INET6, key->b, buf, (socklen_t)bufsz);
	return buf;
}

/*
 * The seed keeps a remote sender from choosing addresses that all land in
 * one hash bucket: the tables keyed by address see hostile input.
 */
static uint64_t netaddr_seed(void)
{
	static uint64_t seed;

	if (seed == 0) {
		FILE *fp = fopen("/dev/urandom", "r");

		if (fp == NULL || fread(&seed, sizeof(seed), 1, fp) != 1)
			seed = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ULL;
		if (fp != NULL)
			fclose(fp);
		seed |= 1;
	}
	return seed;
}

static uint64_t netaddr_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

uint64_t netaddr_key_hash(const struct ipkey *key)
{
	uint64_t a, b, s = netaddr_seed();

	memcpy(&a, key->b, 8);
	memcpy(&b, key->b + 8, 8);
	return netaddr_mix(netaddr_mix(a ^ s) ^ b ^ (s << 1));
}
