/*
 * fuzz_http.c - libFuzzer target: what an HTTP client sends to the
 * metrics endpoint, through the request classifier
 * (metrics_parse_request). The input is the head as read from the socket,
 * request line and headers.
 *
 * The answer must be one of the four, depend only on the first line (so
 * the same with the input cut after it) and only on its first
 * METRICS_LINE_MAX - 1 bytes, and a scrape must really be GET /metrics
 * over HTTP/1.x. The input is copied to a heap block of its exact size so
 * that a read past its end is caught.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *head = malloc(size ? size : 1);
	size_t line;
	int req;

	if (head == NULL)
		abort();
	memcpy(head, data, size);
	req = metrics_parse_request(head, size);
	if (req < METRICS_REQ_SCRAPE || req > METRICS_REQ_NOT_FOUND)
		__builtin_trap();
	/* The first line: up to CR, LF or NUL, at most METRICS_LINE_MAX - 1. */
	for (line = 0; line < size && line < METRICS_LINE_MAX - 1; line++)
		if (head[line] == '\r' || head[line] == '\n' || head[line] == '\0')
			break;
	if (metrics_parse_request(head, line) != req)
		__builtin_trap();
	if (req == METRICS_REQ_SCRAPE &&
	    (line < 20 || memcmp(head, "GET /metrics", 12) != 0 ||
	     (head[12] != ' ' && head[12] != '?') || memmem(head, line, " HTTP/1.", 8) == NULL))
		__builtin_trap();
	free(head);
	return 0;
}
