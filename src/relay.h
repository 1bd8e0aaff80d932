/*
 * relay.h - bytes both ways between client and backend, once mxguard is
 * out of the protocol.
 */
#ifndef MXG_RELAY_H
#define MXG_RELAY_H

#include <stddef.h>

struct conn;
struct bufferevent;

/*
 * relay_start - relay between c's client socket (which the relay takes
 * over) and the backend bufferevent bev (owned from now on). Client output
 * still queued in c goes first; left[0..leftlen), client input read but
 * not consumed, goes to the backend first. c may be gone on return.
 */
void relay_start(struct conn *c, struct bufferevent *bev, const char *left, size_t leftlen);

/* relay_free - release the relay's sockets and state (connection closing). */
void relay_free(struct conn *c);

#endif
