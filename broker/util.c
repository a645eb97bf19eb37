/*
 * util.c: the broker's state, and the one libevent timer behind all job
 * timers.  Allocation, the clock and the token compare are lib/'s.
 */
#include <time.h>

#include <event2/event.h>

#include "simqd.h"
#include "log.h"

static struct broker	broker;
struct broker		*B = &broker;

/* Arms the one libevent timer at the earliest job timer. */
void
timers_arm(void)
{
	struct job	*j = heap_top(&B->timers);
	struct timeval	 tv;
	uint64_t	 d;

	if (j == NULL) {
		if (B->timer_armed) {
			evtimer_del(B->timer_ev);
			B->timer_armed = 0;
		}
		return;
	}
	if (B->timer_armed == j->due)
		return;
	d = j->due > B->now ? j->due - B->now : 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	evtimer_add(B->timer_ev, &tv);
	B->timer_armed = j->due;
}

