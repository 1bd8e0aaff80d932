/*
 * xclient.h - the Postfix XCLIENT command: telling the backend who the real
 * client is, when the backend does not read PROXY headers.
 */
#ifndef MXG_XCLIENT_H
#define MXG_XCLIENT_H

#include <stddef.h>
#include <sys/socket.h>

/* XCLIENT_README: "512 characters per command, so split it". */
#define XCLIENT_CMD_MAX 512

struct xclient_attrs {
	const struct sockaddr *client; /* ADDR, PORT */
	const struct sockaddr *local;  /* DESTADDR, DESTPORT */
	const char *name;	       /* verified name or NULL: [UNAVAILABLE] */
	const char *helo;	       /* client's HELO/EHLO argument or NULL */
	size_t helolen;
	const char *proto;	       /* "SMTP", "ESMTP" or NULL (not sent) */
};

/*
 * xclient_build - write the XCLIENT command(s) for attrs into buf, each line
 * "XCLIENT attr=value ...\r\n" of at most XCLIENT_CMD_MAX bytes, values in
 * xtext. Returns the number of commands written (each gets its own 220
 * reply), or -1 if buf is too small.
 */
int xclient_build(const struct xclient_attrs *attrs, char *buf, size_t bufsz);

/* xclient_xtext - RFC 3461 xtext of in[0..len) into out; returns length or -1. */
int xclient_xtext(const char *in, size_t len, char *out, size_t outsz);

#endif
