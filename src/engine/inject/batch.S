/* The batch runner (cd_inject_batch): runs a list of system calls inside
 * the task in one go. Position independent, no stack, no data of its own:
 * copied into an executable page of the task. In: rdi = the list (struct
 * cd_inject_entry, 72 bytes each), rsi = how many. Each call's result goes
 * to its ret; a failed call whose flags ask for it ends the run. At the
 * end, int3: the tracer's stop (SIGTRAP is unblocked while it runs, so
 * the trap leaves the task's handler alone). r12 then holds how many
 * calls did not run. */
	.text
	.globl cd_inject_batch_code
	.globl cd_inject_batch_code_end
cd_inject_batch_code:
	mov	%rdi, %rbx
	mov	%rsi, %r12
1:	test	%r12, %r12
	jz	3f
	mov	0(%rbx), %rax
	mov	16(%rbx), %rdi
	mov	24(%rbx), %rsi
	mov	32(%rbx), %rdx
	mov	40(%rbx), %r10
	mov	48(%rbx), %r8
	mov	56(%rbx), %r9
	syscall
	mov	%rax, 64(%rbx)
	dec	%r12
	cmp	$-4095, %rax	/* -4095..-1: an errno */
	jb	2f
	testq	$1, 8(%rbx)	/* CD_INJECT_STOP_ON_ERROR */
	jnz	3f
2:	add	$72, %rbx
	jmp	1b
3:	int3
cd_inject_batch_code_end:
	.section .note.GNU-stack,"",@progbits
