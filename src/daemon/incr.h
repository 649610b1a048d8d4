/* The daemon's dirty-page trackers, one set per job (docs/engine.md,
 * "Incremental checkpoints"): what the last --incremental dump of a job
 * left for the next one. Kept in memory only: after a daemon restart, or
 * when an entry is lost, the next dump is full. */
#pragma once

#include <stdbool.h>

#include "db/db.h"
#include "engine/engine.h"

/* The job's trackers and the checkpoint they belong to, taken out (the
 * caller owns the fds); false when there are none. */
bool incr_take(const char *jid, struct cd_track *ret, char parent_id[DB_JID_MAX],
               char **ret_parent_path);
/* Keeps tr (its fds are taken over) as the job's, for checkpoint id at
 * path; whatever the job had is released. */
void incr_put(const char *jid, const char *id, const char *path, struct cd_track *tr);
/* Releases the job's trackers. */
void incr_drop(const char *jid);
