/*
 * logstat.h - "mxguardctl logstat": smtpd session durations from Postfix
 * logs, as a histogram, by how sessions ended, by S25R class and by client.
 */
#ifndef MXG_LOGSTAT_H
#define MXG_LOGSTAT_H

/*
 * logstat_main - run the logstat command. argv[0] is "logstat", the rest
 * are its options and files ("-": standard input). Prints the report to
 * stdout, diagnostics to stderr. Returns the exit status: 0 on success,
 * 1 on an error (with a message), 2 on bad usage.
 */
int logstat_main(int argc, char **argv);

#endif
