/*
 * service.h - guarded non-SMTP services (POP3, IMAP, submission, their TLS
 * ports): an admitted client is connected to its service's backend, a
 * PROXY header (v2, v1) or nothing is sent first, and bytes are relayed
 * both ways untouched. mxguard never speaks these protocols itself.
 */
#ifndef MXG_SERVICE_H
#define MXG_SERVICE_H

struct conn;
struct conn_phase;

/*
 * service_start - connect c (accepted on a service listener) to its
 * backend. On failure the client is closed and the failure logged; a
 * non-SMTP client cannot be told anything mxguard could word for it.
 */
void service_start(struct conn *c);

/* service_free - the pending backend connection of c, if any. */
void service_free(struct conn *c);

/* The service's hooks in the connection layer (conn_phase_add): release frees its state. */
extern const struct conn_phase service_phase;

#endif
