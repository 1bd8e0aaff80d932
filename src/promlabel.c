/*
 * promlabel.c - Prometheus label values (promlabel.h). Names come from
 * the configuration (listener and group names) and are escaped anyway:
 * the text format has no way to recover from one bad label, the scrape
 * fails as a whole.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "jsonstr.h"
#include "promlabel.h"

void promlabel_add(struct evbuffer *b, const char *s)
{
	size_t n;
	char *u = jsonstr_utf8(s != NULL ? s : "", s != NULL ? strlen(s) : 0, &n);

	if (u == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (u[i] == '\\')
			evbuffer_add(b, "\\\\", 2);
		else if (u[i] == '"')
			evbuffer_add(b, "\\\"", 2);
		else if (u[i] == '\n')
			evbuffer_add(b, "\\n", 2);
		else if (u[i] != '\0')
			evbuffer_add(b, u + i, 1);
	}
	free(u);
}
