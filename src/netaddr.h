/*
 * netaddr.h - socket addresses as mxguard reads and writes them:
 * "a.b.c.d:port" and "[v6]:port".
 */
#ifndef MXG_NETADDR_H
#define MXG_NETADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
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

/*
 * An address as a fixed 16-byte key for hashing and comparing: IPv6 as
 * is, IPv4 as ::ffff:a.b.c.d (so both families share one table).
 */
struct ipkey {
	uint8_t b[16];
};

/* netaddr_key - the key of sa's address (the port is ignored). */
void netaddr_key(const struct sockaddr *sa, struct ipkey *key);

/* netaddr_key_is_v4 - is the key an IPv4 address (::ffff:0:0/96)? */
int netaddr_key_is_v4(const struct ipkey *key);

/*
 * netaddr_key_prefix - key with every bit after the first bits cleared;
 * for IPv4 keys bits counts within the IPv4 address (24: a /24).
 */
void netaddr_key_prefix(struct ipkey *key, int bits);

/*
 * netaddr_key_within - does key lie in net, a network key of bits bits
 * (bits counted as netaddr_key_prefix counts them)? Keys of the other
 * family never do.
 */
int netaddr_key_within(const struct ipkey *key, const struct ipkey *net, int bits);

/* netaddr_key_format - the address of key as text (IPv4 as a.b.c.d). */
char *netaddr_key_format(const struct ipkey *key, char *buf, size_t bufsz);

/* netaddr_key_hash - a 64-bit hash of key (seeded per process). */
uint64_t netaddr_key_hash(const struct ipkey *key);

/* netaddr_unmap - turn an IPv4-mapped IPv6 address into AF_INET in place. */
void netaddr_unmap(struct netaddr *na);

#endif
