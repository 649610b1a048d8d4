#!/usr/bin/env python3
"""A redis client on one TCP connection, kept outside the checkpointed tree
(programs.bats): resp-client.py PORT DIR.

Connects, SETs and GETs a key, then writes DIR/ready. When DIR/gap appears
(the server is dumped and gone, its connection locked) it sends a SET on the
same connection and waits up to 60 s for the answer, which only a restored
server can give; then GETs both keys and writes DIR/result: PASS, or
FAIL: reason (a reset, an end of stream, a wrong answer, a timeout)."""
import os
import socket
import sys
import time


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def reply(sock):
    """One RESP reply: a simple string, an error, an integer or a bulk string."""
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError("end of stream")
        buf += chunk
    line = buf[:-2]
    if line[:1] == b"$":
        n = int(line[1:])
        if n < 0:
            return None
        data = b""
        while len(data) < n + 2:
            chunk = sock.recv(n + 2 - len(data))
            if not chunk:
                raise EOFError("end of stream")
            data += chunk
        return data[:-2].decode()
    return line[1:].decode()


def ask(sock, *args):
    sock.sendall(command(*args))
    return reply(sock)


def main():
    port, d = int(sys.argv[1]), sys.argv[2]
    result = os.path.join(d, "result")
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(60)
    try:
        if ask(sock, "SET", "before", "1") != "OK" or ask(sock, "GET", "before") != "1":
            raise ValueError("the first SET/GET")
        open(os.path.join(d, "ready"), "w").close()
        while not os.path.exists(os.path.join(d, "gap")):
            time.sleep(0.01)
        got = [ask(sock, "SET", "during", "2"), ask(sock, "GET", "before"),
               ask(sock, "GET", "during")]
        if got != ["OK", "1", "2"]:
            raise ValueError("answers %r" % got)
        verdict = "PASS"
    except Exception as e:  # the verdict names whatever went wrong
        verdict = "FAIL: %s: %s" % (type(e).__name__, e)
    with open(result + ".tmp", "w") as f:
        f.write(verdict + "\n")
    os.rename(result + ".tmp", result)


main()
