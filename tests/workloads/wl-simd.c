/* wl-simd [sse|avx|avx512]: known values in the vector registers across the checkpoint. One
 * asm block loads every register of the widest kind the CPU and kernel support (default) or
 * of the kind asked for — xmm0-15, ymm0-15, or zmm0-31 with the mask registers k1-7 — sets a
 * non-default MXCSR, writes READY and polls the trigger with raw syscalls (which keep vector
 * registers), then stores the registers back. No C code runs in between, so nothing but the
 * checkpoint can change them. */
#include <stddef.h>
#include <sys/syscall.h>

#include "wl.h"

#define MXCSR_SET     0x7f80u /* all exceptions masked (the default) + round toward zero */
#define MXCSR_DEFAULT 0x1f80u

enum level { SSE, AVX, AVX512 };

static const struct {
	const char *name, *regs;
	unsigned nr_regs, width;
} levels[] = {
    [SSE] = {"sse", "xmm", 16, 16},
    [AVX] = {"avx", "ymm", 16, 32},
    [AVX512] = {"avx512", "zmm", 32, 64},
};

struct vstate {
	unsigned char v[32][64];
	uint64_t k[8];
	uint32_t mxcsr;
};

static const char ready_line[] = "READY\n";

/* Arguments shared by the three loops: loop count (in: most polls, out: polls left). */
struct poll_args {
	const char *path;
	struct timespec nap;
	unsigned long polls;
};

#define REP16(M)                                                                                   \
	M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define REP32_HI(M)                                                                                \
	M(16)                                                                                      \
	M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)

/* Writes READY, then polls access(trigger) / nanosleep(10 ms) until the trigger exists or the
 * count runs out; all in asm, so the registers stay untouched. */
#define POLL_LOOP                                                                                  \
	"mov %[nr_write], %%eax\n\t"                                                               \
	"mov $1, %%edi\n\t"                                                                        \
	"mov %[msg], %%rsi\n\t"                                                                    \
	"mov %[msg_len], %%edx\n\t"                                                                \
	"syscall\n\t"                                                                              \
	"1:\n\t"                                                                                   \
	"mov %[nr_access], %%eax\n\t"                                                              \
	"mov 0(%[args]), %%rdi\n\t"                                                                \
	"xor %%esi, %%esi\n\t"                                                                     \
	"syscall\n\t"                                                                              \
	"test %%rax, %%rax\n\t"                                                                    \
	"jz 2f\n\t"                                                                                \
	"mov %[nr_nanosleep], %%eax\n\t"                                                           \
	"lea 8(%[args]), %%rdi\n\t"                                                                \
	"xor %%esi, %%esi\n\t"                                                                     \
	"syscall\n\t"                                                                              \
	"decq 24(%[args])\n\t"                                                                     \
	"jnz 1b\n\t"                                                                               \
	"2:\n\t"

#define POLL_OPERANDS                                                                              \
	[in] "r"(in), [out] "r"(out), [args] "r"(args), [msg] "r"(ready_line),                     \
	    [msg_len] "i"(sizeof(ready_line) - 1), [nr_write] "i"(SYS_write),                      \
	    [nr_access] "i"(SYS_access), [nr_nanosleep] "i"(SYS_nanosleep)
#define POLL_CLOBBERS "rax", "rdi", "rsi", "rdx", "rcx", "r11", "memory", "cc"

#define MXCSR_IN  "ldmxcsr 2112(%[in])\n\t"
#define MXCSR_OUT "stmxcsr 2112(%[out])\n\t"

#define LOAD_XMM(i)  "movdqu " #i "*64(%[in]), %%xmm" #i "\n\t"
#define STORE_XMM(i) "movdqu %%xmm" #i ", " #i "*64(%[out])\n\t"
#define CLOB_XMM(i)  "xmm" #i,

static void hold_sse(const struct vstate *in, struct vstate *out, struct poll_args *args)
{
	__asm__ volatile(MXCSR_IN REP16(LOAD_XMM) POLL_LOOP REP16(STORE_XMM) MXCSR_OUT
	                 :
	                 : POLL_OPERANDS
	                 : REP16(CLOB_XMM) POLL_CLOBBERS);
}

#define LOAD_YMM(i)  "vmovdqu " #i "*64(%[in]), %%ymm" #i "\n\t"
#define STORE_YMM(i) "vmovdqu %%ymm" #i ", " #i "*64(%[out])\n\t"

__attribute__((target("avx"))) static void hold_avx(const struct vstate *in, struct vstate *out,
                                                    struct poll_args *args)
{
	__asm__ volatile(MXCSR_IN REP16(LOAD_YMM) POLL_LOOP REP16(STORE_YMM) MXCSR_OUT
	                 "vzeroupper\n\t"
	                 :
	                 : POLL_OPERANDS
	                 : REP16(CLOB_XMM) POLL_CLOBBERS);
}

#define LOAD_ZMM(i)  "vmovdqu64 " #i "*64(%[in]), %%zmm" #i "\n\t"
#define STORE_ZMM(i) "vmovdqu64 %%zmm" #i ", " #i "*64(%[out])\n\t"
#define LOAD_K(i)    "kmovq 2048+" #i "*8(%[in]), %%k" #i "\n\t"
#define STORE_K(i)   "kmovq %%k" #i ", 2048+" #i "*8(%[out])\n\t"
#define CLOB_K(i)    "k" #i,
#define K_REGS(M)    M(1) M(2) M(3) M(4) M(5) M(6) M(7)

__attribute__((target("avx512f,avx512bw"))) static void
hold_avx512(const struct vstate *in, struct vstate *out, struct poll_args *args)
{
	__asm__ volatile(MXCSR_IN REP16(LOAD_ZMM) REP32_HI(LOAD_ZMM) K_REGS(LOAD_K)
	                     POLL_LOOP REP16(STORE_ZMM) REP32_HI(STORE_ZMM) K_REGS(STORE_K)
	                         MXCSR_OUT "vzeroupper\n\t"
	                 :
	                 : POLL_OPERANDS
	                 : REP16(CLOB_XMM) REP32_HI(CLOB_XMM) K_REGS(CLOB_K) POLL_CLOBBERS);
}

static enum level best_level(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
		return AVX512;
	if (__builtin_cpu_supports("avx"))
		return AVX;
	return SSE;
}

static enum level parse_level(int argc, char **argv)
{
	enum level best = best_level();

	if (argc < 2)
		return best;
	for (enum level l = SSE; l <= AVX512; l++) {
		if (strcmp(argv[1], levels[l].name))
			continue;
		if (l > best)
			wl_fail("this CPU (or kernel) does not support %s", levels[l].name);
		return l;
	}
	wl_fail("usage: wl-simd [sse|avx|avx512]");
}

static void check(enum level l, const struct vstate *in, const struct vstate *out)
{
	unsigned width = levels[l].width;

	for (unsigned r = 0; r < levels[l].nr_regs; r++)
		for (unsigned b = 0; b < width; b++)
			if (in->v[r][b] != out->v[r][b])
				wl_fail("%s%u byte %u is %#x, want %#x", levels[l].regs, r, b,
				        out->v[r][b], in->v[r][b]);
	if (l == AVX512)
		for (unsigned k = 1; k < 8; k++)
			if (in->k[k] != out->k[k])
				wl_fail("k%u is %#llx, want %#llx", k,
				        (unsigned long long)out->k[k],
				        (unsigned long long)in->k[k]);
	if (out->mxcsr != in->mxcsr)
		wl_fail("MXCSR is %#x, want %#x", out->mxcsr, in->mxcsr);
}

int main(int argc, char **argv)
{
	static struct vstate in, out;
	struct poll_args args = {.nap = {0, WL_POLL_MS * 1000000L}};
	uint64_t seed = 0x51dd;
	enum level l;

	wl_init("wl-simd");
	_Static_assert(offsetof(struct vstate, k) == 2048, "asm offsets");
	_Static_assert(offsetof(struct vstate, mxcsr) == 2112, "asm offsets");
	_Static_assert(offsetof(struct poll_args, nap) == 8, "asm offsets");
	_Static_assert(offsetof(struct poll_args, polls) == 24, "asm offsets");
	l = parse_level(argc, argv);
	for (unsigned r = 0; r < 32; r++)
		for (unsigned b = 0; b < 64; b += 8) {
			uint64_t w = wl_rand(&seed);

			memcpy(&in.v[r][b], &w, 8);
		}
	for (unsigned k = 0; k < 8; k++)
		in.k[k] = wl_rand(&seed);
	in.mxcsr = MXCSR_SET;
	memset(&out, 0, sizeof(out));
	args.path = wl_trigger_path;
	args.polls = wl_max_polls();
	fprintf(stderr, "wl-simd: holding %u %s registers%s and MXCSR\n", levels[l].nr_regs,
	        levels[l].regs, l == AVX512 ? ", k1-k7" : "");

	if (l == AVX512)
		hold_avx512(&in, &out, &args);
	else if (l == AVX)
		hold_avx(&in, &out, &args);
	else
		hold_sse(&in, &out, &args);
	__asm__ volatile("ldmxcsr %0" : : "m"((uint32_t){MXCSR_DEFAULT}));
	if (!args.polls)
		wl_fail("no trigger");
	check(l, &in, &out);
	wl_pass();
}
