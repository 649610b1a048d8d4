#!/bin/sh
# wl-python.sh: a real interpreter following the workload protocol (README.md). exec keeps our
# pid, so the checkpointed tree is python3 alone. State: a dict of 10000 seeded integers, a list
# of 100000 floats, a running SHA-256 and a suspended generator, all advanced every poll;
# after the trigger a replay from the seed must give the same dict, digest and generator.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
exec "$py" -c '
import hashlib, os, random, sys, time

trigger = os.environ.get("CEDANA_WL_TRIGGER")
if not trigger:
    print("FAIL: CEDANA_WL_TRIGGER is not set", flush=True)
    sys.exit(1)
timeout = int(os.environ.get("CEDANA_WL_TIMEOUT") or 60)

def make_state():
    rng = random.Random(1234)
    table = {"k%d" % i: rng.getrandbits(64) for i in range(10000)}
    floats = [rng.random() for _ in range(100000)]
    return table, floats, hashlib.sha256()

def numbers():
    n = 0
    while True:
        n += 1
        yield n

def step(table, digest, n):
    key = "k%d" % (n % 10000)
    table[key] = (table[key] * 6364136223846793005 + n) % 2**64
    digest.update(n.to_bytes(8, "little"))

table, floats, digest = make_state()
floats_sum = sum(floats)
gen = numbers()
steps = 0
print("READY", flush=True)
polls = timeout * 100  # counted, not clocked: time frozen or dumped is not ours
while not os.path.exists(trigger):
    if polls == 0:
        print("FAIL: no trigger", flush=True)
        sys.exit(1)
    polls -= 1
    steps = next(gen)
    step(table, digest, steps)
    time.sleep(0.01)

want_table, want_floats, want_digest = make_state()
for n in range(1, steps + 1):
    step(want_table, want_digest, n)
if next(gen) != steps + 1:
    print("FAIL: the generator lost its place", flush=True)
    sys.exit(1)
if table != want_table:
    print("FAIL: the dict differs from its replay", flush=True)
    sys.exit(1)
if digest.hexdigest() != want_digest.hexdigest():
    print("FAIL: the running hash differs from its replay", flush=True)
    sys.exit(1)
if floats != want_floats or sum(floats) != floats_sum:
    print("FAIL: the float list differs", flush=True)
    sys.exit(1)
print("wl-python: %d steps" % steps, file=sys.stderr)
print("PASS", flush=True)
' "$@"
