/* What a daemon killed in the middle of a dump or restore left behind,
 * finished or rolled back at the next start from the journal (db_inflight):
 * a dump whose checkpoint reached its final path is recorded; otherwise its
 * scratch directory and temporary archive are removed (the tree itself ran
 * on: its worker died with the daemon and let it go). A restore's scratch
 * directory, and the output file it created for a job that never came to
 * be, are removed. */
#pragma once

#include <jansson.h>

#include "job/manager.h"

/* Handles every journal entry; returns what was done as an array of
 * strings, one per entry (empty when there was nothing), for `cedana check`. */
json_t *recover_inflight(struct job_manager *jm);
