/*
 * fuzz_control.c - libFuzzer target: what a local client writes on the
 * control socket, through the request parser (control_parse_request).
 *
 * The input is cut into lines at LF (a CR before it dropped), as
 * evbuffer_readln(EVBUFFER_EOL_CRLF) cuts them, and each line is parsed.
 * Whatever the line, the result must be one of the known requests, every
 * string in it terminated within its array, the argument inside the copy
 * of the line, a record verb's kind a real kind and a block's seconds in
 * range; a request that parses to a record verb must parse the same again
 * when rebuilt from its parts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct control_req *rq)
{
	if (memchr(rq->err, '\0', sizeof(rq->err)) == NULL ||
	    memchr(rq->line, '\0', sizeof(rq->line)) == NULL)
		__builtin_trap();
	if (rq->arg != NULL &&
	    (rq->arg < rq->line || rq->arg >= rq->line + sizeof(rq->line) ||
	     memchr(rq->arg, '\0', (size_t)(rq->line + sizeof(rq->line) - rq->arg)) == NULL))
		__builtin_trap();
	switch (rq->op) {
	case CONTROL_OP_BAD:
		if (rq->err[0] == '\0')
			__builtin_trap();
		break;
	case CONTROL_OP_STATUS:
	case CONTROL_OP_TOP:
	case CONTROL_OP_PING:
	case CONTROL_OP_RELOAD:
		break;
	case CONTROL_OP_NOTIFY_TEST:
	case CONTROL_OP_EXPLAIN:
		if (rq->arg == NULL)
			__builtin_trap();
		break;
	case CONTROL_OP_LIST:
	case CONTROL_OP_FLUSH:
	case CONTROL_OP_ADD:
	case CONTROL_OP_DEL:
	case CONTROL_OP_RECORD_BAD:
		if (rq->kind < 0 || rq->kind >= STORE_NKINDS)
			__builtin_trap();
		if ((rq->op == CONTROL_OP_ADD || rq->op == CONTROL_OP_DEL) && rq->arg == NULL)
			__builtin_trap();
		if ((rq->op == CONTROL_OP_LIST || rq->op == CONTROL_OP_FLUSH) && rq->arg != NULL)
			__builtin_trap();
		if (rq->op == CONTROL_OP_ADD && rq->kind != STORE_WHITE && rq->kind != STORE_BLOCK)
			__builtin_trap();
		if (rq->op == CONTROL_OP_RECORD_BAD && rq->err[0] == '\0')
			__builtin_trap();
		break;
	default:
		__builtin_trap();
	}
	if (rq->secs < 0 || rq->secs > 365L * 86400 ||
	    (rq->secs != 0 && (rq->op != CONTROL_OP_ADD || rq->kind != STORE_BLOCK)))
		__builtin_trap();
}

/* again - a record request rebuilt from its parts parses to the same. */
static void again(const struct control_req *rq)
{
	static const char *const verbs[] = {[CONTROL_OP_LIST] = "list",
					    [CONTROL_OP_FLUSH] = "flush",
					    [CONTROL_OP_ADD] = "add",
					    [CONTROL_OP_DEL] = "del"};
	static struct control_req back;
	char line[CONTROL_LINE_MAX + 64];
	int n;

	if (rq->op < CONTROL_OP_LIST || rq->op > CONTROL_OP_DEL)
		return;
	if (rq->arg == NULL)
		n = snprintf(line, sizeof(line), "%s %s", verbs[rq->op], store_kind_name(rq->kind));
	else if (rq->secs != 0)
		n = snprintf(line, sizeof(line), "%s %s %s %ld", verbs[rq->op],
			     store_kind_name(rq->kind), rq->arg, rq->secs);
	else
		n = snprintf(line, sizeof(line), "%s %s %s", verbs[rq->op],
			     store_kind_name(rq->kind), rq->arg);
	if (n < 0 || (size_t)n >= sizeof(line) || n > CONTROL_LINE_MAX)
		return;
	if (control_parse_request(line, (size_t)n, &back) != (int)rq->op || back.kind != rq->kind ||
	    back.secs != rq->secs || (back.arg == NULL) != (rq->arg == NULL) ||
	    (back.arg != NULL && strcmp(back.arg, rq->arg) != 0))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct control_req rq;
	const char *buf = (const char *)data, *p = buf, *e = buf + size, *nl;

	while (p < e) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(e - p));
		n = nl ? (size_t)(nl - p) : (size_t)(e - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		control_parse_request(p, n, &rq);
		check(&rq);
		again(&rq);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}
