#include "job/names.h"

#include <stdio.h>
#include <time.h>
#include <sys/random.h>

#include "shared/cleanup.h"

static const char *const adjectives[] = {
    "brave",  "calm",   "clever", "eager", "fancy",  "gentle", "happy", "jolly",
    "keen",   "lucid",  "merry",  "nifty", "proud",  "quick",  "quiet", "sharp",
    "silent", "steady", "sunny",  "tidy",  "upbeat", "vivid",  "witty", "zealous",
};

static const char *const surnames[] = {
    "babbage", "bohr",    "curie",   "darwin", "dijkstra", "einstein", "euler",  "fermi",
    "gauss",   "hopper",  "kepler",  "knuth",  "lovelace", "maxwell",  "newton", "noether",
    "pascal",  "ritchie", "shannon", "tesla",  "thompson", "turing",   "volta",  "wozniak",
};

static unsigned rand_below(unsigned n)
{
	unsigned v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned)clock();
	return v % n;
}

void job_name_generate(char *buf, size_t len)
{
	snprintf(buf, len, "%s_%s%u", adjectives[rand_below(ARRAY_SIZE(adjectives))],
	         surnames[rand_below(ARRAY_SIZE(surnames))], rand_below(10));
}
