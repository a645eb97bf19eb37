/*
 * clock.h: the two clocks, in milliseconds.
 *
 * now_ms() is the wall clock: the times the broker records and shows
 * (submitted, started, ended).  mono_ms() never jumps: for intervals,
 * timeouts and backoff within one process.
 */
#ifndef SIMQ_LIB_CLOCK_H
#define SIMQ_LIB_CLOCK_H

#include <stdint.h>

struct timeval;

uint64_t	now_ms(void);
uint64_t	mono_ms(void);
/* Sleeps ms milliseconds, through signals. */
void		sleep_ms(uint64_t ms);
void		ms_to_tv(uint64_t ms, struct timeval *);

#endif
