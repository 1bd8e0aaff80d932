/*
 * smtp.h - mxguard's own SMTP dialogue (default_action = inspect): it
 * answers the client until the hand-off point (first RCPT, STARTTLS, AUTH).
 */
#ifndef MXG_SMTP_H
#define MXG_SMTP_H

struct conn;
struct conn_phase;

/* The dialogue's hooks in the connection layer (conn_phase_add). */
extern const struct conn_phase smtp_phase;

/*
 * smtp_accept - the first phase of a client of an SMTP listener (the
 * shield has admitted it and set c->attack_suspect): choose pass or
 * inspect, send the first greeting line, and start the dialogue or the
 * hand-off. c may be gone afterwards.
 */
void smtp_accept(struct conn *c);

/*
 * smtp_start - finish the greeting and wait for commands. With greet_wait
 * set, the final "220 " line is held while the client's name is looked up
 * and, for a suspect, for greet_wait in all (postscreen's pregreet test): a
 * client that talks before it is answered 421 and closed, and recorded like
 * a tarpit drop.
 */
void smtp_start(struct conn *c);

/*
 * smtp_greet_settled - the engine knows whether c (held before its final
 * greeting line, STAGE_GREET) is a suspect: a client that is not gets the
 * line now; a suspect waits out greet_wait. c may be gone afterwards.
 */
void smtp_greet_settled(struct conn *c);

/*
 * smtp_decided - the engine's answer to the pending RCPT/STARTTLS (an enum
 * grey_outcome): pass (hand off), tarpit, or reply (a CRLF-terminated line)
 * and go on with the dialogue. c may be gone on return.
 */
void smtp_decided(struct conn *c, int outcome, const char *reply);

/*
 * smtp_hold_start - a hold begins (tarpit.c): check what the client has
 * pipelined so far. Returns 0, or -1 when it already broke RFC 2920's
 * rules (the caller treats it as a drop).
 */
int smtp_hold_start(struct conn *c);

/*
 * smtp_hold_read - the held client's socket is readable: keep what it
 * pipelines (at most 16 KiB, for the backend after the hold). Returns 0
 * (go on watching), 1 (the buffer is full of legal commands: stop reading
 * and let TCP hold the rest), or -1 (closed, reset or broke the protocol:
 * a drop).
 */
int smtp_hold_read(struct conn *c);

#endif
