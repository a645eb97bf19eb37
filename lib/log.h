/*
 * log.h: messages on stderr, one line each, the same code in all three
 * programs.
 *
 * The daemons (simqd, simq-worker) write timestamped lines,
 * "2026-05-04 14:03:22.123 simqd warning: what happened"; the client
 * writes "simq: what was wrong; what to do".  fatal() logs and exits; it
 * is also what running out of memory ends in (xmalloc.h).
 */
#ifndef SIMQ_LIB_LOG_H
#define SIMQ_LIB_LOG_H

#include <stdarg.h>

enum log_style {
	LOG_STAMPED,		/* a daemon's log: time, program, level */
	LOG_PLAIN		/* a command's message: "prog: text" */
};

/* What is logged beyond warnings and info: log_verbose() lines from 1,
 * log_debug() lines from 2.  0 until a program raises it. */
extern int	log_verbosity;

/* Names the program in every line, picks the style and the status
 * fatal() exits with.  Until it is called: "simq", LOG_STAMPED, 1. */
void	log_init(const char *prog, enum log_style, int fatal_status);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_verbose(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_vwarn(const char *, va_list) __attribute__((format(printf, 1, 0)));
/* Logs and exits.  Only at start-up, for a broken invariant, for a
 * failed journal write or fsync, and when memory runs out. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
