/* The job table of ps / job list. */
#pragma once

#include <jansson.h>
#include <stdio.h>
#include <time.h>

/* Prints the header and one row per job in the array, aligned. */
void table_print_jobs(FILE *out, json_t *jobs, time_t now);

/* "2 seconds ago", "5 minutes ago" ... */
void table_age(char *buf, size_t len, long long then, time_t now);
/* "644 KiB", "1.5 GiB" ... */
void table_size(char *buf, size_t len, long long bytes);
