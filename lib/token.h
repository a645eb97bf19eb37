/*
 * token.h: the shared token, read the same way by the three programs.
 *
 * A token file holds the token; trailing whitespace (newlines, carriage
 * returns, spaces, tabs) is not part of it, whitespace inside is.  simqd
 * reads it with --token-file; simq and simq-worker send it in HELLO,
 * from --token-file or else $SIMQ_TOKEN (taken as it is).
 */
#ifndef SIMQ_LIB_TOKEN_H
#define SIMQ_LIB_TOKEN_H

#include <stddef.h>

/* The longest token: far more than any secret needs, and a HELLO line
 * that carries it encoded stays well under SIMQ_LINE_MAX. */
#define TOKEN_MAX	1024

/* Reads the token in path.  Returns it (the caller frees it), or NULL
 * with a sentence naming path and the problem in why (the file cannot be
 * read, is empty, or holds more than TOKEN_MAX bytes). */
char	*token_read(const char *path, char *why, size_t whylen);
/* The token a client sends: token_read(path) when path is not NULL,
 * else $SIMQ_TOKEN when set and not empty, else none.  Returns 0 with
 * *tok the token (the caller frees it) or NULL for none, or -1 with why
 * set. */
int	 token_load(const char *path, char **tok, char *why, size_t whylen);
/* 1 if a (alen bytes) is b (blen bytes) and not empty, in a time that
 * does not depend on where they differ, so a wrong token's timing says
 * nothing of the right one. */
int	 token_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
