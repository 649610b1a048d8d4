/* A minimal engine test program: prints 1, 2, 3 … one per line every 10 ms
 * to stdout; prints READY after the first number. Exits 0 once the file
 * named by CEDANA_WL_TRIGGER exists (after printing PASS), 1 after 60 s. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	const char *trigger = getenv("CEDANA_WL_TRIGGER");
	long n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int tick = 0; tick < 6000; tick++) {
		printf("%ld\n", ++n);
		if (n == 1)
			printf("READY\n");
		if (trigger && access(trigger, F_OK) == 0) {
			printf("PASS\n");
			return 0;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	printf("FAIL: no trigger\n");
	return 1;
}
