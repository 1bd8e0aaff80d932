/*
 * fuzz_rules.c - libFuzzer target: client and recipient lists (rules.c),
 * every format they are read in. The first byte chooses the reader:
 * regexp:PATH, cidr:PATH, postgrey:PATH, a recipient opt-out file, or
 * the operator's entries (each line through rules_white_add(), as
 * `mxguardctl add white` and the white records restored from the store
 * reach it); the rest is the file.
 *
 * Checked: an error is NUL-terminated within its buffer and, for a file,
 * starts "PATH:LINE: " (or "PATH: " when the file cannot be read); a set
 * that loads answers classification and recipient lookups with
 * NUL-terminated texts, for names and addresses taken from the input
 * (and white_del takes every entry away again). The sanitizers catch the
 * rest (the stack overflow "1." + 51 digits caused in rules_cidr).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_file.h"
#include "lines.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PROBES 16 /* input lines used as names, addresses, recipients */

static int fd = -1;
static char path[64];

/* check_err - a loader's error: terminated, and naming the file first. */
static void check_err(const char *err, size_t errsz)
{
	int line;

	if (fuzz_err_after(err, errsz, path, &line) == NULL && strstr(err, "out of memory") == NULL)
		__builtin_trap();
}

static void check_class(const struct classification *c)
{
	if (memchr(c->reason, '\0', sizeof(c->reason)) == NULL ||
	    memchr(c->reply, '\0', sizeof(c->reply)) == NULL ||
	    memchr(c->warn, '\0', sizeof(c->warn)) == NULL)
		__builtin_trap();
	if (c->verdict != VERDICT_CLEAN && c->verdict != VERDICT_SUSPECT &&
	    c->verdict != VERDICT_WHITE && c->verdict != VERDICT_BLACK)
		__builtin_trap();
}

/* probe - classify word as a name and, if it is one, as an address. */
static void probe(const struct rules *r, const char *word)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	struct classification c;

	rules_classify(r, word, NULL, &c);
	check_class(&c);
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	s4.sin_family = AF_INET;
	s6.sin6_family = AF_INET6;
	if (inet_pton(AF_INET, word, &s4.sin_addr) == 1) {
		rules_classify(r, "unknown", (struct sockaddr *)&s4, &c);
		check_class(&c);
	} else if (inet_pton(AF_INET6, word, &s6.sin6_addr) == 1) {
		rules_classify(r, "unknown", (struct sockaddr *)&s6, &c);
		check_class(&c);
	}
}

/* words - up to max first words of the lines of text (split in place). */
static int words(char *text, char **out, int max)
{
	int n = 0;

	for (char *line = strtok(text, "\n"); line != NULL && n < max; line = strtok(NULL, "\n")) {
		char *w = line + strspn(line, " \t\r/!");

		w[strcspn(w, " \t\r/")] = '\0';
		if (*w)
			out[n++] = w;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const kinds[] = {"regexp:", "cidr:", "postgrey:"};
	char err[256], spec[128], *text, *probes[MAX_PROBES], *specs[1];
	struct rules *r;
	int n, kind;

	if (size < 1)
		return 0;
	if (fd < 0)
		fd = fuzz_memfile("rules", path, sizeof(path));
	kind = data[0] % 5;
	fuzz_put(fd, data + 1, size - 1);
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	n = words(text, probes, MAX_PROBES);
	memset(err, 0x55, sizeof(err));
	if (kind < 3) {
		snprintf(spec, sizeof(spec), "%s%s", kinds[kind], path);
		specs[0] = spec;
		r = rules_load(specs, 1, err, sizeof(err));
	} else if (kind == 3) {
		specs[0] = path;
		r = rules_rcpt_load(specs, 1, err, sizeof(err));
	} else {
		r = rules_load(NULL, 0, err, sizeof(err));
	}
	if (r == NULL) {
		check_err(err, sizeof(err));
		free(text);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (kind == 3) {
			char reason[64];

			memset(reason, 0x55, sizeof(reason));
			if (rules_rcpt_match(r, probes[i], reason, sizeof(reason)) &&
			    memchr(reason, '\0', sizeof(reason)) == NULL)
				__builtin_trap();
			continue;
		}
		if (kind == 4) {
			memset(err, 0x55, sizeof(err));
			if (rules_white_add(r, probes[i], err, sizeof(err)) < 0) {
				if (memchr(err, '\0', sizeof(err)) == NULL)
					__builtin_trap();
				continue;
			}
		}
		probe(r, probes[i]);
	}
	if (kind == 4)
		for (int i = n - 1; i >= 0; i--)
			rules_white_del(r, probes[i]);
	rules_free(&r);
	free(text);
	return 0;
}
