"""Where a stacked epoch's time goes: StackedTrainer.train_epoch's phases, timed one by one (issue 15, target 2).

    taskset -c 1 env OMP_NUM_THREADS=1 python benchmarks/stacked_phases.py        # 10 LSTMs, reference size
    python benchmarks/stacked_phases.py --members 5 --epochs 2

The loop below is train_epoch's own (the same calls, in the same order; no lr schedule, step loss, masks or
decay, which the reference settings do not use), with a clock read between its phases. CPU time of this
process (time.process_time), so that another process on the machine counts less; one thread.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

from rnncount.model import ModelConfig
from rnncount.stacked import Member, StackedTrainer
from rnncount.train import TrainConfig


def timed_epoch(stack: StackedTrainer, seconds: dict[str, float]) -> int:
    """One epoch of train_epoch's work, each phase's CPU time added to seconds[phase]; returns the batches run."""
    config, data, count = stack.config, stack._data["train_data"], len(stack.members)
    clock = time.process_time()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.process_time()
        seconds[name] += now - clock
        clock = now
    orders = torch.stack([torch.randperm(data.size, generator=m.trainer.shuffle) for m in stack.members])
    rows, batches = torch.arange(count)[:, None], orders.split(config.batch_size, dim=1)
    totals = torch.zeros(count, 2, dtype=torch.float64)
    first_bad, bad_value = torch.zeros(count, dtype=torch.long), torch.zeros(count)
    for number, index in enumerate(batches, 1):
        inputs, counts, lengths = data.batch(rows, index, stack.device)
        phase("batch gathering")
        predictions = stack._forward(inputs, lengths, None, every_step=False)
        squared = ((predictions - counts) ** 2).sum(dim=1)
        losses = squared / index.size(1)
        phase("forward (vmap) and loss")
        stack.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        phase("backward")
        norms = stack._clip_gradients()
        phase("gradient norms")
        newly = ~(torch.isfinite(losses.detach()) & torch.isfinite(norms)) & (first_bad == 0)
        first_bad = torch.where(newly, number, first_bad)
        bad_value = torch.where(newly, torch.where(torch.isfinite(losses.detach()), norms, losses.detach()), bad_value)
        phase("non-finite bookkeeping")
        stack.optimizer.step()
        phase("Adam (fused)")
        totals += torch.stack([squared.detach(), (predictions.detach().round() == counts).sum(dim=1)], 1).double()
        phase("totals")
    stack.evaluate()
    phase("evaluate (test set)")
    return len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed, after one not timed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainConfig(epochs=10_000)
    stack = StackedTrainer([Member.new(ModelConfig(), replace(config, seed=seed), Path(os.devnull))
                            for seed in range(args.members)])
    stack.train_epoch()
    seconds: dict[str, float] = defaultdict(float)
    batches = sum(timed_epoch(stack, seconds) for _ in range(args.epochs))
    total = sum(seconds.values())
    print(f"{args.members} LSTMs stacked (B16 T20 H20), {batches} batches, load average {os.getloadavg()[0]:.2f}")
    print("| phase | ms per batch | share |\n|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value / batches * 1e3:.3f} | {value / total:.1%} |")
    print(f"| all | {total / batches * 1e3:.3f} | per member {total / batches / args.members * 1e3:.3f} ms |")


if __name__ == "__main__":
    main()
