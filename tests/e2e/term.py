#!/usr/bin/env python3
"""Runs a command on a real terminal (a pty) and drives it.

usage: term.py [STEP...] -- CMD [ARGS...]
steps, in order:
  wait:REGEX   wait until the output so far matches REGEX
  send:TEXT    type TEXT (Python escapes: \\n, \\x03 ...)
  sleep:SECS   pause
Then waits for the command to exit, prints everything it wrote, and exits
with its exit code (124 on a timeout)."""
import os
import pty
import re
import select
import sys
import time

TIMEOUT = 15


def main():
    sep = sys.argv.index("--")
    steps, cmd = sys.argv[1:sep], sys.argv[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out = b""
    deadline = time.time() + TIMEOUT

    def pump(wait):
        nonlocal out
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return True
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        out += data
        return True

    for step in steps:
        kind, _, arg = step.partition(":")
        if kind == "wait":
            while not re.search(arg.encode(), out, re.S):
                if time.time() > deadline or not pump(0.1):
                    sys.stdout.write(out.decode(errors="replace"))
                    print(f"\nterm.py: timed out waiting for {arg!r}", file=sys.stderr)
                    os.kill(pid, 9)
                    sys.exit(124)
        elif kind == "send":
            os.write(fd, arg.encode().decode("unicode_escape").encode())
        elif kind == "sleep":
            end = time.time() + float(arg)
            while time.time() < end and pump(end - time.time()):
                pass
    done, status = 0, 0
    while time.time() < deadline:
        alive = pump(0.1)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            while alive and pump(0.05):
                pass
            break
        if not alive:
            time.sleep(0.05)
    sys.stdout.write(out.decode(errors="replace"))
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("term.py: timed out waiting for the command to exit", file=sys.stderr)
        sys.exit(124)
    sys.exit(os.waitstatus_to_exitcode(status) % 256)


main()
