/*
 * dns.c - asynchronous DNS (stub: being written).
 */
#include <stdio.h>

#include "dns.h"

struct dns *dns_new(struct event_base *base, const char *resolvers, int timeout_ms,
		    int cache_entries, char *err, size_t errsz)
{
	snprintf(err, errsz, "dns: not implemented yet");
	return NULL;
}

struct dns_req *dns_verified_name(struct dns *d, const struct sockaddr *addr, dns_name_cb cb,
				  void *arg)
{
	return NULL;
}

struct dns_req *dns_addrs(struct dns *d, const char *name, dns_addrs_cb cb, void *arg)
{
	return NULL;
}

struct dns_req *dns_ns(struct dns *d, const char *domain, dns_names_cb cb, void *arg)
{
	return NULL;
}

void dns_cancel(struct dns_req *req)
{
}

int dns_cache_size(const struct dns *d)
{
	return 0;
}

void dns_free(struct dns **dp)
{
	*dp = NULL;
}
