/*
 * netaddr.h - socket addresses as mxguard reads and writes them:
 * "a.b.c.d:port" and "[v6]:port".
 */
#ifndef MXG_NETADDR_H
#define MXG_NETADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* Large enough for "[ffff:...:255.255.255.255]:65535". */
#define NETADDR_STRLEN 64

/*
 * An IPv4 or IPv6 socket address. Deliberately not a sockaddr_storage
 * (128 bytes): every connection holds two of these, and a held connection
 * should cost a few hundred bytes in all. 28 bytes cover both families.
 */
union netaddr_sa {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct netaddr {
	union netaddr_sa ss;
	socklen_t len;
};

/*
 * netaddr_parse - parse "ip:port" or "[ipv6]:port" (numeric only, no DNS).
 * Returns 0 and fills *out, or -1 with a message in err (size errsz).
 */
int netaddr_parse(const char *text, struct netaddr *out, char *err, size_t errsz);

/* netaddr_format - "ip:port" or "[ipv6]:port" into buf (NETADDR_STRLEN). */
char *netaddr_format(const struct sockaddr *sa, char *buf, size_t bufsz);

/* netaddr_ip - the address alone, no port, IPv4-mapped IPv6 shown as IPv4. */
char *netaddr_ip(const struct sockaddr *sa, char *buf, size_t bufsz);

/* netaddr_port - the port in host order. */
unsigned netaddr_port(const struct sockaddr *sa);

/* netaddr_unmap - turn an IPv4-mapped IPv6 address into AF_INET in place. */
void netaddr_unmap(struct netaddr *na);

#endif
