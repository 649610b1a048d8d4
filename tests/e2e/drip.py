#!/usr/bin/env python3
"""drip.py SOCKET PART [SECONDS]: sends the start of a request (PART: "headers"
stops inside a header, "body" sends whole headers and a short body) and then
one byte a second for up to SECONDS (default 20). Prints how many seconds
passed until the daemon closed the connection, or "open" if it never did."""
import select
import socket
import sys
import time

path, part = sys.argv[1], sys.argv[2]
limit = float(sys.argv[3]) if len(sys.argv) > 3 else 20
if part == "headers":
    start = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
else:
    start = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n{")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
t0 = time.monotonic()
s.sendall(start)
while time.monotonic() - t0 < limit:
    ready, _, _ = select.select([s], [], [], 1)
    try:
        if ready and s.recv(4096) == b"":
            break
        s.sendall(b"a")
    except OSError:  # reset or broken pipe: closed too
        break
else:
    print("open", flush=True)
    sys.exit(0)
print(f"{time.monotonic() - t0:.1f}", flush=True)
