/*
 * NAME
 *	geo - country of an IP address; country filters
 * SYNOPSIS
 *	#include "geo.h"
 * DESCRIPTION
 *	geo_open() loads the country database named by geo_database: the
 *	tor-geoipdb files Debian ships, or one MaxMind-format .mmdb file.
 *
 *	Tor files hold "low,high,CC" lines, sorted and non-overlapping: IPv4
 *	bounds are decimal integers, IPv6 bounds are text addresses. The
 *	family of a file is told by its first range line. Ranges go into
 *	compact arrays (IPv4: a uint32 pair and a 2-byte code, 10 bytes a
 *	range; IPv6: a 16-byte pair and a 2-byte code, 34 bytes a range)
 *	searched by bisection. The whole file is validated while it is read:
 *	a bad line, or ranges out of order or overlapping, is an error with
 *	PATH:LINE, because a truncated or damaged download must not silently
 *	turn into "unknown" for part of the address space. Lines with the
 *	code "??" are checked and then dropped: no range means unknown.
 *
 *	.mmdb files are read through libmaxminddb (memory-mapped); the code
 *	is country/iso_code, or registered_country/iso_code when the record
 *	has no country (anycast and some provider ranges).
 *
 *	In both formats an IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a
 *	dual-stack socket reports) is looked up as the IPv4 address.
 *
 *	geo_filter_parse() reads a listener's country filter.
 * DIAGNOSTICS
 *	Errors go to the caller's buffer; this module never logs or exits.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geo.h"

/* A larger file is not a country database: refuse it before mapping. */
#define GEO_MAX_FILE (512L * 1024 * 1024)

struct geo_v4 {
	uint32_t lo, hi;
};

struct geo_v6 {
	unsigned char lo[16], hi[16];
};

struct geo {
	struct geo_v4 *v4; /* sorted, non-overlapping */
	char (*cc4)[2];	   /* parallel to v4 */
	size_t n4;
	struct geo_v6 *v6;
	char (*cc6)[2];
	size_t n6;
	MMDB_s *mmdb; /* NULL for tor files */
};

/* One tor file being read: where we are, for PATH:LINE messages. */
struct geo_file {
	const char *path;
	unsigned long line;
	unsigned long prev_line; /* line of the previous range, 0 before it */
	char *err;
	size_t errsz;
};

/* geo_shown - a field of the file, safe and short for an error message. */
static const char *geo_shown(const char *s, size_t len, char *buf, size_t bufsz)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 4 < bufsz; i++)
		buf[o++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (i < len)
		buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
	buf[o] = 0;
	return buf;
}

static int geo_lerr(struct geo_file *f, const char *what, const char *s, size_t len)
{
	char shown[48];

	if (s != NULL)
		snprintf(f->err, f->errsz, "%s:%lu: %s '%s'", f->path, f->line, what,
			 geo_shown(s, len, shown, sizeof(shown)));
	else
		snprintf(f->err, f->errsz, "%s:%lu: %s", f->path, f->line, what);
	return -1;
}

/* geo_dec32 - a decimal IPv4 bound; digits only, at most 2^32-1. */
static int geo_dec32(const char *s, size_t len, uint32_t *v)
{
	uint64_t n = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (n > UINT32_MAX)
		return -1;
	*v = (uint32_t)n;
	return 0;
}

/* geo_addr6 - a text IPv6 bound (inet_pton needs it NUL-terminated). */
static int geo_addr6(const char *s, size_t len, unsigned char out[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

/*
 * geo_code - a country code field: two letters (stored upper case), or
 * "??" (returns 0: unknown). Returns 1 for a code, -1 if bad.
 */
static int geo_code(const char *s, size_t len, char cc[2])
{
	if (len != 2)
		return -1;
	if (s[0] == '?' && s[1] == '?')
		return 0;
	if (!isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]) ||
	    (unsigned char)s[0] > 127 || (unsigned char)s[1] > 127)
		return -1;
	cc[0] = (char)toupper((unsigned char)s[0]);
	cc[1] = (char)toupper((unsigned char)s[1]);
	return 1;
}

/*
 * geo_order - the range [lo, hi] against the previous one: it must start
 * after the previous range ended. The bounds are compared as big-endian
 * bytes, so one function serves both families.
 */
static int geo_order(struct geo_file *f, const unsigned char *lo, const unsigned char *hi,
		     const unsigned char *plo, const unsigned char *phi, size_t alen)
{
	char msg[96];

	if (memcmp(lo, hi, alen) > 0)
		return geo_lerr(f, "low address above high address", NULL, 0);
	if (f->prev_line == 0 || memcmp(lo, phi, alen) > 0)
		return 0;
	snprintf(msg, sizeof(msg), "%s line %lu",
		 memcmp(lo, plo, alen) < 0 ? "ranges not sorted: starts before the range of"
					   : "range overlaps the range of",
		 f->prev_line);
	return geo_lerr(f, msg, NULL, 0);
}

static void geo_be32(uint32_t v, unsigned char b[4])
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

/*
 * geo_parse_tor - parse a mapped tor file into g. cap is an upper bound
 * of its ranges (its line count): the arrays are allocated once, at the
 * family's first line, and trimmed at the end.
 */
static int geo_parse_tor(struct geo *g, struct geo_file *f, const char *p, size_t size, size_t cap)
{
	const char *end = p + size;
	int family = 0;
	size_t n = 0;
	unsigned char plo[16] = {0}, phi[16] = {0};

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *c1, *c2;
		size_t len;
		char cc[2];
		int known;

		if (eol == NULL)
			eol = end;
		p = eol + 1;
		f->line++;
		len = (size_t)(eol - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0 || line[0] == '#')
			continue;
		if (memchr(line, 0, len) != NULL)
			return geo_lerr(f, "NUL byte in line", NULL, 0);
		c1 = memchr(line, ',', len);
		c2 = c1 ? memchr(c1 + 1, ',', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c2 == NULL || memchr(c2 + 1, ',', len - (size_t)(c2 + 1 - line)) != NULL)
			return geo_lerr(f, "expected low,high,CC, got", line, len);
		if (family == 0) {
			family = memchr(line, ':', (size_t)(c1 - line)) ? 6 : 4;
			if ((family == 4 && g->v4) || (family == 6 && g->v6))
				return geo_lerr(
				    f, family == 4 ? "a second IPv4 file" : "a second IPv6 file",
				    NULL, 0);
			if (family == 4) {
				g->v4 = malloc(cap * sizeof(*g->v4));
				g->cc4 = malloc(cap * sizeof(*g->cc4));
			} else {
				g->v6 = malloc(cap * sizeof(*g->v6));
				g->cc6 = malloc(cap * sizeof(*g->cc6));
			}
			if ((family == 4 && (!g->v4 || !g->cc4)) ||
			    (family == 6 && (!g->v6 || !g->cc6)))
				return geo_lerr(f, "out of memory", NULL, 0);
		}
		known = geo_code(c2 + 1, len - (size_t)(c2 + 1 - line), cc);
		if (known < 0)
			return geo_lerr(f, "bad country code", c2 + 1,
					len - (size_t)(c2 + 1 - line));
		if (family == 4) {
			uint32_t lo, hi;
			unsigned char blo[4], bhi[4];

			if (geo_dec32(line, (size_t)(c1 - line), &lo) < 0)
				return geo_lerr(f, "bad IPv4 number", line, (size_t)(c1 - line));
			if (geo_dec32(c1 + 1, (size_t)(c2 - c1 - 1), &hi) < 0)
				return geo_lerr(f, "bad IPv4 number", c1 + 1,
						(size_t)(c2 - c1 - 1));
			geo_be32(lo, blo);
			geo_be32(hi, bhi);
			if (geo_order(f, blo, bhi, plo, phi, 4) < 0)
				return -1;
			memcpy(plo, blo, 4);
			memcpy(phi, bhi, 4);
			if (known) {
				g->v4[n].lo = lo;
				g->v4[n].hi = hi;
				memcpy(g->cc4[n++], cc, 2);
			}
		} else {
			struct geo_v6 r;

			if (geo_addr6(line, (size_t)(c1 - line), r.lo) < 0)
				return geo_lerr(f, "bad IPv6 address", line, (size_t)(c1 - line));
			if (geo_addr6(c1 + 1, (size_t)(c2 - c1 - 1), r.hi) < 0)
				return geo_lerr(f, "bad IPv6 address", c1 + 1,
						(size_t)(c2 - c1 - 1));
			if (geo_order(f, r.lo, r.hi, plo, phi, 16) < 0)
				return -1;
			memcpy(plo, r.lo, 16);
			memcpy(phi, r.hi, 16);
			if (known) {
				g->v6[n] = r;
				memcpy(g->cc6[n++], cc, 2);
			}
		}
		f->prev_line = f->line;
	}
	if (family == 0) {
		/* An empty or comment-only file: a failed download, not "no countries". */
		snprintf(f->err, f->errsz, "%s: no address ranges", f->path);
		return -1;
	}
	/* Trim to what was kept; a failed shrink keeps the larger block. */
	if (family == 4) {
		void *a = realloc(g->v4, (n ? n : 1) * sizeof(*g->v4));
		void *b = realloc(g->cc4, (n ? n : 1) * sizeof(*g->cc4));

		g->v4 = a ? a : g->v4;
		g->cc4 = b ? b : g->cc4;
		g->n4 = n;
	} else {
		void *a = realloc(g->v6, (n ? n : 1) * sizeof(*g->v6));
		void *b = realloc(g->cc6, (n ? n : 1) * sizeof(*g->cc6));

		g->v6 = a ? a : g->v6;
		g->cc6 = b ? b : g->cc6;
		g->n6 = n;
	}
	return 0;
}

/* geo_load_tor - map one tor file and parse it. */
static int geo_load_tor(struct geo *g, const char *path, char *err, size_t errsz)
{
	struct geo_file f = {path, 0, 0, err, errsz};
	struct stat st;
	void *map;
	size_t cap = 1;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > GEO_MAX_FILE) {
		snprintf(err, errsz, "%s: %s", path,
			 S_ISREG(st.st_mode) ? "file too large" : "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		close(fd);
		snprintf(err, errsz, "%s: no address ranges", path);
		return -1;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		snprintf(err, errsz, "%s: mmap: %s", path, strerror(errno));
		return -1;
	}
	/* Sequential, once: let the kernel read ahead. */
	(void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	for (const char *p = map, *e = p + st.st_size;
	     (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
		cap++;
	rc = geo_parse_tor(g, &f, map, (size_t)st.st_size, cap);
	munmap(map, (size_t)st.st_size);
	return rc;
}

static int geo_load_mmdb(struct geo *g, const char *path, char *err, size_t errsz)
{
	int rc;

	if ((g->mmdb = calloc(1, sizeof(*g->mmdb))) == NULL) {
		snprintf(err, errsz, "%s: out of memory", path);
		return -1;
	}
	errno = 0;
	rc = MMDB_open(path, MMDB_MODE_MMAP, g->mmdb);
	if (rc != MMDB_SUCCESS) {
		if ((rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) && errno != 0)
			snprintf(err, errsz, "%s: %s: %s", path, MMDB_strerror(rc),
				 strerror(errno));
		else
			snprintf(err, errsz, "%s: %s", path, MMDB_strerror(rc));
		free(g->mmdb);
		g->mmdb = NULL;
		return -1;
	}
	return 0;
}

static int geo_is_mmdb(const char *path)
{
	size_t len = strlen(path);

	return len >= 5 && strcmp(path + len - 5, ".mmdb") == 0;
}

/*
 * geo_open - see geo.h. The caller owns the result (geo_free). The spec
 * is one .mmdb file, or at most one IPv4 and one IPv6 tor file.
 */
struct geo *geo_open(const char *spec, char *err, size_t errsz)
{
	struct geo *g = calloc(1, sizeof(*g));
	char *copy = spec ? strdup(spec) : NULL, *save = NULL, *path;
	int nfiles = 0, mmdb = 0;

	if (g == NULL || copy == NULL) {
		snprintf(err, errsz, "geo: out of memory");
		goto fail;
	}
	for (path = strtok_r(copy, " \t\r\n", &save); path != NULL;
	     path = strtok_r(NULL, " \t\r\n", &save)) {
		nfiles++;
		if (geo_is_mmdb(path))
			mmdb++;
		if (mmdb && nfiles > 1) {
			snprintf(err, errsz, "%s: a .mmdb database must be the only file", path);
			goto fail;
		}
		if (mmdb ? geo_load_mmdb(g, path, err, errsz) < 0
			 : geo_load_tor(g, path, err, errsz) < 0)
			goto fail;
	}
	if (nfiles == 0) {
		snprintf(err, errsz, "geo: no database file given");
		goto fail;
	}
	free(copy);
	return g;
fail:
	free(copy);
	geo_free(&g);
	return NULL;
}

static int geo_find4(const struct geo *g, uint32_t a)
{
	size_t lo = 0, hi = g->n4;

	/* The first range starting above a; the one before may hold a. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->v4[mid].lo <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && g->v4[lo - 1].hi >= a ? (int)(lo - 1) : -1;
}

static long geo_find6(const struct geo *g, const unsigned char a[16])
{
	size_t lo = 0, hi = g->n6;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(g->v6[mid].lo, a, 16) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && memcmp(g->v6[lo - 1].hi, a, 16) >= 0 ? (long)(lo - 1) : -1;
}

/* geo_mmdb_code - country/iso_code, else registered_country/iso_code. */
static int geo_mmdb_code(const struct geo *g, const struct sockaddr *sa, char cc[3])
{
	static const char *const kinds[] = {"country", "registered_country"};
	MMDB_lookup_result_s res;
	int mmerr;

	res = MMDB_lookup_sockaddr(g->mmdb, sa, &mmerr);
	if (mmerr != MMDB_SUCCESS || !res.found_entry)
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		MMDB_entry_data_s d;

		if (MMDB_get_value(&res.entry, &d, kinds[i], "iso_code", NULL) != MMDB_SUCCESS ||
		    !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
			continue;
		if (geo_code(d.utf8_string, 2, cc) == 1)
			return 1;
	}
	return 0;
}

/* geo_lookup - see geo.h. Unknown families (AF_UNIX) are unknown. */
int geo_lookup(const struct geo *g, const struct sockaddr *sa, char cc[3])
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	struct sockaddr_in sin;
	int found = 0;

	memcpy(cc, "??", 3);
	if (g == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, sin6->sin6_addr.s6_addr + 12, 4);
		sa = (const struct sockaddr *)&sin;
	}
	if (g->mmdb != NULL) {
		if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
			found = geo_mmdb_code(g, sa, cc);
	} else if (sa->sa_family == AF_INET) {
		int i = geo_find4(g, ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));

		if (i >= 0) {
			memcpy(cc, g->cc4[i], 2);
			found = 1;
		}
	} else if (sa->sa_family == AF_INET6) {
		long i = geo_find6(g, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);

		if (i >= 0) {
			memcpy(cc, g->cc6[i], 2);
			found = 1;
		}
	}
	cc[2] = 0;
	if (!found)
		memcpy(cc, "??", 3);
	return found;
}

size_t geo_count(const struct geo *g)
{
	return g ? g->n4 + g->n6 : 0;
}

/* geo_free - release g and set *gp to NULL; NULL is fine. */
void geo_free(struct geo **gp)
{
	struct geo *g = gp ? *gp : NULL;

	if (g == NULL)
		return;
	free(g->v4);
	free(g->cc4);
	free(g->v6);
	free(g->cc6);
	if (g->mmdb != NULL) {
		MMDB_close(g->mmdb);
		free(g->mmdb);
	}
	free(g);
	*gp = NULL;
}

/*
 * Country filters: one bit per code, AA..ZZ plus "??" (index 676), for
 * the allow entries and the deny entries. A filter with allow entries
 * admits only those; a deny entry wins over an allow entry.
 */
#define GEO_NCODES (26 * 26 + 1)
#define GEO_UNKNOWN (26 * 26)

struct geo_filter {
	unsigned char allow[(GEO_NCODES + 7) / 8];
	unsigned char deny[(GEO_NCODES + 7) / 8];
	int nallow;
};

/* geo_index - bit index of a code; anything not AA..ZZ counts as "??". */
static int geo_index(const char cc[2])
{
	int a = toupper((unsigned char)cc[0]), b = a ? toupper((unsigned char)cc[1]) : 0;

	if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z')
		return GEO_UNKNOWN;
	return (a - 'A') * 26 + (b - 'A');
}

/*
 * geo_filter_parse - see geo.h. Entries are separated by white space or
 * commas; codes are case-insensitive. An empty filter is an error: the
 * caller has no filter rather than an empty one.
 */
struct geo_filter *geo_filter_parse(const char *text, char *err, size_t errsz)
{
	struct geo_filter *f = calloc(1, sizeof(*f));
	const char *p = text ? text : "";
	int n = 0;

	if (f == NULL) {
		snprintf(err, errsz, "country filter: out of memory");
		return NULL;
	}
	for (;;) {
		const char *tok;
		size_t len;
		int neg, idx;
		char cc[2], shown[48];

		p += strspn(p, " \t,");
		if (*p == 0)
			break;
		tok = p;
		len = strcspn(p, " \t,");
		p += len;
		neg = tok[0] == '!';
		if (geo_code(tok + neg, len - (size_t)neg, cc) < 0) {
			snprintf(err, errsz,
				 "country filter: bad entry '%s' (want CC, !CC or ??, "
				 "CC two letters)",
				 geo_shown(tok, len, shown, sizeof(shown)));
			free(f);
			return NULL;
		}
		idx = tok[neg] == '?' ? GEO_UNKNOWN : geo_index(cc);
		if (neg) {
			f->deny[idx / 8] |= (unsigned char)(1u << (idx % 8));
		} else {
			f->allow[idx / 8] |= (unsigned char)(1u << (idx % 8));
			f->nallow++;
		}
		n++;
	}
	if (n == 0) {
		snprintf(err, errsz, "country filter: empty");
		free(f);
		return NULL;
	}
	return f;
}

/* geo_filter_allows - see geo.h; a NULL filter admits everything. */
int geo_filter_allows(const struct geo_filter *f, const char cc[3])
{
	int idx;

	if (f == NULL)
		return 1;
	idx = geo_index(cc);
	if (f->deny[idx / 8] & (1u << (idx % 8)))
		return 0;
	if (f->nallow > 0)
		return (f->allow[idx / 8] & (1u << (idx % 8))) != 0;
	return 1;
}

void geo_filter_free(struct geo_filter **fp)
{
	if (fp != NULL) {
		free(*fp);
		*fp = NULL;
	}
}
