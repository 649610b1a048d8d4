#!/usr/bin/env python3
"""Breaks a running workload's state from outside, for the negative self-tests (x86-64 only).

  tamper.py mem PID ADDR HEX       write bytes into PID's memory at ADDR (/proc/PID/mem)
  tamper.py xmm0 PID               flip the lowest byte of xmm0 (ptrace FP registers)
  tamper.py return PID VALUE       make the syscall PID is blocked in return VALUE now,
                                   without a restart (ptrace: rax=VALUE, orig_rax=-1)
  tamper.py sched PID              set PID's scheduling policy to SCHED_OTHER (nice kept)
"""
import ctypes
import os
import sys

PTRACE_GETREGS, PTRACE_SETREGS = 12, 13
PTRACE_GETFPREGS, PTRACE_SETFPREGS = 14, 15
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
FXSAVE_XMM0 = 160  # offset of xmm0 in struct user_fpregs_struct
REG_RAX, REG_ORIG_RAX = 10, 15  # indexes in struct user_regs_struct

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(req, pid, addr=None, data=None):
    if libc.ptrace(req, pid, addr, data) == -1:
        err = ctypes.get_errno()
        sys.exit(f"tamper: ptrace {req} on {pid}: {os.strerror(err)}")


def stopped(pid):
    """Seizes and interrupts pid; the caller detaches."""
    ptrace(PTRACE_SEIZE, pid)
    ptrace(PTRACE_INTERRUPT, pid)
    os.waitpid(pid, 0)


def mem(pid, addr, data):
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        os.pwrite(fd, bytes.fromhex(data), int(addr, 16))
    finally:
        os.close(fd)


def xmm0(pid):
    buf = ctypes.create_string_buffer(512)
    stopped(pid)
    ptrace(PTRACE_GETFPREGS, pid, None, buf)
    buf[FXSAVE_XMM0] = bytes([buf[FXSAVE_XMM0][0] ^ 0xFF])
    ptrace(PTRACE_SETFPREGS, pid, None, buf)
    ptrace(PTRACE_DETACH, pid)


def syscall_return(pid, value):
    regs = (ctypes.c_ulonglong * 27)()
    stopped(pid)
    ptrace(PTRACE_GETREGS, pid, None, regs)
    if ctypes.c_longlong(regs[REG_ORIG_RAX]).value < 0:
        ptrace(PTRACE_DETACH, pid)
        sys.exit(f"tamper: {pid} is not in a syscall")
    regs[REG_RAX] = ctypes.c_ulonglong(value).value
    regs[REG_ORIG_RAX] = ctypes.c_ulonglong(-1).value
    ptrace(PTRACE_SETREGS, pid, None, regs)
    ptrace(PTRACE_DETACH, pid)


def main(argv):
    if len(argv) == 4 and argv[0] == "mem":
        mem(int(argv[1]), argv[2], argv[3])
    elif len(argv) == 2 and argv[0] == "xmm0":
        xmm0(int(argv[1]))
    elif len(argv) == 3 and argv[0] == "return":
        syscall_return(int(argv[1]), int(argv[2]))
    elif len(argv) == 2 and argv[0] == "sched":
        os.sched_setscheduler(int(argv[1]), os.SCHED_OTHER, os.sched_param(0))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
