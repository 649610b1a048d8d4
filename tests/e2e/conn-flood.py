#!/usr/bin/env python3
"""conn-flood.py SOCKET N: opens N idle connections to SOCKET and prints how
many the daemon kept open (the others it shut down at once)."""
import select
import socket
import sys
import time

path, n = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
# a refused connection is shut down as soon as it is accepted: it reads EOF
deadline = time.monotonic() + 3
closed = set()
while time.monotonic() < deadline:
    ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.2)
    for s in ready:
        if s.recv(1) == b"":
            closed.add(s)
print(n - len(closed), flush=True)
if len(sys.argv) > 3:
    # hold them while the caller checks the daemon still serves others
    sys.stdin.read()
