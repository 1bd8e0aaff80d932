/*
 * smtp.c - the dialogue mxguard holds itself before a hand-off.
 *
 * mxguard answers EHLO/HELO, MAIL, RSET, NOOP, HELP and QUIT and records
 * what the backend will need to hear again. At the first RCPT of a
 * plaintext session, or at STARTTLS or AUTH, it hands the client to the
 * backend (handoff.c), which replays the recorded commands and answers the
 * pending one. Verbs follow OpenSMTPD's split: a check, then the action.
 *
 * The pregreet test (greet_wait, postscreen's): the greeting's first line
 * "220-" went out at accept; the final "220 " line is held while the
 * client's name is looked up, and for a suspect (unverified or S25R-dynamic
 * name) until greet_wait has passed since the start. A real MTA waits for
 * the last line of a greeting (RFC 5321 4.3.1, 4.5.3.2.1); many bots talk
 * as soon as they see a 220. Talking early gets what postscreen's "drop"
 * action gives, with a 4xx as mxguard never answers 5xx of its own: 421 and
 * close, after a tarpit record (its retry is greylisted). A dummy dialogue
 * up to RCPT (postscreen's "enforce") would only log the triplet of a
 * client already known to break the protocol.
 *
 * Every byte here comes from the network. Lines are bounded (2048 bytes,
 * 12288 for AUTH: what the MTA behind accepts), the input buffer exists only
 * while a partial line waits and grows only as far as a line needs, errors
 * are counted and end the session at smtp_error_limit, and reading pauses
 * while replies wait in the output queue, so pipelining cannot grow memory.
 * Time is bounded three ways (conn_dialogue_left): idle, per line (a line
 * trickled a byte at a time still has smtp_timeout in all) and per dialogue.
 *
 * While a suspect is held (tarpit.c), smtp_hold_read keeps what it
 * pipelines, within RFC 2920's rules, for the backend.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/event.h>

#include "conn.h"
#include "grey.h"
#include "handoff.h"
#include "log.h"
#include "mxguard.h"
#include "netaddr.h"
#include "probe.h"
#include "smtp.h"
#include "smtpcmd.h"
#include "tarpit.h"

static void smtp_read_cb(evutil_socket_t fd, short what, void *arg);

/*
 * smtp_error - count a protocol error and reply; past the limit, end the
 * session instead. Returns 0 (go on), 1 (session ending) or -1 (closed).
 */
static int smtp_error(struct conn *c, const char *reply)
{
	char buf[300];

	if (++c->errors > c->cfg->smtp_error_limit) {
		snprintf(buf, sizeof(buf), "421 4.7.0 %s Error: too many errors\r\n",
			 c->cfg->myhostname);
		return conn_finish(c, buf, END_ERRORS) < 0 ? -1 : 1;
	}
	return conn_printf(c, "%s\r\n", reply);
}

static int smtp_ehlo(struct conn *c, const struct smtpcmd *cmd, const char *line, size_t len)
{
	const char *caps = probe_caps(c->mxg->probe);
	char buf[2048];
	size_t o;

	if (conn_line_set(c, CONN_HELO, line, len) < 0)
		return conn_printf(c, "451 4.3.0 Error: out of memory\r\n");
	/* A new EHLO/HELO resets the transaction (RFC 5321 4.1.4). */
	conn_line_set(c, CONN_MAIL, NULL, 0);
	c->esmtp = cmd->verb == SMTP_EHLO;
	if (!c->esmtp)
		return conn_printf(c, "250 %s\r\n", c->cfg->myhostname);
	o = (size_t)snprintf(buf, sizeof(buf), "250-%s\r\n", c->cfg->myhostname);
	if (o >= sizeof(buf)) /* the length it wanted: config.c bounds myhostname */
		o = sizeof(buf) - 1;
	/* caps: "KEYWORD params\n" lines; the last one gets "250 ". */
	while (*caps && o < sizeof(buf)) {
		const char *nl = strchr(caps, '\n');
		size_t kl = nl ? (size_t)(nl - caps) : strlen(caps);
		int last = nl == NULL || nl[1] == '\0';

		if (o + kl + 7 > sizeof(buf))
			break;
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "250%c%.*s\r\n", last ? ' ' : '-',
				      (int)kl, caps);
		caps += kl + (nl != NULL);
	}
	if (buf[3] == '-' && strstr(buf, "\r\n250 ") == NULL) {
		/* No capabilities at all: the greeting line is the last line. */
		buf[3] = ' ';
	}
	return conn_write(c, buf, o);
}

static int smtp_mail(struct conn *c, const char *line, size_t len)
{
	if (c->helo == NULL)
		return smtp_error(c, "503 5.5.1 Error: send HELO/EHLO first");
	if (c->mail != NULL)
		return smtp_error(c, "503 5.5.1 Error: nested MAIL command");
	if (conn_line_set(c, CONN_MAIL, line, len) < 0)
		return conn_printf(c, "451 4.3.0 Error: out of memory\r\n");
	return conn_printf(c, "250 2.1.0 Ok\r\n");
}

/*
 * smtp_handoff - the command in line is answered by the backend, after the
 * engine's decision for RCPT and STARTTLS (returns 3), or at once for AUTH
 * (returns 2). Reading stops here: bytes after it stay in c->in for the
 * hand-off to forward. Both start in smtp_lines, once c->in is trimmed.
 */
static int smtp_handoff(struct conn *c, const struct smtpcmd *cmd, const char *line, size_t len)
{
	if (conn_line_set(c, CONN_PENDING, line, len) < 0)
		return conn_printf(c, "451 4.3.0 Error: out of memory\r\n") < 0 ? -1 : 0;
	c->pending_verb = (uint8_t)cmd->verb;
	conn_read_pause(c);
	return cmd->verb == SMTP_AUTH ? 2 : 3;
}

/*
 * smtp_command - act on one complete line. Returns 0 to go on with the
 * next line, 1 when the session is ending, 2 for a hand-off, 3 for a
 * decision of the engine, -1 when the connection was closed (c is gone).
 */
static int smtp_command(struct conn *c, const char *line, size_t len)
{
	struct smtpcmd cmd;
	char esc[80];
	char reply[300];

	switch (smtpcmd_parse(line, len, &cmd)) {
	case SMTPCMD_OK:
		break;
	case SMTPCMD_NUL:
		return smtp_error(c, "500 5.5.2 Error: NUL byte in command");
	case SMTPCMD_UNKNOWN:
		return smtp_error(c, "502 5.5.2 Error: command not recognized");
	case SMTPCMD_SYNTAX:
		snprintf(reply, sizeof(reply), "501 5.5.4 Syntax: %s", smtpcmd_usage(cmd.verb));
		return smtp_error(c, reply);
	}
	switch (cmd.verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
		return smtp_ehlo(c, &cmd, line, len);
	case SMTP_MAIL:
		return smtp_mail(c, line, len);
	case SMTP_RCPT:
		if (c->mail == NULL)
			return smtp_error(c, "503 5.5.1 Error: need MAIL command");
		return smtp_handoff(c, &cmd, line, len);
	case SMTP_STARTTLS:
	case SMTP_AUTH:
		if (c->helo == NULL || !c->esmtp)
			return smtp_error(c, "503 5.5.1 Error: send EHLO first");
		if (c->mail != NULL)
			return smtp_error(c, "503 5.5.1 Error: MAIL transaction in progress");
		return smtp_handoff(c, &cmd, line, len);
	case SMTP_DATA:
	case SMTP_BDAT:
		return smtp_error(c, c->mail ? "503 5.5.1 Error: need RCPT command"
					     : "503 5.5.1 Error: need MAIL command");
	case SMTP_RSET:
		conn_line_set(c, CONN_MAIL, NULL, 0);
		return conn_printf(c, "250 2.0.0 Ok\r\n") < 0 ? -1 : 0;
	case SMTP_NOOP:
		return conn_printf(c, "250 2.0.0 Ok\r\n") < 0 ? -1 : 0;
	case SMTP_HELP:
		return conn_printf(c, "214 2.0.0 See RFC 5321\r\n") < 0 ? -1 : 0;
	case SMTP_VRFY:
	case SMTP_EXPN:
		return smtp_error(c, "502 5.5.1 Error: command not implemented");
	case SMTP_QUIT:
		snprintf(reply, sizeof(reply), "221 2.0.0 %s Bye\r\n", c->cfg->myhostname);
		return conn_finish(c, reply, END_QUIT) < 0 ? -1 : 1;
	case SMTP_UNKNOWN:
		break;
	}
	log_warn("unexpected command %s", log_escape(esc, sizeof(esc), line, len));
	return smtp_error(c, "502 5.5.2 Error: command not recognized");
}

/*
 * smtp_lines - run the complete lines in c->in[0..inlen). Stops while
 * output is queued. Returns 1 if the connection left the dialogue or was
 * closed (c may be gone: the caller must not touch it), 0 otherwise.
 */
static int smtp_lines(struct conn *c)
{
	size_t off = 0;
	int rc = 0;

	while (off < c->inlen && c->outlen == 0 && rc == 0) {
		const char *buf = c->in + off;
		size_t avail = c->inlen - off, ll, used;

		if (c->discard) {
			/* The rest of an overlong line, already answered: skip it. */
			const char *lf = memchr(buf, '\n', avail);

			if (lf == NULL) {
				off = c->inlen;
				break;
			}
			off += (size_t)(lf - buf) + 1;
			c->discard = 0;
			continue;
		}
		switch (smtpcmd_scan(buf, avail, &ll, &used)) {
		case SMTPLINE_MORE:
			goto out;
		case SMTPLINE_TOO_LONG:
			/* Answer at once: the line end may never come. */
			c->discard = 1;
			rc = smtp_error(c, "500 5.5.2 Error: line too long");
			continue;
		case SMTPLINE_BARE_LF:
			/*
			 * Postfix 3.7 takes a command ended by a bare LF, so
			 * mxguard does too; the smuggling risk is in message
			 * content, which mxguard never reads (it replays the
			 * commands it saved with CRLF).
			 */
		case SMTPLINE_OK:
			off += used;
			rc = smtp_command(c, buf, ll);
			continue;
		}
	}
out:
	if (rc < 0)
		return 1;
	/* Keep what was not consumed (a partial line, or pipelined commands). */
	c->inlen -= (uint16_t)off;
	memmove(c->in, c->in + off, c->inlen);
	if (c->inlen == 0) {
		free(c->in);
		c->in = NULL;
		c->incap = 0;
	} else if (off > 0) {
		/* What is left began with the last read at the latest. */
		c->line_ms = conn_ms(c);
	}
	if (rc == 2)
		handoff_start(c);
	else if (rc == 3)
		grey_decide(c);
	return rc != 0;
}

/*
 * Input buffer: it starts small (most lines are short, and a held client
 * keeps its buffer only while it holds pipelined bytes) and grows, four
 * times at a step, up to the longest AUTH line plus a pipelined batch.
 */
#define SMTP_INBUF_MIN 1024
#define SMTP_INBUF_MAX (16 * 1024)

/*
 * smtp_inbuf_room - make room for more input. Returns the bytes free in
 * c->in (0 when it is full at its bound), or -1 when out of memory.
 */
static ssize_t smtp_inbuf_room(struct conn *c)
{
	if (c->in == NULL) {
		if ((c->in = malloc(SMTP_INBUF_MIN)) == NULL)
			return -1;
		c->incap = SMTP_INBUF_MIN;
		c->inlen = 0;
	} else if (c->inlen == c->incap && c->incap < SMTP_INBUF_MAX) {
		size_t cap = (size_t)c->incap * 4;
		char *grown;

		if (cap > SMTP_INBUF_MAX)
			cap = SMTP_INBUF_MAX;
		if ((grown = realloc(c->in, cap)) == NULL)
			return -1;
		c->in = grown;
		c->incap = (uint16_t)cap;
	}
	return (ssize_t)(c->incap - c->inlen);
}

static void smtp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char reply[300];
	ssize_t n, room;

	if ((what & EV_TIMEOUT) || conn_dialogue_left(c) == 0) {
		snprintf(reply, sizeof(reply), "421 4.4.2 %.255s Error: timeout exceeded\r\n",
			 c->cfg->myhostname);
		conn_finish(c, reply, END_TIMEOUT);
		return;
	}
	if ((room = smtp_inbuf_room(c)) < 0) {
		conn_finish(c, "421 4.3.0 Error: out of memory\r\n", END_CLIENT_ERROR);
		return;
	}
	n = recv(fd, c->in + c->inlen, (size_t)room, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? END_CLIENT_EOF : END_CLIENT_ERROR);
		return;
	}
	if (c->inlen == 0)
		c->line_ms = conn_ms(c);
	c->bytes_in += (uint64_t)n;
	c->inlen += (uint16_t)n;
	if (smtp_lines(c))
		return;
	/* Replies are queued: wait for conn_write_cb to flush and resume us. */
	if (c->outlen > 0)
		conn_read_pause(c);
	else
		conn_read_resume(c); /* the bounds as they are now */
}

/* smtp_hold_check - what c pipelined while held, checked (smtpcmd_pipe_check). */
static int smtp_hold_check(struct conn *c)
{
	struct smtpcmd_pipe p = {c->inscan, c->pipe_end, c->pipe_opaque};
	int rc = smtpcmd_pipe_check(c->in, c->inlen, &p);

	c->inscan = (uint16_t)p.scanned;
	c->pipe_end = p.end;
	c->pipe_opaque = p.opaque;
	return rc;
}

int smtp_hold_start(struct conn *c)
{
	c->inscan = 0;
	c->pipe_end = 0;
	c->pipe_opaque = 0;
	if (c->in != NULL && c->inlen == 0) {
		free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
	return smtp_hold_check(c);
}

int smtp_hold_read(struct conn *c)
{
	ssize_t room = smtp_inbuf_room(c), n;

	if (room < 0)
		return -1;
	if (room == 0)
		return 1; /* a whole legal batch at the bound: let TCP hold the rest */
	n = recv(c->fd, c->in + c->inlen, (size_t)room, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1; /* closed or reset during the hold: a drop */
	c->bytes_in += (uint64_t)n;
	c->inlen += (uint16_t)n;
	if (smtp_hold_check(c) < 0)
		return -1;
	return c->inlen == c->incap && c->incap == SMTP_INBUF_MAX ? 1 : 0;
}

/* smtp_resume - run commands already buffered (after output was flushed). */
static void smtp_resume(struct conn *c)
{
	if (c->inlen > 0 && smtp_lines(c))
		return;
	if (c->outlen == 0)
		conn_read_resume(c);
}

void smtp_decided(struct conn *c, int outcome, const char *reply)
{
	switch (outcome) {
	case GREY_PASS:
		handoff_start(c);
		return;
	case GREY_TARPIT:
		tarpit_start(c);
		return;
	default:
		/* Refused or deferred: the dialogue goes on, the command is done. */
		conn_line_set(c, CONN_PENDING, NULL, 0);
		if (conn_write(c, reply, strlen(reply)) < 0)
			return;
		smtp_resume(c);
	}
}

/* smtp_greet - send the greeting's final line and start the dialogue. */
static void smtp_greet(struct conn *c)
{
	conn_stage(c, STAGE_DIALOGUE);
	conn_read_event(c, c->fd, EV_READ | EV_PERSIST, smtp_read_cb);
	if (conn_printf(c, "220 %s ESMTP mxguard\r\n", c->cfg->myhostname) < 0)
		return;
	if (c->outlen == 0)
		conn_read_resume(c);
}

/* smtp_greet_held - seconds since accept (the "220-" line went out then). */
static double smtp_greet_held(const struct conn *c)
{
	struct timeval now, d;

	gettimeofday(&now, NULL);
	timersub(&now, &c->start, &d);
	return d.tv_sec < 0 ? 0.0 : (double)d.tv_sec + (double)d.tv_usec / 1e6;
}

/* smtp_pregreet_drop - c talked before the final greeting line: a bot. */
static void smtp_pregreet_drop(struct conn *c)
{
	char reply[300];

	grey_pregreet_drop(c, smtp_greet_held(c));
	snprintf(reply, sizeof(reply),
		 "421 4.7.0 %s Error: command before the greeting, try again later\r\n",
		 c->cfg->myhostname);
	conn_finish(c, reply, END_TARPIT_DROP);
}

/*
 * smtp_greet_cb - the final greeting line is held: greet_wait is over (the
 * client waited: greet it), or the socket moved before it (a bot that
 * talked, or a client that left).
 */
static void smtp_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char b;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		char ip[NETADDR_STRLEN];

		netaddr_ip((const struct sockaddr *)&c->client.ss, ip, sizeof(ip));
		log_info("pregreet pass client=%s after=%.1fs", ip, smtp_greet_held(c));
		smtp_greet(c);
		return;
	}
	/* Peek only: conn_finish drains what the client sent. */
	n = recv(fd, &b, 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? END_CLIENT_EOF : END_CLIENT_ERROR);
		return;
	}
	if (grey_greet_suspect(c) < 0) {
		/*
		 * The record is keyed by the verified name (greylist_key): wait
		 * for it, reading nothing more; a read event no longer pending
		 * tells smtp_greet_settled that the client talked. The lookup
		 * ends within its own timeout.
		 */
		event_del(conn_ev(c));
		return;
	}
	smtp_pregreet_drop(c);
}

void smtp_greet_settled(struct conn *c)
{
	if (c->stage != STAGE_GREET || c->closing)
		return;
	if (!event_pending(conn_ev(c), EV_READ, NULL))
		smtp_pregreet_drop(c);
	else if (grey_greet_suspect(c) == 0)
		smtp_greet(c);
}

void smtp_start(struct conn *c)
{
	struct timeval tv = {c->cfg->greet_wait, 0};

	/* The verified name is looked up while the client reads the greeting. */
	grey_connect(c);
	if (c->cfg->greet_wait == 0 || c->cfg->mode == MODE_WARN) {
		smtp_greet(c);
		return;
	}
	/* Hold the final line; watch the socket meanwhile (no input buffer). */
	conn_stage(c, STAGE_GREET);
	event_add(conn_read_event(c, c->fd, EV_READ | EV_PERSIST, smtp_greet_cb), &tv);
	/* Usually the name is still on its way: then smtp_greet_settled decides. */
	smtp_greet_settled(c);
}

const struct conn_phase smtp_phase = {
    .name = "dialogue",
    .stages = 1u << STAGE_DIALOGUE,
    .flushed = smtp_resume,
};

void smtp_accept(struct conn *c)
{
	const struct cfg *cfg = c->cfg;

	/*
	 * Under attack, clients not known before are suspects (shield.c);
	 * with default_action = pass they are inspected for the time being.
	 * Decided before any write: a failed write logs the connection.
	 */
	c->action =
	    cfg->default_action == ACTION_INSPECT || c->attack_suspect ? ACT_INSPECT : ACT_PASS;
	/*
	 * The first greeting line goes out at once. Its last line comes from
	 * the backend (pass) or from mxguard (inspect), so the client sees one
	 * ordinary greeting either way.
	 */
	if (conn_printf(c, "220-%s ESMTP mxguard\r\n", cfg->myhostname) < 0)
		return;
	if (c->action == ACT_INSPECT)
		smtp_start(c);
	else
		handoff_start(c);
}
