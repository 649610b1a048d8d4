#include "job_fixture.h"

#include <stdio.h>
#include <stdlib.h>

char job_fixture_dir[] = "/tmp/cedana-test-jm-XXXXXX";
struct job_manager *jm;

int job_fixture_setup(void **state)
{
	char db[256];
	cd_err err = {0};

	if (!mkdtemp(job_fixture_dir))
		return -1;
	snprintf(db, sizeof(db), "%s/jobs.db", job_fixture_dir);
	return job_manager_new(db, job_fixture_dir, &jm, &err);
}

int job_fixture_teardown(void **state)
{
	char cmd[300];

	job_manager_free(jm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", job_fixture_dir);
	return system(cmd);
}
