/* baseline [-s MiB] [DIR]: prints this machine's memcpy and disk ceilings. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "baseline.h"

int main(int argc, char **argv)
{
	uint64_t mib = 1024;
	const char *dir;
	baseline b = {0};
	int opt;

	while ((opt = getopt(argc, argv, "s:h")) != -1) {
		if (opt == 's' && atoll(optarg) > 0) {
			mib = (uint64_t)atoll(optarg);
			continue;
		}
		fprintf(stderr, "usage: %s [-s MiB (default 1024)] [DIR (default /var/tmp)]\n",
		        argv[0]);
		return opt == 'h' ? 0 : 2;
	}
	dir = optind < argc ? argv[optind] : "/var/tmp";
	if (baseline_measure(dir, mib << 20, &b) < 0)
		return 1;
	baseline_print(&b, dir, mib << 20);
	return 0;
}
