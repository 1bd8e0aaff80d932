/*
 * test_geo.c - country lookup and country filters.
 *
 * The sample tor files in geo/ (found through MXG_TEST_SRCDIR) with exact
 * answers at range edges; broken files written here, each with its
 * "PATH:LINE: message"; a .mmdb file written here in the MaxMind DB
 * format and read back through libmaxminddb; the filters; and Debian's
 * tor-geoipdb files when installed: ranges picked from the files at run
 * time must give their code at both ends, and the load time, memory and
 * lookup time are printed.
 */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "geo.h"

#define REAL4 "/usr/share/tor/geoip"
#define REAL6 "/usr/share/tor/geoip6"

static char tmpdir[] = "/tmp/mxg-geo-XXXXXX";

/* sa_of - a sockaddr for a text address; aborts on a typo in a table. */
static const struct sockaddr *sa_of(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else {
		fprintf(stderr, "test table: bad address %s\n", text);
		exit(2);
	}
	return (const struct sockaddr *)ss;
}

static void check_lookups(const struct geo *g, const char *what, const char *const (*t)[2],
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		char cc[3] = "xx";
		int rc = geo_lookup(g, sa_of(t[i][0], &ss), cc);

		CHECK(strcmp(cc, t[i][1]) == 0 && rc == (strcmp(t[i][1], "??") != 0),
		      "%s: %s: got %s rc %d, want %s", what, t[i][0], cc, rc, t[i][1]);
	}
}

/* The sample files: edges of each range, just outside, unknown, mapped. */
static const char *const sample[][2] = {
    {"0.0.0.0", "JP"},
    {"0.0.0.255", "JP"},
    {"0.0.1.0", "??"},
    {"0.255.255.255", "??"},
    {"1.0.0.0", "AU"},
    {"1.0.0.255", "AU"},
    {"1.0.1.0", "CN"}, /* adjacent ranges */
    {"1.0.2.128", "CN"},
    {"1.0.3.255", "CN"},
    {"1.0.4.0", "??"},
    {"192.0.2.0", "??"}, /* a "??" range */
    {"192.0.2.255", "??"},
    {"198.51.99.255", "??"},
    {"198.51.100.0", "DE"},
    {"198.51.100.255", "DE"},
    {"198.51.101.0", "??"},
    {"198.51.101.6", "??"},
    {"198.51.101.7", "IT"}, /* one-address range */
    {"198.51.101.8", "??"},
    {"203.0.113.0", "FR"},
    {"203.0.113.127", "FR"},
    {"203.0.113.128", "??"},
    {"255.255.254.255", "??"},
    {"255.255.255.0", "ZZ"},
    {"255.255.255.255", "ZZ"},
    {"::ffff:198.51.100.0", "DE"}, /* IPv4-mapped: the IPv4 table */
    {"::ffff:203.0.113.128", "??"},
    {"::ffff:1.0.3.255", "CN"},
    {"::", "??"},
    {"::1", "??"},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "??"},
    {"2001:db8::", "DE"},
    {"2001:db8:0:ffff:ffff:ffff:ffff:ffff", "DE"},
    {"2001:db8:1::", "FR"},
    {"2001:db8:1::ff", "FR"},
    {"2001:db8:1::100", "IT"},
    {"2001:db8:1::101", "??"},
    {"2001:db8:1::1ff", "??"},
    {"2001:db8:2::1", "??"},
    {"2001:db8:3::", "US"},
    {"2001:db8:3:ffff:ffff:ffff:ffff:ffff", "US"},
    {"2001:db8:4::", "??"},
    {"ffff:ffff:ffff:fffe:ffff:ffff:ffff:ffff", "??"},
    {"ffff:ffff:ffff:ffff::", "ZZ"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ZZ"},
};

static void test_sample(const char *dir)
{
	char spec[2048], err[512];
	struct geo *g;

	/* Order in the spec does not matter: the content tells the family. */
	snprintf(spec, sizeof(spec), "%s/geo/geoip6  %s/geo/geoip", dir, dir);
	g = geo_open(spec, err, sizeof(err));
	CHECK(g != NULL, "geo_open sample: %s", err);
	if (g == NULL)
		return;
	/* 8 + 6 lines, one "??" in each. */
	CHECK(geo_count(g) == 12, "sample count %zu", geo_count(g));
	check_lookups(g, "sample", sample, sizeof(sample) / sizeof(sample[0]));
	{
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		char cc[3] = "xx";

		CHECK(geo_lookup(g, (const struct sockaddr *)&sun, cc) == 0 &&
			  strcmp(cc, "??") == 0,
		      "AF_UNIX: %s", cc);
	}
	geo_free(&g);
	CHECK(g == NULL, "geo_free clears the pointer");

	/* Only the IPv4 file: IPv6 addresses are unknown, mapped ones are not. */
	snprintf(spec, sizeof(spec), "%s/geo/geoip", dir);
	g = geo_open(spec, err, sizeof(err));
	CHECK(g != NULL && geo_count(g) == 7, "IPv4 only: %s", g ? "count" : err);
	if (g != NULL) {
		static const char *const t[][2] = {
		    {"2001:db8::", "??"}, {"::ffff:0.0.0.7", "JP"}, {"1.0.0.1", "AU"}};

		check_lookups(g, "IPv4 only", t, 3);
		geo_free(&g);
	}
}

/* Broken files and specs: the exact message, with PATH:LINE. */
static const struct {
	const char *name, *content, *want; /* want: after "DIR/" */
} broken[] = {
    {"v4-fields", "# c\n1,2\n", "v4-fields:2: expected low,high,CC, got '1,2'"},
    {"v4-four", "1,2,DE,x\n", "v4-four:1: expected low,high,CC, got '1,2,DE,x'"},
    {"v4-num", "1,2,DE\n3,4x,FR\n", "v4-num:2: bad IPv4 number '4x'"},
    {"v4-big", "4294967296,4294967296,DE\n", "v4-big:1: bad IPv4 number '4294967296'"},
    {"v4-neg", "-1,5,DE\n", "v4-neg:1: bad IPv4 number '-1'"},
    {"v4-empty-field", ",5,DE\n", "v4-empty-field:1: bad IPv4 number ''"},
    {"v4-cc", "1,2,DEU\n", "v4-cc:1: bad country code 'DEU'"},
    {"v4-cc-digit", "1,2,D1\n", "v4-cc-digit:1: bad country code 'D1'"},
    {"v4-cc-empty", "1,2,\n", "v4-cc-empty:1: bad country code ''"},
    {"v4-order", "#\n10,20,DE\n5,8,FR\n",
     "v4-order:3: ranges not sorted: starts before the range of line 2"},
    {"v4-overlap", "10,20,DE\n\n20,30,FR\n", "v4-overlap:3: range overlaps the range of line 1"},
    {"v4-overlap-unknown", "10,20,??\n15,30,FR\n",
     "v4-overlap-unknown:2: range overlaps the range of line 1"},
    {"v4-inverted", "30,20,DE\n", "v4-inverted:1: low address above high address"},
    {"v4-in-v6", "2001:db8::,2001:db8::ff,DE\n1,2,FR\n", "v4-in-v6:2: bad IPv6 address '1'"},
    {"v6-bad", "2001:db8::,2001:db8::zz,DE\n", "v6-bad:1: bad IPv6 address '2001:db8::zz'"},
    {"v6-order", "2001:db8:1::,2001:db8:1::ff,DE\n2001:db8::,2001:db8::ff,FR\n",
     "v6-order:2: ranges not sorted: starts before the range of line 1"},
    {"v6-overlap", "2001:db8::,2001:db8::ff,DE\n2001:db8::ff,2001:db8::1ff,FR\n",
     "v6-overlap:2: range overlaps the range of line 1"},
    {"v6-inverted", "2001:db8::ff,2001:db8::,DE\n",
     "v6-inverted:1: low address above high address"},
    {"v4-nul", "1,2,DE\n3,4,F\0R\n", "v4-nul:2: NUL byte in line"},
    {"comments-only", "# nothing\n#\n", "comments-only: no address ranges"},
    {"empty", "", "empty: no address ranges"},
    {"ctrl", "1,2,\033[31m\n", "ctrl:1: bad country code '?[31m'"},
};

static void write_file(const char *path, const char *content, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fwrite(content, 1, len, fp) != len || fclose(fp) != 0) {
		perror(path);
		exit(2);
	}
}

static void test_broken(void)
{
	char path[600], want[800], err[512];
	struct geo *g;

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		/* The NUL case: its whole length, past the NUL (7 + 8 bytes). */
		size_t len = strcmp(broken[i].name, "v4-nul") == 0 ? 15 : strlen(broken[i].content);

		snprintf(path, sizeof(path), "%s/%s", tmpdir, broken[i].name);
		write_file(path, broken[i].content, len);
		snprintf(want, sizeof(want), "%s/%s", tmpdir, broken[i].want);
		err[0] = 0;
		g = geo_open(path, err, sizeof(err));
		CHECK(g == NULL && strcmp(err, want) == 0, "%s: got '%s', want '%s'",
		      broken[i].name, err, want);
		geo_free(&g);
	}

	/* Specs. Two files of one family; a missing file; .mmdb with others. */
	snprintf(path, sizeof(path), "%s/a4", tmpdir);
	write_file(path, "1,2,DE\n", strlen("1,2,DE\n"));
	snprintf(path, sizeof(path), "%s/a4 %s/a4", tmpdir, tmpdir);
	g = geo_open(path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/a4:1: a second IPv4 file", tmpdir);
	CHECK(g == NULL && strcmp(err, want) == 0, "two IPv4 files: '%s'", err);

	snprintf(path, sizeof(path), "%s/a4 %s/none", tmpdir, tmpdir);
	g = geo_open(path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/none: No such file or directory", tmpdir);
	CHECK(g == NULL && strcmp(err, want) == 0, "missing file: '%s'", err);

	snprintf(path, sizeof(path), "%s/a4 %s/x.mmdb", tmpdir, tmpdir);
	g = geo_open(path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/x.mmdb: a .mmdb database must be the only file", tmpdir);
	CHECK(g == NULL && strcmp(err, want) == 0, "mmdb with others: '%s'", err);

	g = geo_open(" \t ", err, sizeof(err));
	CHECK(g == NULL && strcmp(err, "geo: no database file given") == 0, "empty spec: '%s'",
	      err);
	g = geo_open(tmpdir, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	CHECK(g == NULL && strcmp(err, want) == 0, "directory: '%s'", err);

	/* CRLF line ends and lower-case codes are accepted. */
	snprintf(path, sizeof(path), "%s/crlf", tmpdir);
	{
		static const char crlf[] = "# x\r\n1,2,de\r\n3,3,??\r\n";

		write_file(path, crlf, sizeof(crlf) - 1);
	}
	g = geo_open(path, err, sizeof(err));
	CHECK(g != NULL && geo_count(g) == 1, "CRLF file: %s", g ? "count" : err);
	if (g != NULL) {
		static const char *const t[][2] = {{"0.0.0.2", "DE"}, {"0.0.0.3", "??"}};

		check_lookups(g, "CRLF", t, 2);
		geo_free(&g);
	}
}

/*
 * A minimal MaxMind DB writer, from the format specification: a binary
 * search tree of 24-bit records over 128 address bits (IPv4 under
 * ::/96), 16 zero bytes, the data section, then the metadata marker and
 * map. No writer is among the installed dependencies (Debian's is a
 * Perl module); this lets the real libmaxminddb read a file with known
 * content.
 */
struct mm {
	unsigned char *buf;
	size_t len, cap;
};

static void mm_put(struct mm *m, const void *p, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		if ((m->buf = realloc(m->buf, m->cap)) == NULL)
			exit(2);
	}
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

/* mm_ctrl - control byte(s): types over 7 are "extended". */
static void mm_ctrl(struct mm *m, int type, size_t size)
{
	unsigned char b[2];

	if (size >= 29) {
		fprintf(stderr, "mm writer: size %zu unsupported\n", size);
		exit(2);
	}
	if (type <= 7) {
		b[0] = (unsigned char)(type << 5 | (int)size);
		mm_put(m, b, 1);
	} else {
		b[0] = (unsigned char)size;
		b[1] = (unsigned char)(type - 7);
		mm_put(m, b, 2);
	}
}

static void mm_str(struct mm *m, const char *s)
{
	mm_ctrl(m, 2, strlen(s));
	mm_put(m, s, strlen(s));
}

static void mm_uint(struct mm *m, int type, uint64_t v)
{
	unsigned char b[8];
	size_t n = 0;

	for (uint64_t x = v; x; x >>= 8)
		n++;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
	mm_ctrl(m, type, n);
	mm_put(m, b, n);
}

/* One record: {KIND: {"iso_code": CC}}, or {"other": "x"} for NULL. */
static size_t mm_record(struct mm *data, const char *kind, const char *cc)
{
	size_t off = data->len;

	mm_ctrl(data, 7, 1);
	if (kind == NULL) {
		mm_str(data, "other");
		mm_str(data, "x");
		return off;
	}
	mm_str(data, kind);
	mm_ctrl(data, 7, 1);
	mm_str(data, "iso_code");
	mm_str(data, cc);
	return off;
}

struct mm_node {
	long child[2]; /* 0: empty (the root is no one's child), >0: node, <0: -(data+1) */
};

static void mm_insert(struct mm_node **nodes, size_t *n, const char *text, int plen, long data)
{
	unsigned char a[16];
	struct sockaddr_storage ss;
	const struct sockaddr *sa = sa_of(text, &ss);
	size_t cur = 0;

	memset(a, 0, sizeof(a));
	if (sa->sa_family == AF_INET) {
		memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		plen += 96;
	} else {
		memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
	for (int bit = 0; bit < plen; bit++) {
		int b = (a[bit / 8] >> (7 - bit % 8)) & 1;

		if (bit == plen - 1) {
			(*nodes)[cur].child[b] = -(data + 1);
			break;
		}
		if ((*nodes)[cur].child[b] <= 0) {
			if ((*nodes = realloc(*nodes, (*n + 1) * sizeof(**nodes))) == NULL)
				exit(2);
			memset(&(*nodes)[*n], 0, sizeof(**nodes));
			(*nodes)[cur].child[b] = (long)*n;
			(*n)++;
		}
		cur = (size_t)(*nodes)[cur].child[b];
	}
}

static void mm_write(const char *path)
{
	struct mm data = {0}, out = {0};
	struct mm_node *nodes = calloc(1, sizeof(*nodes));
	size_t n = 1;
	long de = (long)mm_record(&data, "country", "DE");
	long fr = (long)mm_record(&data, "country", "FR");
	long jp = (long)mm_record(&data, "country", "JP");
	long us = (long)mm_record(&data, "registered_country", "US");
	long none = (long)mm_record(&data, NULL, NULL);
	static const unsigned char zero[16], marker[] = "\xAB\xCD\xEFMaxMind.com";

	if (nodes == NULL)
		exit(2);
	mm_insert(&nodes, &n, "198.51.100.0", 24, de);
	mm_insert(&nodes, &n, "203.0.113.0", 25, fr);
	mm_insert(&nodes, &n, "192.0.2.0", 24, none);
	mm_insert(&nodes, &n, "2001:db8::", 32, jp);
	mm_insert(&nodes, &n, "2001:db9::", 48, us);
	for (size_t i = 0; i < n; i++) {
		unsigned char rec[6];

		for (int c = 0; c < 2; c++) {
			long v = nodes[i].child[c];
			uint32_t r = v == 0  ? (uint32_t)n
				     : v > 0 ? (uint32_t)v
					     : (uint32_t)(n + 16 + (size_t)(-v - 1));

			rec[c * 3] = (unsigned char)(r >> 16);
			rec[c * 3 + 1] = (unsigned char)(r >> 8);
			rec[c * 3 + 2] = (unsigned char)r;
		}
		mm_put(&out, rec, 6);
	}
	mm_put(&out, zero, 16);
	mm_put(&out, data.buf, data.len);
	mm_put(&out, marker, sizeof(marker) - 1);
	mm_ctrl(&out, 7, 9);
	mm_str(&out, "binary_format_major_version");
	mm_uint(&out, 5, 2);
	mm_str(&out, "binary_format_minor_version");
	mm_uint(&out, 5, 0);
	mm_str(&out, "build_epoch");
	mm_uint(&out, 9, 1700000000);
	mm_str(&out, "database_type");
	mm_str(&out, "mxguard-Test-Country");
	mm_str(&out, "description");
	mm_ctrl(&out, 7, 1);
	mm_str(&out, "en");
	mm_str(&out, "mxguard test");
	mm_str(&out, "ip_version");
	mm_uint(&out, 5, 6);
	mm_str(&out, "languages");
	mm_ctrl(&out, 11, 1);
	mm_str(&out, "en");
	mm_str(&out, "node_count");
	mm_uint(&out, 6, n);
	mm_str(&out, "record_size");
	mm_uint(&out, 5, 24);
	write_file(path, (const char *)out.buf, out.len);
	free(out.buf);
	free(data.buf);
	free(nodes);
}

static void test_mmdb(void)
{
	static const char *const t[][2] = {
	    {"198.51.99.255", "??"},
	    {"198.51.100.0", "DE"},
	    {"198.51.100.255", "DE"},
	    {"198.51.101.0", "??"},
	    {"::ffff:198.51.100.9", "DE"}, /* mapped: looked up as IPv4 */
	    {"203.0.113.127", "FR"},
	    {"203.0.113.128", "??"},
	    {"192.0.2.1", "??"}, /* a record without a country */
	    {"2001:db8::", "JP"},
	    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "JP"},
	    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "??"},
	    {"2001:db9::1", "US"}, /* registered_country only */
	    {"2001:db9:1::", "??"},
	};
	char path[600], want[800], err[512];
	struct geo *g;

	snprintf(path, sizeof(path), "%s/test.mmdb", tmpdir);
	mm_write(path);
	g = geo_open(path, err, sizeof(err));
	CHECK(g != NULL, "geo_open mmdb: %s", err);
	if (g != NULL) {
		CHECK(geo_count(g) == 0, "mmdb count %zu", geo_count(g));
		check_lookups(g, "mmdb", t, sizeof(t) / sizeof(t[0]));
		geo_free(&g);
	}

	snprintf(path, sizeof(path), "%s/missing.mmdb", tmpdir);
	g = geo_open(path, err, sizeof(err));
	snprintf(want, sizeof(want),
		 "%s: Error opening the specified MaxMind DB file: No such file or directory",
		 path);
	CHECK(g == NULL && strcmp(err, want) == 0, "missing mmdb: '%s'", err);

	snprintf(path, sizeof(path), "%s/corrupt.mmdb", tmpdir);
	write_file(path, "1,2,DE\nnot a MaxMind DB\n", strlen("1,2,DE\nnot a MaxMind DB\n"));
	g = geo_open(path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: The MaxMind DB file contains invalid metadata", path);
	CHECK(g == NULL && strcmp(err, want) == 0, "corrupt mmdb: '%s'", err);
}

static const struct {
	const char *filter, *cc;
	int want;
} filters[] = {
    {"DE FR ??", "DE", 1},   {"DE FR ??", "FR", 1},  {"DE FR ??", "??", 1},
    {"DE FR ??", "US", 0},   {"DE FR", "??", 0},     {"!CN !RU", "CN", 0},
    {"!CN !RU", "RU", 0},    {"!CN !RU", "US", 1},   {"!CN !RU", "??", 1},
    {"!??", "??", 0},	     {"!??", "ZZ", 1},	     {"de,fr", "FR", 1}, /* commas, lower case */
    {" DE , FR ,", "DE", 1}, {"DE,FR", "IT", 0},     {"DE FR !FR", "FR", 0}, /* deny wins */
    {"DE FR !FR", "DE", 1},  {"DE FR !FR", "IT", 0}, /* the allow list restricts */
    {"DE !CN", "CN", 0},     {"AA ZZ", "ZZ", 1},     {"AA ZZ", "AA", 1},
    {"AA ZZ", "AB", 0},	     {"!DE", "de", 0}, /* the code asked about is case-insensitive too */
    {"!DE", "", 1},			       /* not a code: unknown */
    {"DE", "1A", 0},	     {"??", "1A", 1},
};

static const struct {
	const char *filter, *err;
} bad_filters[] = {
    {"", "country filter: empty"},
    {" , ,", "country filter: empty"},
    {"DEU", "country filter: bad entry 'DEU' (want CC, !CC or ??, CC two letters)"},
    {"DE !", "country filter: bad entry '!' (want CC, !CC or ??, CC two letters)"},
    {"D1", "country filter: bad entry 'D1' (want CC, !CC or ??, CC two letters)"},
    {"!!DE", "country filter: bad entry '!!DE' (want CC, !CC or ??, CC two letters)"},
    {"DE ?X", "country filter: bad entry '?X' (want CC, !CC or ??, CC two letters)"},
    {"DE;FR", "country filter: bad entry 'DE;FR' (want CC, !CC or ??, CC two letters)"},
};

static void test_filters(void)
{
	char err[256];

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		struct geo_filter *f = geo_filter_parse(filters[i].filter, err, sizeof(err));

		CHECK(f != NULL, "filter '%s': %s", filters[i].filter, err);
		if (f == NULL)
			continue;
		CHECK(geo_filter_allows(f, filters[i].cc) == filters[i].want,
		      "filter '%s' on '%s': want %d", filters[i].filter, filters[i].cc,
		      filters[i].want);
		geo_filter_free(&f);
		CHECK(f == NULL, "geo_filter_free clears the pointer");
	}
	for (size_t i = 0; i < sizeof(bad_filters) / sizeof(bad_filters[0]); i++) {
		struct geo_filter *f;

		err[0] = 0;
		f = geo_filter_parse(bad_filters[i].filter, err, sizeof(err));
		CHECK(f == NULL && strcmp(err, bad_filters[i].err) == 0,
		      "bad filter '%s': got '%s'", bad_filters[i].filter, err);
		geo_filter_free(&f);
	}
	CHECK(geo_filter_allows(NULL, "CN") == 1, "no filter admits all");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * The file's data lines: every STEP-th one (plus the first and last)
 * must give its code at its low and high address; "??" ranges must be
 * unknown. Returns the number of ranges with a known code.
 */
static size_t check_real(const struct geo *g, const char *path, int v6, size_t step)
{
	FILE *fp = fopen(path, "r");
	char line[256], prev[256] = "";
	size_t known = 0, data = 0, checked = 0;

	if (fp == NULL) {
		CHECK(0, "%s: cannot reopen", path);
		return 0;
	}
	for (;;) {
		int last = fgets(line, sizeof(line), fp) == NULL;
		const char *l = last ? prev : line;

		if (!last && (line[0] == '#' || line[0] == '\n'))
			continue;
		if (!last)
			data++;
		if (l[0] != 0 && (last || data == 1 || data % step == 0)) {
			char lo[64], hi[64], cc[3], want[8], got[3];
			struct sockaddr_storage ss;

			if (sscanf(l, "%63[^,],%63[^,],%7s", lo, hi, want) != 3) {
				CHECK(0, "%s: unreadable line '%s'", path, l);
				break;
			}
			if (!v6) {
				struct in_addr a;

				a.s_addr = htonl((uint32_t)strtoul(lo, NULL, 10));
				inet_ntop(AF_INET, &a, lo, sizeof(lo));
				a.s_addr = htonl((uint32_t)strtoul(hi, NULL, 10));
				inet_ntop(AF_INET, &a, hi, sizeof(hi));
			}
			geo_lookup(g, sa_of(lo, &ss), cc);
			geo_lookup(g, sa_of(hi, &ss), got);
			CHECK(strcmp(cc, want) == 0 && strcmp(got, want) == 0,
			      "%s: %s..%s: got %s/%s, want %s", path, lo, hi, cc, got, want);
			checked++;
		}
		if (last)
			break;
		if (strstr(line, ",??") == NULL)
			known++;
		memcpy(prev, line, sizeof(prev));
	}
	fclose(fp);
	printf("%s: %zu ranges, %zu with a code, %zu checked at both ends\n", path, data, known,
	       checked);
	return known;
}

static void test_real(void)
{
	struct mallinfo2 before, after;
	double t0, ms;
	char err[512];
	struct geo *g;
	size_t known;

	if (access(REAL4, R_OK) != 0 || access(REAL6, R_OK) != 0) {
		printf("SKIP real files: %s or %s missing (Debian package tor-geoipdb)\n", REAL4,
		       REAL6);
		return;
	}
	before = mallinfo2();
	t0 = now_ms();
	g = geo_open(REAL4 " " REAL6, err, sizeof(err));
	ms = now_ms() - t0;
	after = mallinfo2();
	CHECK(g != NULL, "real files: %s", err);
	if (g == NULL)
		return;
	printf(
	    "real files: %zu ranges loaded in %.1f ms, %.1f MB of heap\n", geo_count(g), ms,
	    ((double)(after.uordblks + after.hblkhd) - (double)(before.uordblks + before.hblkhd)) /
		1e6);
	known = check_real(g, REAL4, 0, 997);
	known += check_real(g, REAL6, 1, 991);
	CHECK(geo_count(g) == known, "geo_count %zu, the files have %zu ranges with a code",
	      geo_count(g), known);
	{
		/* Lookup time over pseudo-random addresses (a fixed LCG). */
		struct sockaddr_in sin = {.sin_family = AF_INET};
		uint32_t x = 12345;
		size_t hits = 0, n = 1000000;
		char cc[3];

		t0 = now_ms();
		for (size_t i = 0; i < n; i++) {
			x = x * 1664525u + 1013904223u;
			sin.sin_addr.s_addr = x;
			hits += (size_t)geo_lookup(g, (const struct sockaddr *)&sin, cc);
		}
		ms = now_ms() - t0;
		printf("real files: %zu IPv4 lookups, %zu known, %.0f ns each\n", n, hits,
		       ms * 1e6 / (double)n);
		CHECK(hits > n / 2, "most random IPv4 addresses have a country (%zu)", hits);
	}
	geo_free(&g);
}

int main(void)
{
	const char *dir = getenv("MXG_TEST_SRCDIR");
	char cmd[64];

	if (dir == NULL) {
		fprintf(stderr, "test_geo: MXG_TEST_SRCDIR not set (run through meson test)\n");
		return 2;
	}
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_sample(dir);
	test_broken();
	test_mmdb();
	test_filters();
	test_real();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_geo: could not remove %s\n", tmpdir);
	return check_done("geo");
}
