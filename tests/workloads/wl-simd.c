/* wl-simd [sse|avx|avx512] [threads [N]]: known values in the vector registers across the
 * checkpoint. One asm block loads every register of the widest kind the CPU and kernel support
 * (default) or of the kind asked for — xmm0-15, ymm0-15, or zmm0-31 with the mask registers
 * k1-7 — sets a non-default MXCSR and x87 control word, pushes a known 80-bit value on the x87
 * stack, writes READY and polls the trigger with raw syscalls (which keep vector registers),
 * then stores the registers back. No C code runs in between, so nothing but the checkpoint can
 * change them.
 * With "threads", N threads (default 4) each hold values of their own (their own registers,
 * MXCSR rounding mode and x87 control word), so a restore that gave every thread the main
 * thread's XSAVE state, or one thread's to another, fails; the main thread writes READY once
 * every thread has loaded its registers, and waits in pthread_join. */
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>

#include "wl.h"

#define MXCSR_SET     0x7f80u /* all exceptions masked (the default) + round toward zero */
#define MXCSR_DEFAULT 0x1f80u
#define FCW_SET       0x0e7fu /* all exceptions masked, double precision, round toward zero */
#define FCW_DEFAULT   0x037fu
#define MAX_THREADS   32

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
	uint16_t fcw;
	_Alignas(16) unsigned char st0[16]; /* an 80-bit extended value, then padding */
};

static const char ready_line[] = "READY\n";

/* Arguments shared by the three loops: loop count (in: most polls, out: polls left), the
 * length of READY to write (0 in a thread) and a count of loaded threads to add 1 to. */
struct poll_args {
	const char *path;
	struct timespec nap;
	unsigned long polls;
	unsigned long msg_len;
	int *loaded;
};

#define REP16(M)                                                                                   \
	M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define REP32_HI(M)                                                                                \
	M(16)                                                                                      \
	M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)

/* Counts itself loaded, writes READY (msg_len bytes of it), then polls access(trigger) /
 * nanosleep(10 ms) until the trigger exists or the count runs out; all in asm, so the
 * registers stay untouched. */
#define POLL_LOOP                                                                                  \
	"mov 40(%[args]), %%rax\n\t"                                                               \
	"lock incl (%%rax)\n\t"                                                                    \
	"mov %[nr_write], %%eax\n\t"                                                               \
	"mov $1, %%edi\n\t"                                                                        \
	"mov %[msg], %%rsi\n\t"                                                                    \
	"mov 32(%[args]), %%rdx\n\t"                                                               \
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
	    [nr_write] "i"(SYS_write), [nr_access] "i"(SYS_access),                                \
	    [nr_nanosleep] "i"(SYS_nanosleep)
#define POLL_CLOBBERS "rax", "rdi", "rsi", "rdx", "rcx", "r11", "st", "memory", "cc"

/* MXCSR, the x87 control word and st(0); the value pushed is popped again on the way out. */
#define MXCSR_IN  "ldmxcsr 2112(%[in])\n\tfldcw 2116(%[in])\n\tfldt 2128(%[in])\n\t"
#define MXCSR_OUT "stmxcsr 2112(%[out])\n\tfnstcw 2116(%[out])\n\tfstpt 2128(%[out])\n\t"

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
	wl_fail("usage: wl-simd [sse|avx|avx512] [threads [N]]");
}

/* who: "" for the single-threaded run, "thread N: " for a thread's registers. */
static void check(enum level l, const char *who, const struct vstate *in, const struct vstate *out)
{
	unsigned width = levels[l].width;

	for (unsigned r = 0; r < levels[l].nr_regs; r++)
		for (unsigned b = 0; b < width; b++)
			if (in->v[r][b] != out->v[r][b])
				wl_fail("%s%s%u byte %u is %#x, want %#x", who, levels[l].regs, r,
				        b, out->v[r][b], in->v[r][b]);
	if (l == AVX512)
		for (unsigned k = 1; k < 8; k++)
			if (in->k[k] != out->k[k])
				wl_fail("%sk%u is %#llx, want %#llx", who, k,
				        (unsigned long long)out->k[k],
				        (unsigned long long)in->k[k]);
	if (out->mxcsr != in->mxcsr)
		wl_fail("%sMXCSR is %#x, want %#x", who, out->mxcsr, in->mxcsr);
	if (out->fcw != in->fcw)
		wl_fail("%sx87 control word is %#x, want %#x", who, out->fcw, in->fcw);
	if (memcmp(out->st0, in->st0, 10))
		wl_fail("%sx87 st(0) is not the value pushed", who);
}

/* Random registers from seed; a normal 80-bit value (explicit integer bit, exponent near
 * 1.0) so that fldt/fstpt keep it bit for bit. */
static void fill(struct vstate *in, uint64_t seed)
{
	uint64_t mant;
	uint16_t se;

	for (unsigned r = 0; r < 32; r++)
		for (unsigned b = 0; b < 64; b += 8) {
			uint64_t w = wl_rand(&seed);

			memcpy(&in->v[r][b], &w, 8);
		}
	for (unsigned k = 0; k < 8; k++)
		in->k[k] = wl_rand(&seed);
	mant = wl_rand(&seed) | 1ULL << 63;
	se = (uint16_t)(0x3fff - 32 + wl_rand(&seed) % 64) | (uint16_t)(seed & 1 ? 0x8000 : 0);
	memcpy(in->st0, &mant, 8);
	memcpy(in->st0 + 8, &se, 2);
}

static void hold(enum level l, const struct vstate *in, struct vstate *out, struct poll_args *args)
{
	if (l == AVX512)
		hold_avx512(in, out, args);
	else if (l == AVX)
		hold_avx(in, out, args);
	else
		hold_sse(in, out, args);
	__asm__ volatile("ldmxcsr %0\n\tfldcw %1"
	                 :
	                 : "m"((uint32_t){MXCSR_DEFAULT}), "m"((uint16_t){FCW_DEFAULT}));
}

struct holder {
	pthread_t pt;
	enum level level;
	struct vstate in, out;
	struct poll_args args;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	hold(h->level, &h->in, &h->out, &h->args);
	return NULL;
}

/* Each thread its own values: thread i rounds MXCSR and x87 its own way ((i % 3) + 1, never
 * the default), flushes denormals when odd, and uses precision (i % 2) * 2. */
static void run_threads(enum level l, unsigned n, const struct poll_args *proto)
{
	static struct holder h[MAX_THREADS];
	static int loaded;
	unsigned long polls;
	char who[32];

	for (unsigned i = 0; i < n; i++) {
		unsigned rc = i % 3 + 1;

		h[i].level = l;
		fill(&h[i].in, 0x7417 + i * 0x9e3779b97f4a7c15ULL);
		h[i].in.mxcsr = MXCSR_DEFAULT | rc << 13 | (i & 1 ? 0x8040u : 0);
		h[i].in.fcw = (uint16_t)(0x7f | (i % 2 * 2) << 8 | rc << 10);
		h[i].args = *proto;
		h[i].args.msg_len = 0;
		h[i].args.loaded = &loaded;
		if ((errno = pthread_create(&h[i].pt, NULL, holder_main, &h[i])))
			wl_fail("pthread_create: %s", strerror(errno));
	}
	for (polls = wl_max_polls(); __atomic_load_n(&loaded, __ATOMIC_SEQ_CST) < (int)n; polls--) {
		if (!polls)
			wl_fail("the threads did not load their registers");
		wl_nap_ms(1);
	}
	wl_ready();
	for (unsigned i = 0; i < n; i++)
		pthread_join(h[i].pt, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (!h[i].args.polls)
			wl_fail("no trigger");
		snprintf(who, sizeof(who), "thread %u: ", i);
		check(l, who, &h[i].in, &h[i].out);
	}
}

int main(int argc, char **argv)
{
	static struct vstate in, out;
	static int loaded;
	struct poll_args args = {.nap = {0, WL_POLL_MS * 1000000L},
	                         .msg_len = sizeof(ready_line) - 1,
	                         .loaded = &loaded};
	unsigned nthreads = 0;
	enum level l;

	wl_init("wl-simd");
	_Static_assert(offsetof(struct vstate, k) == 2048, "asm offsets");
	_Static_assert(offsetof(struct vstate, mxcsr) == 2112, "asm offsets");
	_Static_assert(offsetof(struct vstate, fcw) == 2116, "asm offsets");
	_Static_assert(offsetof(struct vstate, st0) == 2128, "asm offsets");
	_Static_assert(offsetof(struct poll_args, nap) == 8, "asm offsets");
	_Static_assert(offsetof(struct poll_args, polls) == 24, "asm offsets");
	_Static_assert(offsetof(struct poll_args, msg_len) == 32, "asm offsets");
	_Static_assert(offsetof(struct poll_args, loaded) == 40, "asm offsets");
	for (int a = 1; a < argc; a++)
		if (!strcmp(argv[a], "threads")) {
			nthreads = a + 1 < argc ? (unsigned)atoi(argv[a + 1]) : 4;
			if (nthreads < 1 || nthreads > MAX_THREADS)
				wl_fail("threads: 1 to %d", MAX_THREADS);
			argc = a;
			break;
		}
	l = parse_level(argc, argv);
	args.path = wl_trigger_path;
	args.polls = wl_max_polls();
	fprintf(stderr, "wl-simd: holding %u %s registers%s, MXCSR and x87 in %u thread(s)\n",
	        levels[l].nr_regs, levels[l].regs, l == AVX512 ? ", k1-k7" : "",
	        nthreads ? nthreads : 1);
	if (nthreads) {
		run_threads(l, nthreads, &args);
		wl_pass();
	}
	fill(&in, 0x51dd);
	in.mxcsr = MXCSR_SET;
	in.fcw = FCW_SET;
	memset(&out, 0, sizeof(out));
	hold(l, &in, &out, &args);
	if (!args.polls)
		wl_fail("no trigger");
	check(l, "", &in, &out);
	wl_pass();
}
