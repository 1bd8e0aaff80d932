/*
 * tcpstat.h - "mxguardctl tcpstat": TCP socket states, listen queues,
 * kernel overflow counters and the related sysctls, without root.
 */
#ifndef MXG_TCPSTAT_H
#define MXG_TCPSTAT_H

/*
 * tcpstat_main - run the tcpstat command. argv[0] is "tcpstat", the rest
 * are its options. Prints to stdout, diagnostics to stderr. Returns the
 * exit status: 0 on success, 1 on an error (with a message), 2 on bad
 * usage.
 */
int tcpstat_main(int argc, char **argv);

#endif
