/*
 * smtpcmd.c - SMTP command lines.
 *
 * Everything here reads bytes straight from the network, so every access is
 * bounded by an explicit length (lines are not NUL-terminated) and nothing
 * is assumed about the content. The checks are deliberately no stricter
 * than real MTAs are: mxguard must not reject what the backend would take,
 * it only has to know the verb and whether the argument has the right shape.
 */
#include <string.h>
#include <strings.h>

#include "smtpcmd.h"

enum smtpline smtpcmd_scan(const char *buf, size_t len, size_t *linelen, size_t *consumed)
{
	size_t max = len >= 5 && strncasecmp(buf, "AUTH ", 5) == 0 ? SMTP_AUTH_LINE_MAX
								  : SMTP_LINE_MAX;
	size_t window = len < max ? len : max;
	const char *lf = memchr(buf, '\n', window);

	if (lf == NULL)
		return len >= max ? SMTPLINE_TOO_LONG : SMTPLINE_MORE;
	size_t pos = (size_t)(lf - buf);

	*consumed = pos + 1;
	if (pos > 0 && buf[pos - 1] == '\r') {
		*linelen = pos - 1;
		return SMTPLINE_OK;
	}
	*linelen = pos;
	return SMTPLINE_BARE_LF;
}

static const struct {
	const char *name;
	enum smtp_verb verb;
	const char *usage;
} smtpcmd_verbs[] = {
	{"HELO", SMTP_HELO, "HELO hostname"},
	{"EHLO", SMTP_EHLO, "EHLO hostname"},
	{"MAIL", SMTP_MAIL, "MAIL FROM:<address>"},
	{"RCPT", SMTP_RCPT, "RCPT TO:<address>"},
	{"DATA", SMTP_DATA, "DATA"},
	{"BDAT", SMTP_BDAT, "BDAT size [LAST]"},
	{"RSET", SMTP_RSET, "RSET"},
	{"NOOP", SMTP_NOOP, "NOOP"},
	{"QUIT", SMTP_QUIT, "QUIT"},
	{"HELP", SMTP_HELP, "HELP"},
	{"VRFY", SMTP_VRFY, "VRFY address"},
	{"EXPN", SMTP_EXPN, "EXPN list"},
	{"STARTTLS", SMTP_STARTTLS, "STARTTLS"},
	{"AUTH", SMTP_AUTH, "AUTH mechanism [initial-response]"},
};
#define NVERBS (sizeof(smtpcmd_verbs) / sizeof(smtpcmd_verbs[0]))

const char *smtpcmd_usage(enum smtp_verb verb)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (smtpcmd_verbs[i].verb == verb)
			return smtpcmd_verbs[i].usage;
	return "";
}

int smtpcmd_pipe_group(enum smtp_verb verb)
{
	switch (verb) {
	case SMTP_RSET:
	case SMTP_MAIL:
	case SMTP_RCPT:
		return 1;
	case SMTP_HELO:
	case SMTP_EHLO:
	case SMTP_DATA:
	case SMTP_VRFY:
	case SMTP_EXPN:
	case SMTP_NOOP:
	case SMTP_QUIT:
		return 2;
	default:
		return 0;
	}
}

/*
 * smtpcmd_path - does s[0..len) start with an address: "<...>", or, as
 * Postfix takes it by default (strict_rfc821_envelopes = no), a bare
 * address up to the next space? Spaces before it are allowed.
 */
static int smtpcmd_path(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return 0;
	if (s[i] != '<')
		return s[i] != '>';
	/* The closing '>' must come after the opening one. */
	return memchr(s + i + 1, '>', len - i - 1) != NULL;
}

static int smtpcmd_prefix(const char *s, size_t len, const char *word)
{
	size_t wl = strlen(word);

	return len >= wl && strncasecmp(s, word, wl) == 0;
}

enum smtpcmd_status smtpcmd_parse(const char *line, size_t len, struct smtpcmd *cmd)
{
	size_t vlen = 0, i;

	cmd->verb = SMTP_UNKNOWN;
	cmd->arg = line + len;
	cmd->arglen = 0;
	if (memchr(line, '\0', len) != NULL)
		return SMTPCMD_NUL;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	for (i = 0; i < NVERBS; i++) {
		if (strlen(smtpcmd_verbs[i].name) == vlen &&
		    strncasecmp(line, smtpcmd_verbs[i].name, vlen) == 0)
			break;
	}
	if (i == NVERBS)
		return SMTPCMD_UNKNOWN;
	cmd->verb = smtpcmd_verbs[i].verb;
	/* Arguments: after the single space RFC 5321 asks for (be lenient on more). */
	size_t a = vlen;

	while (a < len && line[a] == ' ')
		a++;
	size_t e = len;

	while (e > a && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	cmd->arg = line + a;
	cmd->arglen = e - a;

	switch (cmd->verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
	case SMTP_AUTH:
	case SMTP_BDAT:
	case SMTP_VRFY:
	case SMTP_EXPN:
		return cmd->arglen ? SMTPCMD_OK : SMTPCMD_SYNTAX;
	case SMTP_MAIL:
		if (!smtpcmd_prefix(cmd->arg, cmd->arglen, "FROM:") ||
		    !smtpcmd_path(cmd->arg + 5, cmd->arglen - 5))
			return SMTPCMD_SYNTAX;
		return SMTPCMD_OK;
	case SMTP_RCPT:
		if (!smtpcmd_prefix(cmd->arg, cmd->arglen, "TO:") ||
		    !smtpcmd_path(cmd->arg + 3, cmd->arglen - 3))
			return SMTPCMD_SYNTAX;
		return SMTPCMD_OK;
	case SMTP_DATA:
	case SMTP_RSET:
	case SMTP_QUIT:
	case SMTP_STARTTLS:
		return cmd->arglen ? SMTPCMD_SYNTAX : SMTPCMD_OK;
	case SMTP_NOOP:
	case SMTP_HELP:
	case SMTP_UNKNOWN:
		break;
	}
	return SMTPCMD_OK;
}

int smtpcmd_pipe_check(const char *buf, size_t len, struct smtpcmd_pipe *p)
{
	while (p->scanned < len && !p->opaque) {
		const char *line = buf + p->scanned;
		size_t ll, used;
		struct smtpcmd cmd;
		int group;

		if (p->end)
			return -1;
		switch (smtpcmd_scan(line, len - p->scanned, &ll, &used)) {
		case SMTPLINE_MORE:
			return 0;
		case SMTPLINE_TOO_LONG:
			return -1;
		case SMTPLINE_OK:
		case SMTPLINE_BARE_LF:
			break;
		}
		if (smtpcmd_parse(line, ll, &cmd) != SMTPCMD_OK)
			return -1;
		group = smtpcmd_pipe_group(cmd.verb);
		if (cmd.verb == SMTP_BDAT)
			p->opaque = 1;
		else if (group == 0)
			return -1;
		else if (group == 2)
			p->end = 1;
		p->scanned += used;
	}
	return 0;
}
