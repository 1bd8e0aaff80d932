/*
 * greykey.h - the keys of the taRgrey engine, and the pieces of what a
 * client said that they are made of: the client key (network or pool),
 * postgrey's normalised sender, the address inside <...>, the HELO
 * argument and the sender's domain. Pure string work: no I/O, no state.
 */
#ifndef MXG_GREYKEY_H
#define MXG_GREYKEY_H

#include <stddef.h>
#include <sys/socket.h>

struct rules;
struct psl_ctx_st; /* libpsl's psl_ctx_t */

/* The longest key part (client key, sender, recipient) the engine keeps. */
#define GREYKEY_MAX 256

/*
 * greykey_sender - postgrey's normalised sender: lower case, BATV prvs=
 * tag and +extension removed, digit runs as '#'. addr[0..len) need not be
 * terminated; writes a terminated string into out (truncated to outsz).
 */
void greykey_sender(const char *addr, size_t len, char *out, size_t outsz);

/*
 * greykey_auto - the client key of greylist_key = auto for a client with
 * the verified name (NULL: none) at address sa: the pool (the name without
 * its first label) for a name that does not look dynamic (no S25R rule of r
 * matches; r NULL: no check) and lies at least two labels below its
 * registrable domain ("mta4.out.bigsender.example" -> "out.bigsender.example");
 * else the network (greykey_net), so that a stranger never shares the key
 * of another host. psl is the public suffix list; NULL: libpsl's built-in
 * list. Returns 1 for a pool key, 0 for a network key.
 */
int greykey_auto(const struct psl_ctx_st *psl, const struct rules *r, const char *name,
		 const struct sockaddr *sa, char *out, size_t outsz);

/* greykey_net - "192.0.2.0/24" or "2001:db8:1:2::/64" for an address. */
void greykey_net(const struct sockaddr *sa, char *out, size_t outsz);

/*
 * greykey_angle - the address inside <...> of a saved command line such as
 * "MAIL FROM:<a@b> ..." (line may be NULL). Sets *addr into line and
 * returns its length; "" and 0 when there is none.
 */
size_t greykey_angle(const char *line, const char **addr);

/*
 * greykey_helo - the argument of a saved HELO/EHLO line (NULL: none), up to
 * its line end. Sets *helo into line and returns its length ("" and 0).
 */
size_t greykey_helo(const char *line, const char **helo);

/*
 * greykey_sender_domain - the domain of the address in a saved MAIL line,
 * lower case, without a trailing dot, into out; returns 0, or -1 when there
 * is none (the null sender, no '@', nothing after it, or too long).
 */
int greykey_sender_domain(const char *mail, char *out, size_t outsz);

#endif
