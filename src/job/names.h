#pragma once

#include <stddef.h>

/* A readable job id, adjective_surnameN (like "brave_curie7"). The caller
 * retries on a collision. */
void job_name_generate(char *buf, size_t len);
