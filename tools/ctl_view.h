/*
 * ctl_view.h - what mxguardctl shows of the daemon's answers to people:
 * status as a table, a list of records as a table, and top, the live
 * full-screen view (or one frame with --once). With --json each prints
 * the daemon's JSON instead (ctl_io_action).
 */
#ifndef MXG_CTL_VIEW_H
#define MXG_CTL_VIEW_H

#include "ctl_io.h"

/* ctl_view_status - "status": a table on a terminal or with --table, else JSON. */
int ctl_view_status(struct ctl *ctl);

/* ctl_view_list - the request line "list KIND": a table of the records, or the JSON with --json. */
int ctl_view_list(struct ctl *ctl, const char *line);

/*
 * ctl_view_top - "top": live on a terminal until q, Ctrl-C, SIGTERM or
 * SIGHUP (the terminal is given back on every path), one frame from two
 * snapshots a second apart (--once), or one snapshot (--json). Returns an
 * exit code.
 */
int ctl_view_top(struct ctl *ctl);

#endif
