/*
 * fuzz_cidr.c - libFuzzer target: the input as a cidr:PATH file through
 * cidr_load(). An error must be "PATH:LINE: ...", NUL-terminated within
 * the buffer. A set that loads must answer cidr_match() as a brute-force
 * scan of the networks written in the file would, for addresses taken
 * from the networks themselves and from the input bytes, and count each
 * distinct network once.
 *
 * The reference re-reads the file itself: lines split at '\n', one '\r'
 * dropped, blanks trimmed, '#' comments, the first word; inet_pton() for
 * the address. A network is its 16-byte key (IPv4 as ::ffff:a.b.c.d) and
 * a length in that 128-bit space. As cidr.c documents, an IPv4 address is
 * never in an IPv6 network shorter than ::ffff:0:0/96.
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

#include "cidr.h"
#include "fuzz_file.h"
#include "lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NETS 4096  /* more lines than a 4 KB input can hold */
#define MAX_CHECKED 64 /* networks whose own addresses are probed */

struct net {
	struct ipkey k;
	int len; /* in the 128-bit key space */
};

static int fd = -1;
static char path[64];

/* ref_in - is a in network n, by the rule of cidr.h? */
static int ref_in(const struct ipkey *a, const struct net *n)
{
	int full = n->len / 8, rest = n->len % 8;

	if (netaddr_key_is_v4(a) && n->len < 96)
		return 0;
	if (memcmp(a->b, n->k.b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a->b[full] ^ n->k.b[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static int ref_match(const struct ipkey *a, const struct net *nets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ref_in(a, &nets[i]))
			return 1;
	return 0;
}

/* ref_net - a word cidr_add() took, as a network; -1 if we cannot read it. */
static int ref_net(const char *word, struct net *out)
{
	char buf[128], *slash;
	int max;

	if (strlen(word) >= sizeof(buf))
		return -1;
	strcpy(buf, word);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->k.b + 12) == 1) {
		out->k.b[10] = out->k.b[11] = 0xff;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->k.b) == 1) {
		max = 128;
	} else {
		return -1;
	}
	out->len = slash ? (int)strtol(slash, NULL, 10) : max;
	if (out->len < 0 || out->len > max)
		return -1;
	if (max == 32)
		out->len += 96;
	return 0;
}

static int net_cmp(const void *a, const void *b)
{
	const struct net *x = a, *y = b;
	int c = memcmp(x->k.b, y->k.b, 16);

	return c ? c : x->len - y->len;
}

/* check - cidr_match() and the reference agree on a. */
static void check(const struct cidr *set, const struct ipkey *a, const struct net *nets, size_t n)
{
	if (cidr_match(set, a) != ref_match(a, nets, n))
		__builtin_trap();
}

/* check_err - "PATH:LINE: message", NUL-terminated in the buffer. */
static void check_err(const char *err, size_t errsz)
{
	int line;
	const char *p = fuzz_err_after(err, errsz, path, &line);

	if (p == NULL || !line || p[0] != ' ')
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct net nets[MAX_NETS];
	char spec[80], err[256], line[LINES_MAX + 2];
	struct cidr *set;
	size_t n = 0, uniq, off;
	int rc;

	if (fd < 0)
		fd = fuzz_memfile("fuzz_cidr", path, sizeof(path));
	fuzz_put(fd, data, size);
	snprintf(spec, sizeof(spec), "cidr:%s", path);
	if ((set = cidr_new()) == NULL)
		abort();
	memset(err, 'X', sizeof(err));
	rc = cidr_load(set, spec, err, sizeof(err));
	if (rc < 0) {
		check_err(err, sizeof(err));
		cidr_free(&set);
		return 0;
	}
	/* Loaded: every word was taken; read them back. */
	for (off = 0; off < size;) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
		char *w;

		/* lines.c refuses lines that are too long or hold a NUL. */
		if (len >= sizeof(line) || memchr(data + off, '\0', len) != NULL)
			__builtin_trap();
		memcpy(line, data + off, len);
		line[len] = '\0';
		off += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		for (w = line; isspace((unsigned char)*w); w++)
			;
		for (char *e = w + strlen(w); e > w && isspace((unsigned char)e[-1]);)
			*--e = '\0';
		if (*w == '\0' || *w == '#')
			continue;
		w[strcspn(w, " \t")] = '\0';
		if (n == MAX_NETS || ref_net(w, &nets[n]) < 0)
			__builtin_trap();
		n++;
	}
	qsort(nets, n, sizeof(nets[0]), net_cmp);
	for (size_t i = uniq = 0; i < n; i++)
		if (uniq == 0 || net_cmp(&nets[i], &nets[uniq - 1]) != 0)
			nets[uniq++] = nets[i];
	if (cidr_count(set) != uniq)
		__builtin_trap();
	/* Each network's own address, the one after it, and one inside with a low bit flipped. */
	for (size_t i = 0; i < uniq && i < MAX_CHECKED; i++) {
		struct ipkey a = nets[i].k;
		int j;

		check(set, &a, nets, uniq);
		for (j = 15; j >= 0 && ++a.b[j] == 0; j--)
			;
		check(set, &a, nets, uniq);
		a = nets[i].k;
		a.b[15] ^= 1;
		check(set, &a, nets, uniq);
	}
	/* Addresses from the input bytes, as IPv6 and as IPv4. */
	for (off = 0; off + 16 <= size && off < 16 * 8; off += 16) {
		struct ipkey a;

		memcpy(a.b, data + off, 16);
		check(set, &a, nets, uniq);
		memset(a.b, 0, 10);
		a.b[10] = a.b[11] = 0xff;
		check(set, &a, nets, uniq);
	}
	cidr_free(&set);
	return 0;
}
