/*
 * relay.h - bytes both ways between client and backend, once mxguard is
 * out of the protocol.
 */
#ifndef MXG_RELAY_H
#define MXG_RELAY_H

#include <stddef.h>

struct conn;
struct conn_phase;
struct evbuffer;

/*
 * relay_start - relay between c's client socket and the backend socket
 * bfd; the relay owns both from now on. Client output still queued in c
 * goes to the client first, then to_client; to_backend goes to the
 * backend first. Both buffers are emptied (their contents move) and stay
 * the caller's. c may be gone on return.
 */
void relay_start(struct conn *c, int bfd, struct evbuffer *to_client, struct evbuffer *to_backend);

/* relay_free - release the relay's sockets and state (connection closing). */
void relay_free(struct conn *c);

/* The relay's hooks in the connection layer (conn_phase_add): release frees its state. */
extern const struct conn_phase relay_phase;

#endif
