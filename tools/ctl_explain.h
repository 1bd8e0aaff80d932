/*
 * ctl_explain.h - mxguardctl explain ADDR [NAME]: the daemon's answer
 * (explain.c) as aligned sections of "key  value" lines, or its JSON.
 */
#ifndef MXG_CTL_EXPLAIN_H
#define MXG_CTL_EXPLAIN_H

#include "ctl_io.h"

/*
 * ctl_explain_args - are argv[0..argc) "ADDR [NAME]" as the daemon takes
 * them (an IP address; a host name of at most 253 characters)? Returns
 * NULL, or what is wrong (a static string) for a usage error.
 */
const char *ctl_explain_args(int argc, char **argv);

/*
 * ctl_explain_view - run the request line "explain ADDR [NAME]" and show
 * the answer: sections on stdout, or the daemon's JSON with --json.
 * Returns an exit code.
 */
int ctl_explain_view(struct ctl *ctl, const char *line);

#endif
