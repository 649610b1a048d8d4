"""PyTorch workload for scripts/gpu-check.sh: a small training loop.

wl-torch.py [BIG_MIB]: trains a fixed model on fixed data and prints
"step N loss L big ok" every 50 steps; BIG_MIB adds a tensor of that size
whose checksum is compared each time ("big BAD" and exit 1 when it
changed). Prints READY once the model is on the device. A restored
process goes on at the next step with the loss where it left off.
"""
import os
import sys
import time

import torch

big_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 0
torch.manual_seed(0)
dev = "cuda"
big = torch.rand(max(1, big_mib * 1024 * 1024 // 4), device=dev)
ref = float(big.double().sum())
model = torch.nn.Sequential(
    torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1)
).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(4096, 256, device=dev)
y = x.sum(dim=1, keepdim=True)
print(f"READY pid {os.getpid()}", flush=True)
step = 0
while True:
    step += 1
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 50 == 0:
        ok = float(big.double().sum()) == ref
        print(f"step {step} loss {loss.item():.6f} big {'ok' if ok else 'BAD'}", flush=True)
        if not ok:
            print("FAIL: the big tensor's checksum changed", flush=True)
            sys.exit(1)
        time.sleep(0.2)
