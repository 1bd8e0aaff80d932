/*
 * notify.c - notices to the admin: the log, a mail, a command.
 *
 * Every notice is logged at once, as one line. Mail and command are
 * rate-limited per kind: one notice of a kind per notify_interval goes out,
 * the others are counted and the count rides along with the next one, so a
 * flood of blocks or a flapping attack never becomes a mail storm. The one
 * exception is an attack end whose start went out: the admin who was told
 * "attack" must be told "over", whatever the interval says.
 *
 * The mail is a small asynchronous SMTP client on the daemon's loop, built
 * on backend.c (connect timeout, bounded multi-line replies). The whole
 * message is composed before the connection starts, so a reload in the
 * middle changes nothing. A failed mail is logged with its stage and the
 * server's reply, and retried once after NOTIFY_RETRY seconds when the
 * failure looks temporary; never more, and never more than NOTIFY_MAILS_MAX
 * at a time.
 *
 * The command runs without a shell, started by a helper process that the
 * network process talks to over a socket (notify_cmd.c): the network
 * process may not exec (sandbox.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "mxguard.h"
#include "netaddr.h"
#include "notify.h"
#include "notify_cmd.h"
#include "proxy.h"
#include "strbuf.h"

#define NOTIFY_RETRY 60	       /* seconds before the single retry of a mail */
#define NOTIFY_MAILS_MAX 16    /* mails in flight or waiting for their retry */
#define NOTIFY_RCPT_MAX 8      /* recipients in notify_recipient */
#define NOTIFY_ADDR_MAX 256    /* longest envelope address */
#define NOTIFY_GROUPS_MAX 16   /* groups whose attack start went out */
#define NOTIFY_LINE_MAX 998    /* RFC 5322 line limit, CRLF excluded */

enum mail_stage {
	MAIL_GREETING,
	MAIL_EHLO,
	MAIL_HELO,
	MAIL_FROM,
	MAIL_RCPT,
	MAIL_DATA,
	MAIL_BODY,
	MAIL_QUIT,
};

static const char *const mail_stage_names[] = {
    "connect/greeting", "EHLO", "HELO", "MAIL FROM", "RCPT TO", "DATA", "message", "QUIT",
};

static const char *const notify_kind_names[NOTIFY_NKINDS] = {
    "blocks",
    "attack_start",
    "attack_end",
    "test",
};

struct notify_mail {
	struct notify *n;
	struct notify_mail *next;
	struct backend *b;
	struct event *retry;
	enum notify_kind kind;
	enum mail_stage stage;
	int attempt;
	int rcpt_next; /* next recipient to send RCPT TO for */
	int rcpt_ok;   /* recipients accepted */
	struct netaddr addr;
	char relay[NETADDR_STRLEN];
	char msgid[300]; /* for the log: the admin can find the mail */
	char hdr[PROXY_HDR_MAX];
	int hlen;
	int timeout;
	char *helo;
	char *sender;
	char *rcpts[NOTIFY_RCPT_MAX];
	int nrcpt;
	char *msg; /* the DATA part, dot-stuffed, ending in CRLF.CRLF */
	size_t msglen;
};

struct notify {
	struct mxg *mxg;
	struct notify_mail *mails;
	int nmails;
	struct notify_cmd *cmd; /* notify_command's helper process */
	unsigned long seq;	    /* for Message-IDs */
	time_t last[NOTIFY_NKINDS]; /* when the last notice of a kind went out; 0: never */
	unsigned held[NOTIFY_NKINDS];
	time_t held_since[NOTIFY_NKINDS];
	char started[NOTIFY_GROUPS_MAX][CFG_NAME_MAX]; /* attack starts that went out */
	int nstarted;
};

/* One notice being prepared: the caller's data, cleaned and bounded. */
struct notice {
	enum notify_kind kind;
	const char *subject;
	const char *body;
	const struct notify_kv *kv;
	int nkv;
	unsigned held;
	time_t held_since;
};

const char *notify_kind_name(enum notify_kind kind)
{
	return (unsigned)kind < NOTIFY_NKINDS ? notify_kind_names[kind] : "unknown";
}

/* ---------------------------------------------------------------- log */

/* notify_log_value - " NAME=value", quoted when empty or spaced, escaped. */
static void notify_log_value(struct strbuf *sb, const char *name, const char *value)
{
	char esc[512];
	size_t len = strnlen(value, NOTIFY_VALUE_MAX);

	log_escape(esc, sizeof(esc), value, len);
	if (len == 0 || strchr(esc, ' ') != NULL)
		strbuf_printf(sb, " %s=\"%s\"", name, esc);
	else
		strbuf_printf(sb, " %s=%s", name, esc);
}

static void notify_log(const struct notice *nt, const char *out)
{
	struct strbuf sb = {0};
	char esc[512], name[64];

	log_escape(esc, sizeof(esc), nt->subject, strnlen(nt->subject, NOTIFY_VALUE_MAX));
	strbuf_printf(&sb, "notice kind=%s subject=\"%s\"", notify_kind_name(nt->kind), esc);
	for (int i = 0; i < nt->nkv; i++) {
		log_escape(name, sizeof(name), nt->kv[i].name, strnlen(nt->kv[i].name, 32));
		notify_log_value(&sb, name, nt->kv[i].value);
	}
	strbuf_printf(&sb, " out=%s", out);
	if (nt->held > 0)
		strbuf_printf(&sb, " held_back=%u", nt->held);
	log_info("%s", sb.oom ? "notice (out of memory while formatting)" : sb.s);
	strbuf_free(&sb);
}

/* ---------------------------------------------------------------- mail */

static void mail_free(struct notify_mail *m)
{
	struct notify *n = m->n;

	for (struct notify_mail **pp = &n->mails; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			n->nmails--;
			break;
		}
	backend_free(&m->b);
	if (m->retry != NULL)
		event_free(m->retry);
	free(m->helo);
	free(m->sender);
	for (int i = 0; i < m->nrcpt; i++)
		free(m->rcpts[i]);
	free(m->msg);
	free(m);
}

static void mail_start(struct notify_mail *m);

static void mail_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	mail_start(arg);
}

/*
 * mail_fail - log why the mail failed, with the stage and the server's
 * first reply line (or the socket error), then retry once when it may be
 * temporary (no answer, or a 4xx), or give up.
 */
static void mail_fail(struct notify_mail *m, const char *why, size_t whylen, int code)
{
	char esc[300];
	struct timeval tv = {NOTIFY_RETRY, 0};
	int retry = m->attempt == 1 && code / 100 != 5;

	log_escape(esc, sizeof(esc), why, whylen);
	log_warn("notice mail failed: kind=%s relay=%s stage=%s reply=\"%s\"%s",
		 notify_kind_name(m->kind), m->relay, mail_stage_names[m->stage], esc,
		 retry ? "; one retry in 60s" : "; giving up");
	backend_free(&m->b);
	if (retry && m->retry == NULL)
		m->retry = evtimer_new(m->n->mxg->base, mail_retry_cb, m);
	if (!retry || m->retry == NULL || evtimer_add(m->retry, &tv) < 0)
		mail_free(m);
}

/* mail_cmd - send "prefix arg suffix CRLF" and expect the reply of stage next. */
static void mail_cmd(struct notify_mail *m, enum mail_stage next, const char *prefix,
		     const char *arg, const char *suffix)
{
	char line[NOTIFY_ADDR_MAX + 32];
	int len = snprintf(line, sizeof(line), "%s%s%s\r\n", prefix, arg, suffix);

	m->stage = next;
	backend_send(m->b, line, (size_t)len);
}

/* mail_first_line - the length of the first line of a reply, without its end. */
static size_t mail_first_line(const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);
	size_t l = nl ? (size_t)(nl - text) : len;

	return l > 0 && text[l - 1] == '\r' ? l - 1 : l;
}

static void mail_cb(struct backend *b, enum backend_event ev, const struct reply *r,
		    const char *text, void *arg)
{
	struct notify_mail *m = arg;
	int ok;

	if (ev == BACKEND_FAIL) {
		if (m->stage == MAIL_QUIT) {
			/* Closed right after QUIT: the mail was sent before. */
			mail_free(m);
			return;
		}
		mail_fail(m, text, strlen(text), 0);
		return;
	}
	ok = r->code / 100 == 2 || (m->stage == MAIL_DATA && r->code == 354);
	switch (m->stage) {
	case MAIL_GREETING:
		if (!ok)
			break;
		mail_cmd(m, MAIL_EHLO, "EHLO ", m->helo, "");
		return;
	case MAIL_EHLO:
		/* An old server that does not know EHLO: fall back to HELO. */
		if (r->code / 100 == 5) {
			mail_cmd(m, MAIL_HELO, "HELO ", m->helo, "");
			return;
		}
		/* FALLTHROUGH */
	case MAIL_HELO:
		if (!ok)
			break;
		mail_cmd(m, MAIL_FROM, "MAIL FROM:<", m->sender, ">");
		return;
	case MAIL_FROM:
		if (!ok)
			break;
		mail_cmd(m, MAIL_RCPT, "RCPT TO:<", m->rcpts[m->rcpt_next++], ">");
		return;
	case MAIL_RCPT:
		if (ok) {
			m->rcpt_ok++;
		} else if (m->nrcpt > 1) {
			char esc[300];

			/* One refused recipient does not cost the others their mail. */
			log_escape(esc, sizeof(esc), text, mail_first_line(text, r->len));
			log_warn("notice mail: kind=%s relay=%s recipient refused: %s",
				 notify_kind_name(m->kind), m->relay, esc);
		}
		if (m->rcpt_next < m->nrcpt) {
			mail_cmd(m, MAIL_RCPT, "RCPT TO:<", m->rcpts[m->rcpt_next++], ">");
			return;
		}
		if (m->rcpt_ok == 0)
			break;
		mail_cmd(m, MAIL_DATA, "DATA", "", "");
		return;
	case MAIL_DATA:
		if (r->code != 354)
			break;
		m->stage = MAIL_BODY;
		backend_send(b, m->msg, m->msglen);
		return;
	case MAIL_BODY: {
		char esc[300];

		if (!ok)
			break;
		log_escape(esc, sizeof(esc), text, mail_first_line(text, r->len));
		log_info("notice mail sent: kind=%s relay=%s recipients=%d message_id=%s "
			 "reply=\"%s\"",
			 notify_kind_name(m->kind), m->relay, m->rcpt_ok, m->msgid, esc);
		mail_cmd(m, MAIL_QUIT, "QUIT", "", "");
		return;
	}
	case MAIL_QUIT:
		mail_free(m);
		return;
	}
	mail_fail(m, text, mail_first_line(text, r->len), r->code);
}

static void mail_start(struct notify_mail *m)
{
	m->attempt++;
	m->stage = MAIL_GREETING;
	m->rcpt_next = m->rcpt_ok = 0;
	m->b = backend_connect(m->n->mxg->base, &m->addr, m->timeout, m->hdr, (size_t)m->hlen,
			       mail_cb, m);
	if (m->b == NULL) {
		const char *why = strerror(errno);

		mail_fail(m, why, strlen(why), 0);
	}
}

/* mail_addr_ok - an envelope address we can put between < and > as is. */
static int mail_addr_ok(const char *a)
{
	size_t len = strlen(a);

	if (len == 0 || len >= NOTIFY_ADDR_MAX)
		return 0;
	for (; *a; a++)
		if ((unsigned char)*a <= ' ' || (unsigned char)*a >= 0x7f || *a == '<' ||
		    *a == '>' || *a == ',')
			return 0;
	return 1;
}

/*
 * mail_text_line - one line of text into the message: control characters
 * other than tab become '?', and a line longer than RFC 5322 allows is
 * broken. Dot-stuffing happens here, since every line starts here.
 */
static void mail_text_line(struct strbuf *sb, const char *s, size_t len)
{
	size_t col = 0;

	if (len > 0 && s[0] == '.')
		strbuf_add(sb, ".", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (col == NOTIFY_LINE_MAX - 2) {
			strbuf_add(sb, "\r\n", 2);
			col = 0;
			if (c == '.')
				strbuf_add(sb, ".", 1);
		}
		if (c == '\r')
			continue;
		if ((c < ' ' && c != '\t') || c == 0x7f)
			c = '?';
		strbuf_add(sb, (const char *)&c, 1);
		col++;
	}
	strbuf_add(sb, "\r\n", 2);
}

/* mail_text - text of lines ending in \n (the last one may not) into the message. */
static void mail_text(struct strbuf *sb, const char *text)
{
	size_t left = strnlen(text, NOTIFY_BODY_MAX);

	while (left > 0) {
		const char *nl = memchr(text, '\n', left);
		size_t len = nl ? (size_t)(nl - text) : left;

		mail_text_line(sb, text, len);
		text += len + (nl != NULL);
		left -= len + (nl != NULL);
	}
}

/*
 * mail_subject - the Subject header: as is when it is printable ASCII,
 * else one RFC 2047 encoded word (UTF-8, base64), cut to a sane length.
 */
static void mail_subject(struct strbuf *sb, const char *subject)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strnlen(subject, 180);
	int plain = 1;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)subject[i] < ' ' || (unsigned char)subject[i] >= 0x7f)
			plain = 0;
	strbuf_str(sb, "Subject: ");
	if (plain) {
		strbuf_add(sb, subject, len);
		strbuf_str(sb, "\r\n");
		return;
	}
	strbuf_str(sb, "=?UTF-8?B?");
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned char)subject[i] << 16;
		char q[4];

		if (i + 1 < len)
			v |= (unsigned char)subject[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)subject[i + 2];
		q[0] = b64[v >> 18 & 63];
		q[1] = b64[v >> 12 & 63];
		q[2] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		q[3] = i + 2 < len ? b64[v & 63] : '=';
		strbuf_add(sb, q, 4);
	}
	strbuf_str(sb, "?=\r\n");
}

/* mail_compose - the DATA part of the notice, dot-stuffed and terminated. */
static int mail_compose(struct notify_mail *m, const struct notice *nt, const char *host)
{
	struct notify *n = m->n;
	struct strbuf sb = {0};
	char date[64], since[64];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	strbuf_printf(&sb, "From: %s\r\n", m->sender);
	strbuf_str(&sb, "To: ");
	for (int i = 0; i < m->nrcpt; i++)
		strbuf_printf(&sb, "%s%s", i ? ", " : "", m->rcpts[i]);
	strbuf_str(&sb, "\r\n");
	mail_subject(&sb, nt->subject);
	strbuf_printf(&sb, "Date: %s\r\n", date);
	snprintf(m->msgid, sizeof(m->msgid), "<%lld.%ld.%lu@%s>", (long long)now, (long)getpid(),
		 ++n->seq, host);
	strbuf_printf(&sb, "Message-ID: %s\r\n", m->msgid);
	strbuf_str(&sb, "Auto-Submitted: auto-generated\r\n");
	strbuf_printf(&sb, "X-Mxguard-Event: %s\r\n", notify_kind_name(nt->kind));
	strbuf_str(&sb, "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n"
		    "\r\n");
	mail_text(&sb, nt->body);
	if (nt->nkv > 0)
		strbuf_str(&sb, "\r\n");
	for (int i = 0; i < nt->nkv; i++) {
		struct strbuf kv = {0};

		strbuf_printf(&kv, "%s: ", nt->kv[i].name);
		strbuf_add(&kv, nt->kv[i].value, strnlen(nt->kv[i].value, NOTIFY_VALUE_MAX));
		if (!kv.oom)
			mail_text(&sb, kv.s);
		sb.oom |= kv.oom;
		strbuf_free(&kv);
	}
	if (nt->held > 0) {
		gmtime_r(&nt->held_since, &tm);
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		strbuf_printf(&sb, "\r\n%u similar notice%s held back since %s.\r\n", nt->held,
			  nt->held == 1 ? " was" : "s were", since);
	}
	strbuf_printf(&sb, "\r\n-- \r\nmxguard on %s\r\n.\r\n", host);
	if (sb.oom) {
		strbuf_free(&sb);
		return -1;
	}
	m->msg = sb.s;
	m->msglen = sb.len;
	return 0;
}

/*
 * notify_mail - start a mail for the notice when notify_recipient is set.
 * Configuration mistakes are logged here, each time: they are rare (one
 * per interval at most) and the admin needs to see them.
 */
static void notify_mail(struct notify *n, const struct notice *nt)
{
	const struct cfg *cfg = n->mxg->cfg;
	char rcpts[1024], *words[NOTIFY_RCPT_MAX], err[256];
	struct notify_mail *m;
	int nw;

	if (cfg->notify_recipient[0] == '\0')
		return;
	if (n->nmails >= NOTIFY_MAILS_MAX) {
		log_warn("notice mail dropped: kind=%s: %d mails already in flight",
			 notify_kind_name(nt->kind), n->nmails);
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_warn("notice mail dropped: out of memory");
		return;
	}
	m->n = n;
	m->kind = nt->kind;
	m->timeout = cfg->backend_timeout;
	snprintf(rcpts, sizeof(rcpts), "%s", cfg->notify_recipient);
	nw = cfg_split_list(rcpts, words, NOTIFY_RCPT_MAX);
	for (int i = 0; i < nw; i++) {
		if (!mail_addr_ok(words[i])) {
			log_escape(err, sizeof(err), words[i], strlen(words[i]));
			log_warn("notify_recipient: '%s' is not a mail address; skipped", err);
			continue;
		}
		if ((m->rcpts[m->nrcpt] = strdup(words[i])) != NULL)
			m->nrcpt++;
	}
	if (cfg->notify_sender[0] != '\0')
		m->sender = strdup(cfg->notify_sender);
	else if (asprintf(&m->sender, "mxguard@%s", cfg->myhostname) < 0)
		m->sender = NULL;
	m->helo = strdup(cfg->myhostname);
	if (m->sender != NULL && !mail_addr_ok(m->sender)) {
		log_escape(err, sizeof(err), m->sender, strlen(m->sender));
		log_warn("notify_sender: '%s' is not a mail address; no mail", err);
		goto drop;
	}
	if (cfg->notify_relay[0] != '\0') {
		/* A relay of the admin's choice: a plain SMTP server. */
		if (netaddr_parse(cfg->notify_relay, &m->addr, err, sizeof(err)) < 0) {
			log_warn("notify_relay: %s; no mail", err);
			goto drop;
		}
	} else {
		/* The backend expects what it gets from mxguard's own connections. */
		m->addr = cfg->backend;
		if (cfg->backend_protocol == BACKEND_PROXY2)
			m->hlen = proxy_v2_local(m->hdr, sizeof(m->hdr));
		else if (cfg->backend_protocol == BACKEND_PROXY1)
			m->hlen = proxy_v1_unknown(m->hdr, sizeof(m->hdr));
		if (m->hlen < 0)
			m->hlen = 0;
	}
	netaddr_format(&m->addr.ss.sa, m->relay, sizeof(m->relay));
	if (m->nrcpt == 0 || m->sender == NULL || m->helo == NULL ||
	    mail_compose(m, nt, cfg->myhostname) < 0) {
		if (m->nrcpt > 0)
			log_warn("notice mail dropped: out of memory");
		goto drop;
	}
	m->next = n->mails;
	n->mails = m;
	n->nmails++;
	mail_start(m);
	return;
drop:
	mail_free(m);
}

/* notify_command - pass the notice to notify_command's helper (notify_cmd.c). */
static void notify_command(struct notify *n, const struct notice *nt)
{
	const struct cfg *cfg = n->mxg->cfg;

	notify_cmd_send(n->cmd, cfg->notify_command, cfg->myhostname, nt->kind, nt->subject,
			nt->body, nt->held, nt->kv, nt->nkv);
}

/* ---------------------------------------------------------------- notices */

static const char *notify_group(const struct notify_kv *kv, int nkv)
{
	for (int i = 0; i < nkv; i++)
		if (strcmp(kv[i].name, "GROUP") == 0 && kv[i].value != NULL)
			return kv[i].value;
	return "";
}

/* notify_started - find (and with del, forget) group among the attack starts that went out. */
static int notify_started(struct notify *n, const char *group, int del)
{
	for (int i = 0; i < n->nstarted; i++)
		if (strncmp(n->started[i], group, CFG_NAME_MAX - 1) == 0) {
			if (del)
				memmove(n->started[i], n->started[i + 1],
					(size_t)(n->nstarted - i - 1) * CFG_NAME_MAX);
			n->nstarted -= del;
			return 1;
		}
	return 0;
}

struct notify *notify_new(struct mxg *mxg)
{
	struct notify *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->mxg = mxg;
	/* Forked now, before the seccomp filter forbids execve (sandbox.c). */
	if ((n->cmd = notify_cmd_start(mxg->base)) == NULL) {
		free(n);
		return NULL;
	}
	return n;
}

void notify_send(struct notify *n, enum notify_kind kind, const char *subject, const char *body,
		 const struct notify_kv *kv, int nkv)
{
	struct notice nt;
	time_t now = time(NULL);
	const char *group;
	struct notify_kv kvs[NOTIFY_KV_MAX];
	int go;

	if ((unsigned)kind >= NOTIFY_NKINDS)
		log_panic("notify_send: bad kind %d", (int)kind);
	nt.kind = kind;
	nt.subject = subject ? subject : "";
	nt.body = body ? body : "";
	nt.nkv = kv == NULL || nkv < 0 ? 0 : nkv > NOTIFY_KV_MAX ? NOTIFY_KV_MAX : nkv;
	/* From here on, every name and value is a string. */
	for (int i = 0; i < nt.nkv; i++) {
		kvs[i].name = kv[i].name ? kv[i].name : "DATA";
		kvs[i].value = kv[i].value ? kv[i].value : "";
	}
	nt.kv = kvs;
	nt.held = 0;
	if (n == NULL) {
		notify_log(&nt, "log");
		return;
	}
	const struct cfg *cfg = n->mxg->cfg;

	if (cfg->notify_recipient[0] == '\0' && cfg->notify_command[0] == '\0') {
		notify_log(&nt, "log");
		return;
	}
	group = notify_group(nt.kv, nt.nkv);
	go = n->last[kind] == 0 || cfg->notify_interval == 0 ||
	     now - n->last[kind] >= cfg->notify_interval || now < n->last[kind];
	/* The end of an attack the admin was told about is never held back. */
	if (kind == NOTIFY_ATTACK_END && notify_started(n, group, 1))
		go = 1;
	if (!go) {
		if (n->held[kind]++ == 0)
			n->held_since[kind] = now;
		notify_log(&nt, "held");
		return;
	}
	nt.held = n->held[kind];
	nt.held_since = n->held_since[kind];
	n->held[kind] = 0;
	n->last[kind] = now;
	if (kind == NOTIFY_ATTACK_START && !notify_started(n, group, 0)) {
		if (n->nstarted == NOTIFY_GROUPS_MAX) {
			memmove(n->started[0], n->started[1],
				(size_t)(NOTIFY_GROUPS_MAX - 1) * CFG_NAME_MAX);
			n->nstarted--;
		}
		snprintf(n->started[n->nstarted++], CFG_NAME_MAX, "%s", group);
	}
	notify_log(&nt, cfg->notify_recipient[0] && cfg->notify_command[0] ? "mail,command"
			: cfg->notify_recipient[0]			   ? "mail"
									   : "command");
	notify_mail(n, &nt);
	notify_command(n, &nt);
}

void notify_free(struct notify **np)
{
	struct notify *n = *np;

	*np = NULL;
	if (n == NULL)
		return;
	while (n->mails != NULL)
		mail_free(n->mails);
	notify_cmd_stop(&n->cmd);
	free(n);
}
