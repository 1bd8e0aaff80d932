/*
 * geo.h - country of an IP address, for the listeners' country filters
 * and the notices' top countries.
 *
 * Two formats: the tor-geoipdb files Debian ships (/usr/share/tor/geoip
 * and geoip6: "low,high,CC" ranges, loaded into sorted arrays and searched
 * by bisection) and MaxMind-format .mmdb files through libmaxminddb.
 */
#ifndef MXG_GEO_H
#define MXG_GEO_H

#include <stddef.h>
#include <sys/socket.h>

struct geo;

/*
 * geo_open - load the files named in spec (white-space separated): tor
 * "geoip" (IPv4) and "geoip6" (IPv6) files, told apart by their content,
 * or one file ending in ".mmdb". Returns NULL with "PATH:LINE: message" or
 * "PATH: message" in err. Lines with "??" are skipped; a bad line is an
 * error (a truncated download must not silently become "unknown").
 */
struct geo *geo_open(const char *spec, char *err, size_t errsz);

/*
 * geo_lookup - the ISO 3166 code of sa's address into cc (3 bytes, upper
 * case). Returns 1, or 0 with "??" when the address is in no range.
 */
int geo_lookup(const struct geo *g, const struct sockaddr *sa, char cc[3]);

/* geo_count - ranges loaded (IPv4 + IPv6); 0 for .mmdb. */
size_t geo_count(const struct geo *g);

void geo_free(struct geo **gp);

/*
 * geo_filter_parse - a country filter "CC !CC ..." (also commas): CC
 * entries allow (then every other country is refused), !CC entries deny;
 * "??" stands for unknown. Returns a filter, or NULL with err.
 * geo_filter_allows - does the filter admit country cc?
 */
struct geo_filter;
struct geo_filter *geo_filter_parse(const char *text, char *err, size_t errsz);
int geo_filter_allows(const struct geo_filter *f, const char cc[3]);
void geo_filter_free(struct geo_filter **fp);

#endif
