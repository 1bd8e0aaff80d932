/*
 * fuzz_config.c - libFuzzer target: the input as mxguard.conf through
 * cfg_load(), service_NAME values included (cfg_service_parse()).
 *
 * An error must be "FILE:LINE: message", NUL-terminated within the
 * buffer; the two checks made after the file is read ("state_dir: ...",
 * "myhostname: ...") have no line to name. A configuration that loads is
 * printed (cfg_print(), what mxguard -n shows), the print loaded again
 * must print the same, and its values must be the ones first loaded: a
 * print that cut a value short would still print the same twice.
 *
 * The input is also one service_NAME value for cfg_service_parse(); what
 * it accepts must be in range.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_file.h"
#include "lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd_in = -1, fd_again = -1;
static char path_in[64], path_again[64];

/* check_err - "PATH:LINE: message" or a post-read check, NUL-terminated. */
static void check_err(const char *err, size_t errsz, const char *path)
{
	int line;
	const char *p = fuzz_err_after(err, errsz, path, &line);

	if (strncmp(err, "state_dir: ", 11) == 0 || strncmp(err, "myhostname: ", 12) == 0)
		return;
	/* The whole-file check of a backend that is one of our own listeners. */
	if (strncmp(err, "backend ", 8) == 0 ||
	    (strncmp(err, "service_", 8) == 0 && strstr(err, ": backend ") != NULL))
		return;
	if (p == NULL || !line || p[0] != ' ' || p[1] == '\0')
		__builtin_trap();
}

static char *print(const struct cfg *cfg, size_t *len)
{
	char *text = NULL;
	FILE *fp = open_memstream(&text, len);

	if (fp == NULL)
		abort();
	cfg_print(cfg, fp, 1);
	if (fclose(fp) != 0)
		abort();
	return text;
}

/* longest_line - of text; a print line longer than LINES_MAX cannot be read back. */
static size_t longest_line(const char *text)
{
	size_t max = 0;

	for (const char *p = text; *p;) {
		size_t l = strcspn(p, "\n");

		if (l > max)
			max = l;
		p += l + (p[l] != '\0');
	}
	return max;
}

static void same_str(const char *a, const char *b)
{
	if (strcmp(a, b) != 0)
		__builtin_trap();
}

/* same - the values a reload of the print must give back (strings: nothing cut). */
static void same(const struct cfg *a, const struct cfg *b)
{
#define SAME(f) same_str(a->f, b->f)
	SAME(myhostname);
	SAME(state_dir);
	SAME(control_socket);
	SAME(run_as);
	SAME(client_lists);
	SAME(dns_resolvers);
	SAME(helo_lists);
	SAME(recipient_whitelist);
	SAME(dnsbl_sites);
	SAME(sender_ns_lists);
	SAME(allow_clients);
	SAME(block_clients);
	SAME(smtp_countries);
	SAME(smtp_refuse_temp);
	SAME(smtp_refuse_perm);
	SAME(attack_countries);
	SAME(notify_recipient);
	SAME(notify_sender);
	SAME(notify_relay);
	SAME(notify_command);
	SAME(firewall_table);
	SAME(geo_database);
	SAME(metrics_listen);
	SAME(store);
#undef SAME
	if (a->smtp_listen_n != b->smtp_listen_n || a->nservices != b->nservices)
		__builtin_trap();
	for (int i = 0; i < a->nservices; i++) {
		const struct cfg_service *x = &a->services[i], *y = &b->services[i];

		same_str(x->name, y->name);
		same_str(x->text, y->text);
		same_str(x->group, y->group);
		same_str(x->countries ? x->countries : "", y->countries ? y->countries : "");
		if (x->nlisten != y->nlisten || x->proxy != y->proxy || x->timeout != y->timeout ||
		    x->conn_per_source != y->conn_per_source ||
		    x->rate_per_prefix != y->rate_per_prefix)
			__builtin_trap();
	}
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	char err[512], *text, *again;
	size_t tlen, alen;
	struct cfg *cfg, *cfg2;

	fuzz_put(fd_in, data, size);
	memset(err, 'X', sizeof(err));
	if ((cfg = cfg_load(path_in, 0, NULL, 0, err, sizeof(err))) == NULL) {
		check_err(err, sizeof(err), path_in);
		return;
	}
	text = print(cfg, &tlen);
	fuzz_put(fd_again, text, tlen);
	memset(err, 'X', sizeof(err));
	if ((cfg2 = cfg_load(path_again, 0, NULL, 0, err, sizeof(err))) == NULL) {
		/*
		 * Known limit, reported: a value of nearly LINES_MAX bytes
		 * loads, but "name = value" is then longer than LINES_MAX.
		 */
		if (longest_line(text) > LINES_MAX)
			goto done;
		__builtin_trap();
	}
	again = print(cfg2, &alen);
	if (alen != tlen || memcmp(text, again, tlen) != 0)
		__builtin_trap();
	same(cfg, cfg2);
	free(again);
	cfg_unref(&cfg2);
done:
	free(text);
	cfg_unref(&cfg);
}

static void fuzz_service(const uint8_t *data, size_t size)
{
	struct cfg_service sv;
	char value[LINES_MAX + 1], err[512];

	if (size >= sizeof(value) || memchr(data, '\0', size) != NULL)
		return; /* a logical line is at most LINES_MAX bytes, without NUL */
	memcpy(value, data, size);
	value[size] = '\0';
	memset(&sv, 0, sizeof(sv));
	memset(err, 'X', sizeof(err));
	if (cfg_service_parse(&sv, value, err, sizeof(err)) < 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			__builtin_trap();
	} else if (sv.nlisten < 1 || sv.nlisten > CFG_MAX_LISTEN || sv.group[0] == '\0' ||
		   memchr(sv.group, '\0', sizeof(sv.group)) == NULL || sv.timeout < 10 ||
		   sv.timeout > 86400 || sv.bogus < 0 || sv.bogus > 1 || sv.shield < 0 ||
		   sv.shield > 1 || sv.refuse < 0 || sv.refuse > 1 || sv.conn_per_source < -1 ||
		   sv.conn_per_source > 1000000 || sv.rate_per_prefix < -1 ||
		   sv.rate_per_prefix > 1000000) {
		__builtin_trap();
	}
	free(sv.countries);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd_in < 0) {
		fd_in = fuzz_memfile("fuzz_config", path_in, sizeof(path_in));
		fd_again = fuzz_memfile("fuzz_config_print", path_again, sizeof(path_again));
	}
	fuzz_file(data, size);
	fuzz_service(data, size);
	return 0;
}
