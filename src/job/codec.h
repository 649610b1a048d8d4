/* JSON form of a job, shared by the daemon (encode) and the CLI (table). */
#pragma once

#include <jansson.h>

#include "db/db.h"

/* status: "running", "sleep", "stopped", "zombie" or "halted". cp may be NULL. */
json_t *job_to_json(const struct db_job *job, const char *status, const struct db_checkpoint *cp);

/* A checkpoint record: id, jid, time, size, path, compression; null for NULL. */
json_t *job_checkpoint_to_json(const struct db_checkpoint *cp);

/* Exit code of a wait status, 128+N for a signal, as shells report it. */
int job_exit_code(int wstatus);

/* argv as a JSON array text (malloc'd) and back. */
char *job_argv_to_json(char *const *argv);
