#!/usr/bin/env python3
"""peer-groups.py SOCKET JID: connects to the daemon, hands the connection to
a child and exits; the child, once its parent is gone (so the PID the socket
names is no process), asks the daemon to run `id -G` as job JID and prints
the HTTP status line."""
import os
import socket
import sys
import time

path, jid = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
parent = os.getpid()
if os.fork():
    os._exit(0)
while os.getppid() == parent:
    time.sleep(0.01)
body = '{"jid": "%s", "args": ["/usr/bin/id", "-G"], "cwd": "/tmp"}' % jid
s.sendall(("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)).encode())
print(s.recv(4096).decode().splitlines()[0], flush=True)
