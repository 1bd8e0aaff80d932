/*
 * explain.h - "explain ADDR [NAME]" on the control socket: everything
 * mxguard knows and would decide about one address (lists and their lines,
 * blocks, store records of its keys, country, limits, the verdict at the
 * first RCPT), read from the running daemon without changing anything.
 */
#ifndef MXG_EXPLAIN_H
#define MXG_EXPLAIN_H

#include <stddef.h>

#include <jansson.h>

struct mxg;

/* The longest NAME accepted: a DNS name is at most 253 characters. */
#define EXPLAIN_NAME_MAX 253

/*
 * explain_answer - args is "ADDR [NAME]" (the request after "explain ").
 * Returns the answer ({"ok":true,...}) as a new json_t, the caller's (the
 * control socket dumps it), or NULL with a message in err (bad address,
 * bad or oversized NAME, out of memory). NAME is the verified name to assume; without it the name
 * comes from what the daemon has seen (a live connection of ADDR, the recent verdicts), else it is
 * unknown: no DNS lookup is made. Store records are read by synchronous walks (store_list), as list
 * does.
 */
json_t *explain_answer(struct mxg *mxg, const char *args, char *err, size_t errsz);

#endif
