/* A job manager on a fresh DB in a temporary directory, for the cmocka
 * group setup/teardown of the job manager tests. */
#pragma once

#include "job/manager.h"

extern char job_fixture_dir[];
extern struct job_manager *jm;

int job_fixture_setup(void **state);
int job_fixture_teardown(void **state);
