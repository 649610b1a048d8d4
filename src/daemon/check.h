/* Health checks the daemon runs for GET /v1/health: the DB, and the kernel
 * features the engine needs, probed for real rather than guessed. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "job/manager.h"
#include "shared/config.h"

/* An array of {"name", "ok", "detail"}; recovered (may be NULL) is what the
 * daemon's start-up finished or cleaned of operations a previous daemon
 * left in flight (recover.h). */
json_t *check_run(struct job_manager *jm, const struct cd_config *cfg, json_t *recovered,
                  bool full);
