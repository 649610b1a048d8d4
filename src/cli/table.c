#include "cli/table.h"

#include <stdlib.h>
#include <string.h>

#include "shared/cleanup.h"

#define COLS 8

static const char *const headers[COLS] = {"JOB", "TYPE",       "PID",  "STATUS",
                                          "GPU", "CHECKPOINT", "SIZE", "LOG"};

void table_age(char *buf, size_t len, long long then, time_t now)
{
	long long d = (long long)now - then;
	const char *unit = "second";
	long long n = d;

	if (d < 0)
		d = n = 0;
	if (d >= 86400) {
		n = d / 86400;
		unit = "day";
	} else if (d >= 3600) {
		n = d / 3600;
		unit = "hour";
	} else if (d >= 60) {
		n = d / 60;
		unit = "minute";
	}
	snprintf(buf, len, "%lld %s%s ago", n, unit, n == 1 ? "" : "s");
}

void table_size(char *buf, size_t len, long long bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 10)
		snprintf(buf, len, "%.0f %s", v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

static void row_cells(json_t *job, char cells[COLS][256], time_t now)
{
	json_t *cp = json_object_get(job, "checkpoint");
	const char *log = json_string_value(json_object_get(job, "log"));

	snprintf(cells[0], 256, "%s", json_string_value(json_object_get(job, "jid")));
	snprintf(cells[1], 256, "%s", json_string_value(json_object_get(job, "type")));
	snprintf(cells[2], 256, "%lld", (long long)json_integer_value(json_object_get(job, "pid")));
	snprintf(cells[3], 256, "%s", json_string_value(json_object_get(job, "status")));
	snprintf(cells[4], 256, "%s", json_is_true(json_object_get(job, "gpu")) ? "yes" : "no");
	cells[5][0] = cells[6][0] = '\0';
	if (json_is_object(cp)) {
		table_age(cells[5], 256, json_integer_value(json_object_get(cp, "time")), now);
		table_size(cells[6], 256, json_integer_value(json_object_get(cp, "size")));
	}
	if (json_is_true(json_object_get(job, "attachable")))
		snprintf(cells[7], 256, "[Attachable]");
	else
		snprintf(cells[7], 256, "%s", log ? log : "");
}

static void print_row(FILE *out, char cells[COLS][256], const size_t *width)
{
	for (int c = 0; c < COLS; c++) {
		if (c == COLS - 1)
			fprintf(out, "%s\n", cells[c]);
		else if (c == 2) /* numbers align right */
			fprintf(out, "%*s  ", (int)width[c], cells[c]);
		else
			fprintf(out, "%-*s  ", (int)width[c], cells[c]);
	}
}

void table_print_jobs(FILE *out, json_t *jobs, time_t now)
{
	size_t n = json_array_size(jobs), width[COLS];
	char(*rows)[COLS][256] = calloc(n + 1, sizeof(*rows));

	if (!rows)
		return;
	for (int c = 0; c < COLS; c++)
		snprintf(rows[0][c], 256, "%s", headers[c]);
	for (size_t i = 0; i < n; i++)
		row_cells(json_array_get(jobs, i), rows[i + 1], now);
	for (int c = 0; c < COLS; c++) {
		width[c] = 0;
		for (size_t i = 0; i <= n; i++)
			if (strlen(rows[i][c]) > width[c])
				width[c] = strlen(rows[i][c]);
	}
	for (size_t i = 0; i <= n; i++)
		print_row(out, rows[i], width);
	free(rows);
}
