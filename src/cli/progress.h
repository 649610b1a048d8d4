/* Progress of a long dump or restore on a terminal: the request runs in a
 * thread while the CLI polls the daemon for its progress (GET /v1/ops/ID)
 * and, after the first second, draws one line on stderr. */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/config.h"
#include "shared/error.h"

/* client_call, with a progress line when stderr is a terminal (body gets
 * an "op" id then). */
int progress_call(const struct cd_config *cfg, const char *path, json_t *body, json_t **ret,
                  cd_err *err);

/* The line itself, for local work: "unpack  12.0 MiB / 40.0 MiB  300 MiB/s". */
void progress_draw(const char *phase, uint64_t done, uint64_t total, double seconds);
void progress_clear(void);

/* Prints the "timings" array of a reply as a table (--profiling). */
void progress_print_timings(FILE *f, json_t *timings);
