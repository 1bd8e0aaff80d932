/*
 * fuzz_spf.c - libFuzzer target: TXT record text through the SPF record
 * check, the term reader and macro expansion (spf.c's parser part). The
 * input is a record as dns.c delivers it (printable bytes; others are
 * tried too).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * spf.c's check calls dns.c; the parser never does. These stand-ins keep
 * the target to the parser (they are never reached from here).
 */
struct dns_req *dns_spf(struct dns *d, const char *domain, dns_names_cb cb, void *arg)
{
	return NULL;
}
struct dns_req *dns_mx(struct dns *d, const char *domain, dns_names_cb cb, void *arg)
{
	return NULL;
}
struct dns_req *dns_addrs(struct dns *d, const char *name, dns_addrs_cb cb, void *arg)
{
	return NULL;
}
struct dns_req *dns_addrs6(struct dns *d, const char *name, dns_addrs6_cb cb, void *arg)
{
	return NULL;
}
void dns_cancel(struct dns_req *req)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *rec = (const char *)data, *why = NULL;
	struct spf_macro_ctx m = {
	    "user@example.com", "example.com", "helo.example", AF_INET, {192, 0, 2, 1}};
	struct spf_term t;
	char out[SPF_NAME_MAX + 1];
	size_t pos = 6;
	int n = spf_record_check(rec, size, &why), k, terms = 0;

	if (size < 6)
		return 0;
	/* Read the terms whatever the check said: the reader must stay in bounds. */
	while ((k = spf_term_next(rec, size, &pos, &t, &why)) > 0) {
		if (pos > size ||
		    (t.domain != NULL && (t.domain < rec || t.domain + t.domlen > rec + size)))
			__builtin_trap();
		terms++;
		if (t.domain != NULL) {
			int len = spf_expand(t.domain, t.domlen, &m, out, sizeof(out));

			if (len >= 0 && (strlen(out) != (size_t)len || len > SPF_NAME_MAX))
				__builtin_trap();
		}
	}
	if (n >= 0 && (k < 0 || n != terms))
		__builtin_trap();
	return 0;
}
