/*
 * log.h: the broker logs to stderr, one line per event, with a timestamp.
 */
#ifndef SIMQ_LOG_H
#define SIMQ_LOG_H

extern int log_verbose;

void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Logs and exits with status 1.  Only at start-up, for a broken
 * invariant, and for a failed journal write or fsync. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
