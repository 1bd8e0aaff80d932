/*
 * shield.h - the shield: admission at accept on every listener (allow and
 * block lists, dynamic blocks, bogus sources, country filters, per-source
 * and per-prefix limits), the flood detector that feeds it, the attack
 * policy, and what follows a block or an attack: the log, the store (and
 * through it every other mxguard sharing it), nftables, notices.
 *
 * The shield is four modules: shield.c (this interface: admission,
 * limits, blocks, reload, status), shield_lists.c (lists_: what the
 * configuration gives it and a reload may change), shield_attack.c
 * (attack_: detector groups and their attack state) and shield_notice.c
 * (notice_: what it tells the admin through notify.c). It knows nothing
 * of connections: the connection layer hands it addresses and keeps the
 * bits it returns.
 */
#ifndef MXG_SHIELD_H
#define MXG_SHIELD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

struct mxg;
struct cfg;
struct listener;
struct evbuffer;
struct shield;

/*
 * shield_new - build the shield for mxg->cfg once the listeners are open
 * and the engine (and its store) exists: parse the lists, load the
 * country database when a filter needs it, size the tables, assign each
 * listener its detector group, and re-apply the blocks kept in the store
 * (to nftables too when mxg->fw is set). Returns NULL with a message in err.
 */
struct shield *shield_new(struct mxg *mxg, char *err, size_t errsz);

/*
 * shield_check - would cfg build a shield (lists readable, filters valid,
 * replies well-formed)? For the reload path and mxguard -n. Returns 0, or
 * -1 with a message in err.
 */
int shield_check(const struct cfg *cfg, char *err, size_t errsz);

/*
 * A reload in two steps, so that nothing commits before everything was
 * read: shield_prepare builds the lists, filters and (when a filter newly
 * needs it) the country database of fresh, and returns 0, or -1 with err
 * and nothing kept; then shield_commit swaps them in (with the detector's
 * new parameters), or shield_abort drops them. Tables, counts and blocks
 * are kept across reloads.
 */
int shield_prepare(struct mxg *mxg, const struct cfg *fresh, char *err, size_t errsz);
void shield_commit(struct mxg *mxg, const struct cfg *fresh);
void shield_abort(struct mxg *mxg);

/*
 * shield_admit - decide on a client at accept, before anything is
 * allocated for it. Returns -1 to admit it, or the enum refuse_reason.
 * Every attempt also feeds the detector.
 */
int shield_admit(struct mxg *mxg, struct listener *lst, const struct sockaddr *sa);

/*
 * shield_refuse - count the refusal, log it (rate-limited), answer (one
 * SMTP line, or RST / close on other services) and close fd.
 */
void shield_refuse(struct mxg *mxg, struct listener *lst, int fd, const struct sockaddr *sa,
		   int why);

/* The tables an admitted client was counted in (shield_conn_open's bits). */
#define SHIELD_LIM_SRC 1u /* the per-source table */
#define SHIELD_LIM_NET 2u /* the per-prefix table */

/*
 * shield_conn_open - a client at addr (its port is ignored), admitted
 * under cfg, begins: count it in the per-source and per-prefix tables.
 * Returns the SHIELD_LIM_* bits of the tables that counted it (a full
 * table does not), which the caller keeps for shield_conn_close; 0 when
 * sh is NULL or addr is in allow_clients.
 */
unsigned shield_conn_open(struct shield *sh, const struct cfg *cfg, const struct sockaddr *addr);

/*
 * shield_conn_close - that client ends: uncount it from the tables named
 * in lim (what shield_conn_open returned; cfg must be the configuration
 * it was given, whose prefix lengths found the entries). good: the client
 * is in good standing (it reached its backend and said something there),
 * which the attack policy remembers. Nothing when sh is NULL.
 */
void shield_conn_close(struct shield *sh, const struct cfg *cfg, const struct sockaddr *addr,
		       unsigned lim, int good);

/*
 * shield_smtp_suspect - should an SMTP client at addr on lst, accepted
 * under cfg, be treated as a suspect because its listener group is under
 * attack and it was not known in good standing before
 * (attack_smtp_policy = suspect)? 0 on a service listener, and when sh is
 * NULL.
 */
int shield_smtp_suspect(const struct shield *sh, const struct cfg *cfg, const struct listener *lst,
			const struct sockaddr *addr);

/*
 * shield_block / shield_unblock - the operator's blocks (mxguardctl add
 * block ADDR [SECONDS], del block ADDR): like a detector block, kept in
 * the store, shared, and pushed to nftables. Return 0 (unblock: 1 when
 * the block existed), or -1 with err.
 */
int shield_block(struct mxg *mxg, const char *addr, uint32_t seconds, char *err, size_t errsz);
int shield_unblock(struct mxg *mxg, const char *addr, char *err, size_t errsz);

/*
 * What the shield knows about one address and would apply to it on an
 * SMTP listener (shield_view), for mxguardctl explain. Times are unix
 * seconds; a block with level 0 is none.
 */
#define SHIELD_WHERE_MAX 320
struct shield_view {
	int allowed, denied;		    /* allow_clients, block_clients */
	char allow_where[SHIELD_WHERE_MAX]; /* "PATH:LINE: NET" or the entry */
	char deny_where[SHIELD_WHERE_MAX];
	int bogus, bogus_refused; /* special-purpose; refused on SMTP */
	int64_t now;
	int64_t block_first, block_until, block_last; /* the address's own block */
	unsigned block_level;
	char net[64];				/* its network, "192.0.2.0/24" */
	int64_t net_first, net_until, net_last; /* the network's block */
	unsigned net_level;
	int good;				    /* in good standing (passes a network block) */
	int geo;				    /* a country database is loaded */
	char cc[3];				    /* its country, "" when unknown */
	int country_filter, country_allowed;	    /* smtp_countries */
	int attacked, divisor;			    /* the smtp group; limits divided by */
	int conn_src, conn_net, rate_src, rate_net; /* limits in force (0: none) */
	uint32_t now_conn_src, now_conn_net, now_rate_src, now_rate_net;
};

/*
 * shield_explain - fill v for addr (its port is ignored) from the shield's
 * tables, lists and configuration, changing nothing (no attempt counted).
 * Returns 0, or -1 when the shield is not running (v zeroed).
 */
int shield_explain(struct mxg *mxg, const struct sockaddr *addr, struct shield_view *v);

/*
 * shield_status - sets the "shield" member of obj (the control socket's
 * status answer): an object with the groups and their attack state,
 * blocks, lists and tables; null when the shield is off.
 */
void shield_status(struct mxg *mxg, json_t *obj);

/*
 * shield_distinct - with several workers: each listener group's distinct
 * sources as this process's detector counts them, into local[0..max).
 * Returns the number of groups. shield_distinct_others tells the detector
 * what the other workers count for group g (their sum).
 */
int shield_distinct(struct shield *sh, uint32_t *local, int max);
void shield_distinct_others(struct shield *sh, int g, uint32_t n);

/* shield_metrics - Prometheus lines: attack state, distinct sources, active blocks. */
void shield_metrics(const struct mxg *mxg, struct evbuffer *out);

/* shield_reason_name - "overload", "blocked", ... (enum refuse_reason). */
const char *shield_reason_name(int why);

/*
 * shield_fw_ports - the TCP ports whose listeners the dynamic blocks
 * apply to (for the nftables chain). Returns how many were written.
 */
int shield_fw_ports(const struct cfg *cfg, uint16_t *ports, int max);

/*
 * shield_free - stop its timer, free its tables, lists and attack state
 * (NULL is fine), and set *sp to NULL. Blocks in the store and nftables stay.
 */
void shield_free(struct shield **sp);

#endif
