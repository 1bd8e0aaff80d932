/*
 * handoff.h - handing a client to the backend MTA with its real identity:
 * connect, PROXY header or XCLIENT, replay of what the client already said,
 * then the relay.
 */
#ifndef MXG_HANDOFF_H
#define MXG_HANDOFF_H

struct conn;
struct conn_phase;

/*
 * handoff_start - begin the hand-off of c. In pass mode the backend's
 * greeting becomes the client's; in inspect mode c->pending holds the
 * command whose answer comes from the backend. c may be gone when this
 * returns (a failed write while reporting a failure): callers call it last
 * and do not touch c afterwards.
 */
void handoff_start(struct conn *c);

/*
 * handoff_name_known - the verified-name lookup of c ended (grey.c): an
 * XCLIENT hand-off waiting for the name goes on. Does nothing otherwise.
 * c may be gone on return, as with handoff_start.
 */
void handoff_name_known(struct conn *c);

/* handoff_free - drop the hand-off state (connection closing). */
void handoff_free(struct conn *c);

/* The hand-off's hooks in the connection layer (conn_phase_add): release frees its state. */
extern const struct conn_phase handoff_phase;

#endif
