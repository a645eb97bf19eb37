/*
 * fileword.h: the names of files that travel with jobs, and the words
 * that carry them (file=HASH:SIZE:MODE:NAME, got=..., collect=GLOB).
 *
 * One set of rules for simq (checking --file and --collect before
 * anything is sent, and the names simq fetch writes) and simq-worker
 * (the names it lays in a job's directory and collects from it): a name
 * is a relative path that stays inside the directory it is laid in.
 */
#ifndef SIMQ_LIB_FILEWORD_H
#define SIMQ_LIB_FILEWORD_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "sha256.h"

struct fileword {
	char		 hex[SHA256_HEX_LEN + 1];	/* lower case */
	uint64_t	 size;
	unsigned	 mode;				/* 0644 or 0755 */
	const char	*name;				/* into the word */
};

/* A name is a relative path (proto_relpath_why): not empty, no leading
 * '/', no empty, "." or ".." part, at most SIMQ_PATH_MAX bytes.  Returns
 * 0, or -1 with why (a phrase: "it starts with /"). */
int	fileword_name_check(const char *, char *why, size_t whylen);
/* A --collect pattern: relative, no ".." part, not empty. */
int	fileword_glob_check(const char *, char *why, size_t whylen);
/* Parses HASH:SIZE:MODE:NAME (a value, decoded).  Returns 0, or -1. */
int	fileword_parse(const char *, struct fileword *);
/* The mode a file travels with: 755 if any execute bit is set. */
unsigned fileword_mode(unsigned st_mode);

#endif
