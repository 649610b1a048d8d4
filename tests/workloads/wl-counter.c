/* wl-counter: prints 1, 2, 3, … one per line about every 10 ms (the harness checks the log
 * continues with no gap and no repeat across a checkpoint), and keeps the same count in the
 * data segment, the bss, the heap and the stack; after the trigger all of them must agree. */
#include "wl.h"

#define PRINTED_BEFORE_READY 10

static uint64_t count_bss;
static uint64_t sum_data = 7; /* non-zero so it lives in .data: base + 1 + 2 + … + n */

static void tick(uint64_t *heap, uint64_t *stack)
{
	count_bss++;
	(*heap)++;
	(*stack)++;
	sum_data += count_bss;
	printf("%llu\n", (unsigned long long)count_bss);
	fflush(stdout);
}

static void verify(const uint64_t *heap, uint64_t stack)
{
	uint64_t n = count_bss;

	if (*heap != n)
		wl_fail("heap counter %llu, bss counter %llu", (unsigned long long)*heap,
		        (unsigned long long)n);
	if (stack != n)
		wl_fail("stack counter %llu, bss counter %llu", (unsigned long long)stack,
		        (unsigned long long)n);
	if (sum_data != 7 + n * (n + 1) / 2)
		wl_fail("sum %llu does not match count %llu", (unsigned long long)sum_data,
		        (unsigned long long)n);
}

int main(void)
{
	uint64_t *heap = calloc(1, sizeof(*heap));
	uint64_t stack = 0;
	unsigned long polls;

	wl_init("wl-counter");
	if (!heap)
		wl_fail("out of memory");
	/* Lets a negative test corrupt the state from outside through /proc/PID/mem. */
	fprintf(stderr, "wl-counter: heap counter at %p\n", (void *)heap);
	for (int i = 0; i < PRINTED_BEFORE_READY; i++) {
		tick(heap, &stack);
		wl_nap_ms(WL_POLL_MS);
	}
	wl_ready();
	for (polls = wl_max_polls(); !wl_triggered(); polls--) {
		if (!polls)
			wl_fail("no trigger");
		tick(heap, &stack);
		wl_nap_ms(WL_POLL_MS);
	}
	verify(heap, stack);
	wl_pass();
}
