/*
 * sandbox.h - confinement of the network process: seccomp and Landlock.
 *
 * Entered once, at the end of the start-up: the listeners are bound, the
 * privileges dropped, the store opened and every helper process forked.
 * From then on the process can make only the system calls its loop needs
 * (a libseccomp allow-list) and reach only the files it reads on reload
 * and the directories it writes (a Landlock ruleset, where the kernel has
 * Landlock). Neither can be undone; both are inherited by any child.
 */
#ifndef MXG_SANDBOX_H
#define MXG_SANDBOX_H

struct cfg;

/*
 * sandbox_enter - confine the calling process for the rest of its life,
 * according to cfg->seccomp. cfg_path is the configuration file (NULL or
 * missing: none), read again on every reload. Landlock missing from the
 * kernel is logged and skipped; a seccomp filter that cannot be loaded is
 * fatal (the admin asked for it and would otherwise believe it there).
 * Call it once, single-threaded, after every fork of a helper.
 */
void sandbox_enter(const struct cfg *cfg, const char *cfg_path);

/*
 * sandbox_child_signals - in a helper child just forked from the daemon
 * (nftables, notify_command): every handler back to its default (the
 * parent's, libevent's signal pipe, mean nothing there), SIGPIPE, SIGHUP
 * and SIGINT ignored (the parent decides when a helper ends), nothing
 * blocked.
 */
void sandbox_child_signals(void);

#endif
