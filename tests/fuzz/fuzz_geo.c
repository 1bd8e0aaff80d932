/*
 * fuzz_geo.c - libFuzzer target: tor geoip files through geo_open(), and
 * country filters through geo_filter_parse().
 *
 * The first byte chooses the family the rest is meant as: even, a geoip
 * (IPv4) file; odd, a geoip6 file. The other family's file is a fixed one
 * of one range, loaded in the same spec, as mxguard's default does. When
 * the pair loads, the low and the high address of every range written in
 * the input must be found in that range's country (also as an IPv4-mapped
 * IPv6 address for IPv4), addresses from the input bytes must get what a
 * linear scan of the ranges gives, and geo_count() must be the number of
 * ranges that are not "??". An error must be "PATH:LINE: ..." or
 * "PATH: ...", NUL-terminated within the buffer.
 *
 * The rest is also a country filter: it must parse exactly when every
 * entry is CC, !CC or ?? (at least one), and then admit a country as the
 * entries say: denied if denied, else allowed if allowed or if there are
 * no allow entries.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_file.h"
#include "geo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RANGES 4096

struct range {
	unsigned char lo[16], hi[16]; /* big-endian; IPv4 in the first 4 */
	char cc[3];
};

static const char other4[] = "# fixed IPv4 companion\n16777216,16777471,AU\n";
static const char other6[] = "2001:db8::,2001:db8::ffff,ZZ\n";

static int fd_in = -1, fd_other4 = -1, fd_other6 = -1;
static char path_in[64], path_other4[64], path_other6[64];

static void setup(void)
{
	fd_in = fuzz_memfile("fuzz_geo", path_in, sizeof(path_in));
	fd_other4 = fuzz_memfile("geoip", path_other4, sizeof(path_other4));
	fd_other6 = fuzz_memfile("geoip6", path_other6, sizeof(path_other6));
	if (write(fd_other4, other4, strlen(other4)) != (ssize_t)strlen(other4) ||
	    write(fd_other6, other6, strlen(other6)) != (ssize_t)strlen(other6))
		abort();
}

/* lookup - geo_lookup() of a (alen 4 or 16 bytes); mapped: IPv4 as ::ffff:a.b.c.d. */
static int lookup(const struct geo *g, const unsigned char *a, size_t alen, int mapped, char cc[3])
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (alen == 4 && !mapped) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		memcpy(&sin.sin_addr, a, 4);
		return geo_lookup(g, (struct sockaddr *)&sin, cc);
	}
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (alen == 4) {
		sin6.sin6_addr.s6_addr[10] = sin6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(sin6.sin6_addr.s6_addr + 12, a, 4);
	} else {
		memcpy(sin6.sin6_addr.s6_addr, a, 16);
	}
	return geo_lookup(g, (struct sockaddr *)&sin6, cc);
}

/* expect - the lookup of a gives cc ("??": not found), as plain and mapped for IPv4. */
static void expect(const struct geo *g, const unsigned char *a, size_t alen, const char *cc)
{
	char got[3];
	int known = strcmp(cc, "??") != 0;

	for (int mapped = 0; mapped <= (alen == 4); mapped++) {
		memset(got, 'X', sizeof(got));
		if (lookup(g, a, alen, mapped, got) != known || got[2] != '\0' ||
		    strcmp(got, cc) != 0)
			__builtin_trap();
	}
}

static const char *scan(const struct range *r, size_t n, const unsigned char *a, size_t alen)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(r[i].lo, a, alen) <= 0 && memcmp(a, r[i].hi, alen) <= 0)
			return r[i].cc;
	return "??";
}

/*
 * want - the country of a by the ranges read back. An IPv4-mapped IPv6
 * address is looked up as IPv4: in the companion geoip file.
 */
static const char *want(const struct range *r, size_t n, const unsigned char *a, size_t alen)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (alen == 16 && memcmp(a, mapped, 12) == 0)
		return a[12] == 1 && a[13] == 0 && a[14] == 0 ? "AU" : "??";
	return scan(r, n, a, alen);
}

/* field - an address field into out (big-endian); -1 if geo.c should not have taken it. */
static int field(const char *s, size_t len, int family, unsigned char out[16])
{
	char buf[64];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (family == 6)
		return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
	unsigned long long v = 0;

	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)buf[i]))
			return -1;
		v = v * 10 + (unsigned)(buf[i] - '0');
		if (v > 0xffffffffULL)
			return -1;
	}
	out[0] = (unsigned char)(v >> 24);
	out[1] = (unsigned char)(v >> 16);
	out[2] = (unsigned char)(v >> 8);
	out[3] = (unsigned char)v;
	return 0;
}

/* check_err - "PATH:LINE: ..." or "PATH: ...", NUL-terminated in the buffer. */
static void check_err(const char *err, size_t errsz)
{
	const char *paths[] = {path_in, path_other4, path_other6};
	const char *p = NULL;
	int line;

	for (size_t i = 0; i < 3 && p == NULL; i++)
		p = fuzz_err_after(err, errsz, paths[i], &line);
	if (p == NULL || *p != ' ')
		__builtin_trap();
}

static void fuzz_tor(const uint8_t *data, size_t size)
{
	static struct range r[MAX_RANGES];
	int family = data[0] & 1 ? 6 : 4, lfam = 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1, n = 0, known = 0, alen;
	char spec[160], err[256];
	struct geo *g;

	fuzz_put(fd_in, text, len);
	snprintf(spec, sizeof(spec), "%s %s", family == 4 ? path_other6 : path_other4, path_in);
	memset(err, 'X', sizeof(err));
	if ((g = geo_open(spec, err, sizeof(err))) == NULL) {
		check_err(err, sizeof(err));
		return;
	}
	/* Loaded: read the ranges back as geo.c should have. */
	for (size_t off = 0; off < len;) {
		const char *line = text + off, *nl = memchr(line, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - line) : len - off;
		const char *c1, *c2;

		off += ll + 1;
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		if ((c1 = memchr(line, ',', ll)) == NULL ||
		    (c2 = memchr(c1 + 1, ',', ll - (size_t)(c1 + 1 - line))) == NULL ||
		    line + ll - (c2 + 1) != 2)
			__builtin_trap();
		if (lfam == 0)
			lfam = memchr(line, ':', (size_t)(c1 - line)) ? 6 : 4;
		if (lfam != family || n == MAX_RANGES)
			__builtin_trap(); /* the companion has the other family */
		memset(&r[n], 0, sizeof(r[n]));
		if (field(line, (size_t)(c1 - line), family, r[n].lo) < 0 ||
		    field(c1 + 1, (size_t)(c2 - c1 - 1), family, r[n].hi) < 0)
			__builtin_trap();
		if (c2[1] == '?' && c2[2] == '?') {
			memcpy(r[n++].cc, "??", 3); /* kept here: its addresses are unknown */
			continue;
		}
		if (!isalpha((unsigned char)c2[1]) || !isalpha((unsigned char)c2[2]))
			__builtin_trap();
		r[n].cc[0] = (char)toupper((unsigned char)c2[1]);
		r[n].cc[1] = (char)toupper((unsigned char)c2[2]);
		n++;
		known++;
	}
	if (n == 0 || geo_count(g) != known + 1)
		__builtin_trap();
	alen = family == 4 ? 4 : 16;
	for (size_t i = 0; i < n; i++) {
		expect(g, r[i].lo, alen, want(r, n, r[i].lo, alen));
		expect(g, r[i].hi, alen, want(r, n, r[i].hi, alen));
	}
	/* Addresses from the input bytes against a linear scan. */
	for (size_t off = 1; off + alen <= size && off < 1 + 8 * alen; off += alen)
		expect(g, data + off, alen, want(r, n, data + off, alen));
	/* The companion's range is still there. */
	if (family == 4)
		expect(g, (const unsigned char *)"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\x12\x34", 16,
		       "ZZ");
	else
		expect(g, (const unsigned char *)"\x01\0\0\x7f", 4, "AU");
	geo_free(&g);
}

/* code_index - AA..ZZ: 0..675; "??": 676; anything else: -1. */
static int code_index(const char *s)
{
	if (s[0] == '?' && s[1] == '?')
		return 26 * 26;
	if (!isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]))
		return -1;
	return (toupper((unsigned char)s[0]) - 'A') * 26 + (toupper((unsigned char)s[1]) - 'A');
}

static void fuzz_filter(const uint8_t *data, size_t size)
{
	unsigned char allow[677] = {0}, deny[677] = {0};
	char *text = malloc(size + 1), err[256], cc[3];
	struct geo_filter *f;
	int valid = 1, entries = 0, nallow = 0;

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *p = text; valid;) {
		size_t len;
		int neg, idx;

		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,");
		neg = p[0] == '!';
		if (len - (size_t)neg != 2 || (idx = code_index(p + neg)) < 0) {
			valid = 0;
			break;
		}
		if (neg)
			deny[idx] = 1;
		else
			allow[idx] = 1, nallow++;
		entries++;
		p += len;
	}
	memset(err, 'X', sizeof(err));
	f = geo_filter_parse(text, err, sizeof(err));
	if ((f != NULL) != (valid && entries > 0))
		__builtin_trap();
	if (f == NULL) {
		if (memchr(err, '\0', sizeof(err)) == NULL ||
		    strncmp(err, "country filter: ", 16) != 0)
			__builtin_trap();
		free(text);
		return;
	}
	for (int i = 0; i <= 26 * 26; i++) {
		int want = !deny[i] && (nallow == 0 || allow[i]);

		if (i < 26 * 26) {
			cc[0] = (char)('A' + i / 26), cc[1] = (char)('A' + i % 26), cc[2] = '\0';
		} else {
			memcpy(cc, "??", 3);
		}
		if (geo_filter_allows(f, cc) != want)
			__builtin_trap();
		if (i < 26 * 26) { /* case does not matter */
			cc[0] = (char)tolower((unsigned char)cc[0]);
			if (geo_filter_allows(f, cc) != want)
				__builtin_trap();
		}
	}
	/* Whatever is not a code (a lookup's garbage) is judged as unknown. */
	if (geo_filter_allows(f, "1\xff") != (!deny[676] && (nallow == 0 || allow[676])))
		__builtin_trap();
	geo_filter_free(&f);
	if (f != NULL)
		__builtin_trap();
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd_in < 0)
		setup();
	if (size == 0)
		return 0;
	fuzz_tor(data, size);
	fuzz_filter(data + 1, size - 1);
	return 0;
}
