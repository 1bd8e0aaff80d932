/*
 * policy.h - the Postfix policy service: mxguard's taRgrey engine behind
 * Postfix's check_policy_service, for sites that keep Postfix on port 25.
 *
 * A request (policyproto.c) at protocol_state RCPT becomes a decision of
 * the same engine as the front's (grey.c), made on a struct conn of its
 * own that has no socket and no listener (fd -1, lst NULL: that is how
 * policy_is_request tells it from a client's); the engine's decided hook
 * (main.c) brings it back here, and the answer goes to Postfix.
 */
#ifndef MXG_POLICY_H
#define MXG_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* Policy connections served at once; more are closed at accept. */
#define POLICY_MAX_CONNS 1024

struct mxg;
struct cfg;
struct conn;
struct policy;

/* Answers, counted by kind (status, metrics). */
enum policy_action {
	POLICY_DUNNO,	  /* a pass, or not a state we decide in */
	POLICY_DEFER,	  /* DEFER_IF_PERMIT: greylisted (or the tarpit's stand-in) */
	POLICY_PREPEND,	  /* PREPEND X-Greylist: a suspect's pass (policy_prepend) */
	POLICY_REJECT,	  /* a client list's reply, as the front gives it */
	POLICY_FAILED,	  /* a store or DNS failure: policy_fail_action */
	POLICY_MALFORMED, /* a request that does not parse or is too big: DUNNO */
	POLICY_NACTIONS
};

/* policy_action_name - "dunno", "defer"... for logs, status and metrics labels. */
const char *policy_action_name(int action);

/*
 * policy_check - would policy_open accept cfg's policy_listen (each a
 * numeric "host:port", "[v6]:port" or "unix:/absolute/path", at most 8)?
 * Nothing is opened. Returns 0, or -1 with the message in err.
 */
int policy_check(const struct cfg *cfg, char *err, size_t errsz);

/*
 * policy_open - bind every policy_listen address of mxg->cfg, before the
 * privilege drop (a unix socket is made as uid:gid, mode 0666: the
 * directory it is in decides who may reach it). mxg->policy stays NULL when
 * policy_listen is empty. Returns 0, or -1 with a message in err.
 */
int policy_open(struct mxg *mxg, uid_t uid, gid_t gid, char *err, size_t errsz);

/* policy_start - serve the opened sockets on mxg->base. Returns 0 or -1. */
int policy_start(struct mxg *mxg);

/*
 * policy_close - stop listening and close every policy connection (the
 * decisions still running are cancelled). Unix socket files are removed.
 */
void policy_close(struct mxg *mxg);

/* policy_disown - policy_close leaves the unix sockets' paths (the master removes them). */
void policy_disown(struct mxg *mxg);

/* policy_is_request - is c a policy request's (not a client's) connection? */
int policy_is_request(const struct conn *c);

/*
 * policy_decided - the engine's decision for the request c (grey_hooks'
 * decided, through main.c): answer Postfix, then read the next request.
 */
void policy_decided(struct conn *c, int outcome, const char *reply);

/* policy_lost - the engine could not queue c's decision (memory): end its connection. */
void policy_lost(struct conn *c);

/*
 * policy_counts - answers by enum policy_action since start, and the
 * connections open now; zeros when the service is off (p NULL).
 */
void policy_counts(const struct policy *p, uint64_t counts[POLICY_NACTIONS], int *conns);

/*
 * policy_status - the control socket's "policy" members (connections,
 * refused, answers by action) into obj; nothing when the service is off.
 */
void policy_status(const struct policy *p, json_t *obj);

#endif
