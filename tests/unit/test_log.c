/*
 * test_log.c - the key=value words of a log line as journal fields
 * (log_field_next), table-driven: what "journalctl CLIENT=..." can find.
 */
#include <string.h>

#include "check.h"
#include "log.h"

static const struct {
	const char *line;
	const char *want; /* the fields, joined by '|' */
} lines[] = {
    /* conn.c's close line: helo= quoted, it may hold spaces. */
    {"close client=192.0.2.7:4711 listener=smtp action=relay stage=data duration=1.250 "
     "in=100 out=200 end=quit helo=\"my host name=x\"",
     "CLIENT=192.0.2.7:4711|LISTENER=smtp|ACTION=relay|STAGE=data|DURATION=1.250|IN=100|"
     "OUT=200|END=quit|HELO=my host name=x"},
    /* grey.c's verdict line: addresses without their brackets. */
    {"verdict client=192.0.2.7 name=unknown helo=\"h\" from=<a@b.example> to=<> "
     "verdict=tempfail reason=dns:fail spf=fail:all key=192.0.2.0/24",
     "CLIENT=192.0.2.7|NAME=unknown|HELO=h|FROM=a@b.example|TO=|VERDICT=tempfail|"
     "REASON=dns:fail|SPF=fail:all|KEY=192.0.2.0/24"},
    /* Reserved journal fields are not overwritten by a line's words. */
    {"x message=1 priority=0 syslog_identifier=evil code_file=a errno=3 ok=1", "OK=1"},
    /* Not keys: upper case, a leading digit or '_', inside a word, empty. */
    {"A=1 1a=2 _x=3 a-b=4 xa=5=6 =7 ab", "XA=5=6"},
    {"no fields here: at all", ""},
    {"", ""},
    /* An unterminated quote or bracket runs to the end. */
    {"helo=\"abc def", "HELO=abc def"},
    {"from=<abc", "FROM=abc"},
    /* A 33-letter key is not a key. */
    {"abcdefghijklmnopqrstuvwxyzabcdefg=1 b=2", "B=2"},
};

int main(void)
{
	for (size_t t = 0; t < sizeof(lines) / sizeof(lines[0]); t++) {
		char got[2048] = "", f[LOG_FIELD_MAX];
		size_t pos = 0, n = 0;
		int guard = 0;

		while (log_field_next(lines[t].line, &pos, f, sizeof(f)) && guard++ < 64) {
			size_t fl = strlen(f);

			if (n > 0)
				got[n++] = '|';
			memcpy(got + n, f, fl);
			n += fl;
			got[n] = '\0';
		}
		CHECK(strcmp(got, lines[t].want) == 0, "line %zu: got '%s', want '%s'", t, got,
		      lines[t].want);
	}
	/* A long value is cut to the buffer, NUL-terminated. */
	{
		char line[600], f[16];
		size_t pos = 0;

		memcpy(line, "client=", 7);
		memset(line + 7, 'a', 500);
		line[507] = '\0';
		CHECK(log_field_next(line, &pos, f, sizeof(f)) == 1, "long value: no field");
		CHECK(strcmp(f, "CLIENT=aaaaaaaa") == 0, "long value: got '%s'", f);
		CHECK(log_field_next(line, &pos, f, sizeof(f)) == 0, "long value: a second field");
	}
	return check_done("log");
}
