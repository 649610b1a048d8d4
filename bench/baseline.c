/* baseline [-s MiB] [-j] [DIR]: prints this machine's memory and disk ceilings
 * (-j: as one JSON object, for bench/run). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "baseline.h"

int main(int argc, char **argv)
{
	uint64_t mib = 1024;
	const char *dir;
	baseline b = {0};
	bool json = false;
	int opt;

	while ((opt = getopt(argc, argv, "s:jh")) != -1) {
		if (opt == 'j') {
			json = true;
			continue;
		}
		if (opt == 's' && atoll(optarg) > 0) {
			mib = (uint64_t)atoll(optarg);
			continue;
		}
		fprintf(stderr, "usage: %s [-s MiB (default 1024)] [-j] [DIR (default /var/tmp)]\n",
		        argv[0]);
		return opt == 'h' ? 0 : 2;
	}
	dir = optind < argc ? argv[optind] : "/var/tmp";
	if (baseline_measure(dir, mib << 20, &b) < 0)
		return 1;
	if (json)
		baseline_print_json(&b, mib << 20);
	else
		baseline_print(&b, dir, mib << 20);
	return 0;
}
