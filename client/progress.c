/*
 * progress.c: the progress bar of simq wait.
 *
 *   [######x>>....]  612/1000 done  3 failed  20 running  41.2/s  ETA 9s
 *
 * Drawn on stderr, and only when stderr is a terminal, so logs and pipes
 * never see it.  The rate is measured over a sliding window of the last
 * samples (about half a minute), not since the start: a sweep that speeds
 * up as workers join gets an honest time left.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "simq.h"

/* Take a sample at most this often; PROGRESS_SAMPLES of them make the
 * window over which the rate is measured. */
#define PROGRESS_SAMPLE_MS	1000

/* Whether a bar is on the screen, for the signal handler. */
static volatile sig_atomic_t	progress_on_screen;

/* Ctrl-C (or a kill) while the bar is shown: end its line, so that the
 * shell's prompt does not start after "ETA --", then die of the signal
 * as before. */
static void
progress_signal(int sig)
{
	if (progress_on_screen)
		(void)!write(STDERR_FILENO, "\n", 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

void
progress_init(struct progress *p)
{
	static int	handlers;

	memset(p, 0, sizeof *p);
	p->start = mono_ms();
	if (cfg.progress && !handlers) {
		signal(SIGINT, progress_signal);
		signal(SIGTERM, progress_signal);
		signal(SIGHUP, progress_signal);
		handlers = 1;
	}
}

static uint64_t
progress_finished(const struct tally *t)
{
	return t->count[JS_DONE] + t->count[JS_FAILED] + t->count[JS_CANCELED];
}

void
progress_draw(struct progress *p, const struct tally *t, const char *note)
{
	uint64_t	now = mono_ms(), fin = progress_finished(t);
	double		rate = -1;
	int		old, last;
	struct buf	b;

	if (!cfg.progress)
		return;
	last = (p->head + PROGRESS_SAMPLES - 1) % PROGRESS_SAMPLES;
	if (p->nsamples == 0 || now - p->t[last] >= PROGRESS_SAMPLE_MS) {
		p->t[p->head] = now;
		p->fin[p->head] = fin;
		p->head = (p->head + 1) % PROGRESS_SAMPLES;
		if (p->nsamples < PROGRESS_SAMPLES)
			p->nsamples++;
	}
	old = (p->head + PROGRESS_SAMPLES - p->nsamples) % PROGRESS_SAMPLES;
	/* A rate from a quarter of a second is noisy but better than none
	 * for a sweep that ends within the first second. */
	if (now - p->t[old] >= PROGRESS_SAMPLE_MS / 4 && fin >= p->fin[old])
		rate = (double)(fin - p->fin[old]) * 1000 /
		    (double)(now - p->t[old]);
	buf_init(&b);
	buf_put(&b, "\r", 1);
	{
		int	w = simq_term_width() - 1, nl = note ? (int)strlen(note) :
		    0;

		/* The note goes after the numbers, if the line has room
		 * for them both (a shorter bar). */
		if (nl > 0 && w - nl - 2 < 40)
			nl = 0;
		fmt_progress(&b, t, rate, nl > 0 ? w - nl - 2 : w, cfg.utf8,
		    cfg.errcolour, now - p->start);
		if (nl > 0) {
			buf_put(&b, "  ", 2);
			if (cfg.errcolour)
				buf_put(&b, "\033[33m", 5);
			buf_put(&b, note, (size_t)nl);
			if (cfg.errcolour)
				buf_put(&b, "\033[0m", 4);
		}
	}
	buf_put(&b, "\033[K", 3);
	/* Before the bar is out: a signal while it is written ends its
	 * line too. */
	progress_on_screen = 1;
	fwrite(b.p, 1, b.len, stderr);
	fflush(stderr);
	buf_free(&b);
	p->shown = 1;
	progress_on_screen = 1;
}

void
progress_end(struct progress *p)
{
	if (p->shown) {
		fputc('\n', stderr);
		fflush(stderr);
	}
	p->shown = 0;
	progress_on_screen = 0;
}
