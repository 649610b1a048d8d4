"""pg-session.py: a PostgreSQL server and a client session on its unix socket, in one tree.

Run as the postgres user: python3 pg-session.py BINDIR DATADIR SOCKDIR PORT [tcp]. Starts
`postgres` as its child (listen_addresses='', the socket in SOCKDIR), connects over the
unix socket speaking the frontend/backend protocol itself (trust authentication), creates
table t with rows 1..1000, prints READY and waits for $CEDANA_WL_TRIGGER. The backend that
serves it holds the accepted end, this process the client end, the postmaster the
listener: the connection is inside the tree. After the trigger, on the same connection:
count and sum of t are 1000 and 500500, a row goes in, the count is 1001; prints PASS (or
FAIL: reason) and then serves on until killed, so a fresh client can check the server.
With "tcp", the server also listens on 127.0.0.1:PORT and the session is a TCP connection
to it (an established connection whose both ends are in the tree: restored through TCP
repair with no flag).
"""
import os
import socket
import struct
import subprocess
import sys
import time


def fail(why):
    print("FAIL: " + why, flush=True)
    sys.exit(1)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        got = s.recv(n - len(buf))
        if not got:
            raise ConnectionError("the server closed the connection")
        buf += got
    return buf


def message(s):
    kind = recv_exact(s, 1)
    (n,) = struct.unpack("!i", recv_exact(s, 4))
    return kind, recv_exact(s, n - 4)


def until_ready(s):
    """Reads to ReadyForQuery; returns the data rows (lists of str) and the errors."""
    rows, errors = [], []
    while True:
        kind, body = message(s)
        if kind == b"Z":
            return rows, errors
        if kind == b"E":
            errors.append(body.replace(b"\0", b" ").decode(errors="replace"))
        elif kind == b"D":
            (ncols,) = struct.unpack("!h", body[:2])
            at, row = 2, []
            for _ in range(ncols):
                (n,) = struct.unpack("!i", body[at : at + 4])
                at += 4
                row.append(None if n < 0 else body[at : at + n].decode())
                at += max(n, 0)
            rows.append(row)
        elif kind == b"R":
            (code,) = struct.unpack("!i", body[:4])
            if code != 0:
                fail("authentication %d asked: want trust" % code)


def query(s, sql):
    body = sql.encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
    rows, errors = until_ready(s)
    if errors:
        fail("%s: %s" % (sql, errors[0]))
    return rows


def connect(sockdir, port, tcp):
    path = os.path.join(sockdir, ".s.PGSQL.%s" % port)
    for _ in range(600):
        if os.path.exists(path):
            try:
                if tcp:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.connect(("127.0.0.1", int(port)))
                else:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(path)
                params = b"user\0postgres\0database\0postgres\0\0"
                s.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
                _, errors = until_ready(s)
                if not errors:
                    return s
                s.close()
            except OSError:  # ConnectionError too: a server still starting says so and closes
                pass
        time.sleep(0.1)
    fail("no server on " + path)


def main():
    bindir, datadir, sockdir, port = sys.argv[1:5]
    tcp = sys.argv[5:6] == ["tcp"]
    trigger = os.environ["CEDANA_WL_TRIGGER"]
    subprocess.Popen(
        [os.path.join(bindir, "postgres"), "-D", datadir, "-k", sockdir, "-p", port,
         "-c", "listen_addresses=" + ("127.0.0.1" if tcp else "")],
        stdin=subprocess.DEVNULL)
    s = connect(sockdir, port, tcp)
    query(s, "CREATE TABLE t (x int)")
    query(s, "INSERT INTO t SELECT generate_series(1, 1000)")
    print("READY", flush=True)
    while not os.path.exists(trigger):
        time.sleep(0.05)
    rows = query(s, "SELECT count(*), sum(x) FROM t")
    if rows != [["1000", "500500"]]:
        fail("count and sum %r, want 1000 500500" % rows)
    query(s, "INSERT INTO t VALUES (1001)")
    rows = query(s, "SELECT count(*) FROM t")
    if rows != [["1001"]]:
        fail("count %r after an insert, want 1001" % rows)
    print("PASS", flush=True)
    while True:
        time.sleep(1)


main()
