/*
 * backend.h - one connection from mxguard to the backend MTA, in the phase
 * where mxguard still speaks SMTP to it: connect with a timeout, send the
 * PROXY header, read replies one at a time. The relay takes the socket
 * over with backend_detach().
 */
#ifndef MXG_BACKEND_H
#define MXG_BACKEND_H

#include <stddef.h>

#include "netaddr.h"
#include "reply.h"

struct event_base;
struct evbuffer;
struct backend;

enum backend_event { BACKEND_REPLY, BACKEND_FAIL };

/*
 * The callback gets each complete reply (text[0..r->len), not
 * NUL-terminated, valid during the call only), or one BACKEND_FAIL with a
 * reason in text (NUL-terminated). After BACKEND_FAIL the owner must call
 * backend_free(); during BACKEND_REPLY it may call backend_send,
 * backend_detach or backend_free.
 */
typedef void (*backend_cb)(struct backend *b, enum backend_event ev, const struct reply *r,
			   const char *text, void *arg);

/*
 * backend_connect - start a connection to addr. header[0..hlen) (a PROXY
 * header, or nothing) is sent first. timeout_secs bounds the connect and
 * the wait for every reply. Returns NULL only when no socket could be made.
 */
struct backend *backend_connect(struct event_base *base, const struct netaddr *addr,
				int timeout_secs, const char *header, size_t hlen, backend_cb cb,
				void *arg);

/* backend_send - queue bytes for the backend. Returns 0 or -1. */
int backend_send(struct backend *b, const void *data, size_t len);

/*
 * backend_detach - stop reading replies; move input not yet delivered to
 * the callback into `in`; free b and return the socket, which the caller
 * now owns (and closes). Call it only from a reply callback: every command
 * sent before has then been written, since it was answered.
 */
int backend_detach(struct backend *b, struct evbuffer *in);

/* backend_free - close and free; sets *bp to NULL. */
void backend_free(struct backend **bp);

#endif
