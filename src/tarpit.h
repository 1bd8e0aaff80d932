/*
 * tarpit.h - holding a suspect client's reply for tarpit_delay while
 * watching its socket: bots give up, real MTAs wait (RFC 5321 gives them 5
 * minutes for a RCPT reply).
 */
#ifndef MXG_TARPIT_H
#define MXG_TARPIT_H

struct conn;

/*
 * tarpit_start - hold c (its pending RCPT or STARTTLS is unanswered). After
 * tarpit_delay the client survived and is handed off; if it closes, resets
 * or talks before that, it dropped and is closed; so is a peer that vanished
 * without a FIN or RST (keepalive probes find it, see tarpit.c). Both are
 * reported to grey_tarpit_done().
 */
void tarpit_start(struct conn *c);

#endif
