/*
 * logstat_journal.h - logstat's input from the systemd journal (Debian 12
 * keeps Postfix's logs there when no syslog daemon is installed).
 */
#ifndef MXG_LOGSTAT_JOURNAL_H
#define MXG_LOGSTAT_JOURNAL_H

#include <stddef.h>

struct ls_state;

/*
 * lsjournal_read - feed every Postfix entry of the journal to st, oldest
 * first: the local journal, or the journal files under dir (as journalctl
 * -D reads them) when dir is not NULL; only unit's entries (_SYSTEMD_UNIT)
 * when unit is not NULL. Postfix's entries are those whose
 * SYSLOG_IDENTIFIER starts with "postfix" (postfix/smtpd,
 * postfix/submission/smtpd, postfix-out/smtpd of a second instance).
 * Each becomes a short-iso-precise line, so the parser sees the journal's
 * microsecond timestamps. Uses buf (bufsz bytes) for the lines. Returns 0,
 * or -1 with a message in err (no journal support in this build, a
 * journal that cannot be opened or read).
 */
int lsjournal_read(struct ls_state *st, const char *dir, const char *unit, char *buf, size_t bufsz,
		   char *err, size_t errsz);

#endif
