# A PyTorch CPU training loop for tests/engine/programs.bats: a small MLP
# fitted by SGD with momentum on a fixed-seed regression, on four OpenMP
# threads. Each step prints "step N loss L". READY after 20 steps; after the
# trigger (CEDANA_WL_TRIGGER) five more, then a reference run from the same
# seed in this process replays every step: PASS when the loop's losses,
# those after the restore included, are the reference's bit for bit (the
# weights and the optimizer's momentum came back exactly; a loop that
# started over would print step 0 again, which the test looks for in the
# log) and the loss went down.
import os
import time

import torch

THREADS = 4
STEPS_BEFORE_READY = 20
STEPS_AFTER_TRIGGER = 5


def setup():
    torch.manual_seed(1234)
    x = torch.randn(1024, 64)
    y = torch.tanh(x @ torch.randn(64, 1)) + 0.05 * torch.randn(1024, 1)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return x, y, model, opt


def train_step(x, y, model, opt):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def main():
    torch.set_num_threads(THREADS)
    trig = os.environ["CEDANA_WL_TRIGGER"]
    x, y, model, opt = setup()
    losses = []

    def step():
        losses.append(train_step(x, y, model, opt))
        print("step %d loss %.9e" % (len(losses) - 1, losses[-1]), flush=True)

    for _ in range(STEPS_BEFORE_READY):
        step()
    print("at-ready step %d" % (len(losses) - 1), flush=True)
    print("READY", flush=True)
    while not os.path.exists(trig):
        step()
        time.sleep(0.05)
    for _ in range(STEPS_AFTER_TRIGGER):
        step()

    rx, ry, rmodel, ropt = setup()
    for i, got in enumerate(losses):
        want = train_step(rx, ry, rmodel, ropt)
        # bit for bit: the same ops on the same thread count give the same
        # floats, and the restore brought back every byte of the state
        if got != want:
            print("FAIL: step %d loss %.9e, the reference's %.9e" % (i, got, want), flush=True)
            return 1
    if not losses[-1] < losses[0]:
        print("FAIL: loss %.9e after %d steps, %.9e at the start" % (losses[-1], len(losses), losses[0]))
        return 1
    print("PASS", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
