/*
 * smtp.h - mxguard's own SMTP dialogue (default_action = inspect): it
 * answers the client until the hand-off point (first RCPT, STARTTLS, AUTH).
 */
#ifndef MXG_SMTP_H
#define MXG_SMTP_H

struct conn;

/* smtp_start - finish the greeting and wait for commands. */
void smtp_start(struct conn *c);

/* smtp_resume - run commands already buffered (after output was flushed). */
void smtp_resume(struct conn *c);

/*
 * smtp_decided - the engine's answer to the pending RCPT/STARTTLS (an enum
 * grey_outcome): pass (hand off), tarpit, or reply (a CRLF-terminated line)
 * and go on with the dialogue. c may be gone on return.
 */
void smtp_decided(struct conn *c, int outcome, const char *reply);

#endif
