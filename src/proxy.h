/*
 * proxy.h - the HAProxy PROXY protocol, versions 1 and 2: building the
 * header mxguard sends before any other byte to the backend, and parsing one
 * (for tests and for a future PROXY-speaking listener).
 */
#ifndef MXG_PROXY_H
#define MXG_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

/* v1 is at most 107 bytes; v2 with two IPv6 addresses is 52. */
#define PROXY_HDR_MAX 108

/*
 * proxy_v1 / proxy_v2 - write the header for a TCP connection from src to
 * dst (both AF_INET, or both AF_INET6; IPv4-mapped IPv6 is sent as IPv4)
 * into buf. Returns the header length, or -1 for an unsupported pair, in
 * which case v1 writes "PROXY UNKNOWN" and v2 a LOCAL header instead and
 * returns their length (the backend then sees mxguard's own address).
 * proxy_v2_local / proxy_v1_unknown: the header for mxguard's own probes.
 */
int proxy_v1(char *buf, size_t bufsz, const struct sockaddr *src, const struct sockaddr *dst);
int proxy_v2(char *buf, size_t bufsz, const struct sockaddr *src, const struct sockaddr *dst);
int proxy_v2_local(char *buf, size_t bufsz);
int proxy_v1_unknown(char *buf, size_t bufsz);

struct proxy_info {
	int version;	/* 1 or 2 */
	int local;	/* v2 LOCAL or v1 UNKNOWN: no addresses */
	struct sockaddr_storage src, dst;
	size_t len;	/* header bytes consumed */
};

enum proxy_status { PROXY_MORE, PROXY_DONE, PROXY_BAD };

/* proxy_parse - parse a v1 or v2 header at the start of buf[0..len). */
enum proxy_status proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *pi);

#endif
