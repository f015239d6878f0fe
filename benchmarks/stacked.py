"""Issue 15's targets: seeds trained stacked (rnncount.stacked) and the loop around the model.

    python benchmarks/stacked.py                        # every target; a table, benchmarks/stacked_results.json
    python benchmarks/stacked.py --targets 2,3,loop     # the in-process ones only (a few minutes)

    1     `rnncount compare --cells lstm,gru,rnn --seeds 0-4` (15 runs) / the reference code's 2 runs    <= 1.0
    2     per-model epoch, 10 LSTMs stacked / torch.nn.LSTM's epoch for one model in the same Trainer    <= 0.3
    3     one model, eager LSTM epoch: rnncount's layer / torch.nn.LSTM, both in the Trainer             <= 1.2
    4     `rnncount compare --cells lstm,gru` (eager, one seed) / the reference code                     <= 0.4
    loop  the Trainer driving torch.nn.LSTM / a minimal hand-written loop with the same model            <= 1.1
    vmap  10 stacked LSTMs, fwd+bwd: vmap over the cells' code / a hand-written leading-dimension LSTM  (why vmap)

Ratios come from one run with the two sides interleaved (median of --repeats), whole commands in fresh
processes with an empty compile cache. Run it on a quiet machine; the load average is saved with the results.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import TorchLayer, cpu_name, with_threads  # noqa: E402

from rnncount.model import ModelConfig  # noqa: E402
from rnncount.runs import default_threads, keep_freed_memory  # noqa: E402
from rnncount.stacked import Member, StackedTrainer  # noqa: E402
from rnncount.train import TrainConfig, Trainer  # noqa: E402


def medians(functions: dict, repeats: int) -> dict[str, float]:
    """Each function called `repeats` times, taking turns (one warm-up call each first); median seconds."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def torch_trainer(cell: str, config: TrainConfig, data) -> Trainer:
    """The Trainer with torch.nn's layer in place of rnncount's (and its own Adam over it)."""
    trainer = Trainer(ModelConfig(cell=cell), config, data)
    trainer.model.rnn = TorchLayer((nn.LSTM if cell == "lstm" else nn.GRU)(1, 20, batch_first=True))
    trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=config.lr, foreach=True)
    return trainer


def target_2(repeats: int, compile: bool = False) -> list[dict]:
    """The stack with the threads the CLI gives a stack that has the machine to itself (rnncount.runs.default_threads:
    every usable CPU), torch.nn.LSTM's one model with one thread (what the CLI gives a solo run of hidden size 20)
    and with two: the ratio is against the faster of the two."""
    config = TrainConfig(epochs=10_000)
    members = [Member.new(ModelConfig(), replace(config, seed=seed), Path(os.devnull)) for seed in range(10)]
    threads = default_threads("lstm", 20, models=len(members))
    stack = StackedTrainer(members, compile=compile)
    theirs = torch_trainer("lstm", config, (members[0].trainer.train_data, members[0].trainer.test_data))
    functions = {"stacked": with_threads(threads, stack.train_epoch), "torch.nn": with_threads(1, theirs.train_epoch)}
    if threads > 1:
        functions["torch.nn, 2 threads"] = with_threads(2, theirs.train_epoch)
    seconds = medians(functions, repeats)  # the stack's first call compiles, with its threads
    per_model, best = seconds["stacked"] / 10, min(v for k, v in seconds.items() if k != "stacked")
    return [{"target": 2, "case": "per-model epoch, 10 LSTMs stacked" + (" (compiled)" if compile else " (eager)"),
             "rnncount": per_model, "torch.nn": best, "ratio": per_model / best, "bound": 0.3,
             "note": f"the stack's whole epoch {seconds['stacked']:.2f} s for 10 models on {threads} thread(s); "
                     f"torch.nn {seconds['torch.nn']:.3f} s on one thread"
                     + (f", {seconds['torch.nn, 2 threads']:.3f} s on two" if threads > 1 else "")}]


def target_3(repeats: int) -> list[dict]:
    torch.set_num_threads(1)
    config = TrainConfig(epochs=10_000)
    ours = Trainer(ModelConfig(cell="lstm"), config)
    theirs = torch_trainer("lstm", config, (ours.train_data, ours.test_data))
    seconds = medians({"rnncount": ours.train_epoch, "torch.nn": theirs.train_epoch}, repeats)
    return [{"target": 3, "case": "one model, eager LSTM epoch (B16 T20 H20)", **seconds,
             "ratio": seconds["rnncount"] / seconds["torch.nn"], "bound": 1.2}]


def target_loop(repeats: int) -> list[dict]:
    """The Trainer's epoch against the loop anyone would write first, the same torch.nn.LSTM model and data."""
    torch.set_num_threads(1)
    config = TrainConfig(epochs=10_000)
    trainer = torch_trainer("lstm", config, None)
    model = copy.deepcopy(trainer.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    train, test = trainer.train_data, trainer.test_data
    shuffle = torch.Generator().manual_seed(0)

    def minimal():
        model.train()
        total = correct = 0.0
        for index in torch.randperm(len(train), generator=shuffle).split(config.batch_size):
            x, y = train.inputs[index], train.counts[index]
            optimizer.zero_grad()
            out = model(x)
            loss = nn.functional.mse_loss(out, y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            correct += (out.round() == y).sum().item()
        model.eval()
        with torch.no_grad():
            out = model(test.inputs)
            return nn.functional.mse_loss(out, test.counts).item(), (out.round() == test.counts).float().mean().item()
    seconds = medians({"rnncount": trainer.train_epoch, "minimal": minimal}, repeats)
    return [{"target": "loop", "case": "Trainer around torch.nn.LSTM / a minimal loop (same model), one epoch",
             "rnncount": seconds["rnncount"], "torch.nn": seconds["minimal"],
             "ratio": seconds["rnncount"] / seconds["minimal"], "bound": 1.1,
             "note": "the torch.nn column holds the minimal loop (with its .item() per batch, as usually written)"}]


def target_vmap(repeats: int) -> list[dict]:
    """Why vmap: 10 LSTMs fwd+bwd at B16 T20 H20, vmap over rnncount's cell code vs a leading-dimension LSTM."""
    torch.set_num_threads(1)
    k, batch, steps, hidden = 10, 16, 20, 20
    config = TrainConfig(train_samples=batch, test_samples=batch)
    stack = StackedTrainer([Member.new(ModelConfig(), replace(config, seed=s), Path(os.devnull)) for s in range(k)])
    x = torch.randint(0, 2, (k, batch, steps, 1)).float()
    w_ih, w_hh = stack.params["rnn.weight_ih_l0"], stack.params["rnn.weight_hh_l0"]  # (K, 4H, 1), (K, 4H, H)
    b_ih, b_hh = stack.params["rnn.bias_ih_l0"], stack.params["rnn.bias_hh_l0"]  # (K, 4H) each
    head_w, head_b = stack.params["head.weight"], stack.params["head.bias"]

    def vmapped():
        stack._forward(x, None, None, False).sum().backward()

    def leading_dimension():  # the same LSTM written out for a model dimension: what vmap spares the cells
        bias = (b_ih + b_hh)[:, None]  # (K, 1, 4H)
        x_proj = torch.baddbmm(bias, x.flatten(1, 2), w_ih.transpose(1, 2)).unflatten(1, (batch, steps))  # (K, B, T, 4H)
        h = c = x.new_zeros(k, batch, hidden)
        for x_t in x_proj.unbind(2):  # unbind, as layers.scan: x_proj[:, :, t] would cost a full-size gradient per step
            i, f, g, o = torch.baddbmm(x_t, h, w_hh.transpose(1, 2)).chunk(4, dim=-1)  # (K, B, H) each
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        (torch.baddbmm(head_b[:, None], h, head_w.transpose(1, 2))).sum().backward()

    def timed(function, calls=20):
        def run():
            for _ in range(calls):
                function()
        return run
    seconds = medians({"vmap": timed(vmapped), "leading": timed(leading_dimension)}, repeats)
    return [{"target": "vmap", "case": "10 LSTMs fwd+bwd B16 T20 H20: vmap over the cells / leading-dimension LSTM",
             "rnncount": seconds["vmap"] / 20, "torch.nn": seconds["leading"] / 20,
             "ratio": seconds["vmap"] / seconds["leading"], "bound": float("inf"),
             "note": "the torch.nn column holds the hand-written leading-dimension LSTM (a second copy of the gates)"}]


def timed_process(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def target_jobs(repeats: int, which: tuple[int, ...], keep: Path | None = None) -> list[dict]:
    """Targets 1 and 4: whole commands in fresh processes, each against the same runs of the reference code."""
    reference = [sys.executable, str(HERE / "reference_loop.py")]
    cli = [sys.executable, "-m", "rnncount", "compare", "--force"]
    commands = {1: cli + ["--cells", "lstm,gru,rnn", "--seeds", "0-4"], 4: cli + ["--cells", "lstm,gru"]}
    times = {key: [] for key in (*which, "reference")}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(Path(scratch) / f"cache{repeat}")}
            times["reference"].append(timed_process(reference, dict(os.environ)))
            for target in which:
                out = keep / f"target{target}" if keep else Path(scratch) / "out"  # --keep: the tables stay
                times[target].append(timed_process(commands[target] + ["--out", str(out)], env))
    median = {key: statistics.median(values) for key, values in times.items()}
    cases = {1: ("compare lstm,gru,rnn --seeds 0-4 (15 runs, eager) / reference (2 runs)", 1.0),
             4: ("compare lstm,gru (one seed each, eager) / reference (2 runs)", 0.4)}
    return [{"target": target, "case": cases[target][0], "rnncount": median[target], "reference": median["reference"],
             "ratio": median[target] / median["reference"], "bound": cases[target][1]} for target in which]


def table(rows: list[dict]) -> str:
    def cell(value):
        return "" if value is None else f"{value:.3g} s" if value >= 1 else f"{value * 1e3:.3g} ms"
    lines = ["| target | case | rnncount | torch.nn | reference code | ratio | bound | met |", "|---" * 8 + "|"]
    for row in rows:
        bound = "(comparison)" if row["bound"] == float("inf") else f"<= {row['bound']}"
        met = "" if row["bound"] == float("inf") else "yes" if row["ratio"] <= row["bound"] else "no"
        lines.append(f"| {row['target']} | {row['case']} | {cell(row.get('rnncount'))} | {cell(row.get('torch.nn'))} "
                     f"| {cell(row.get('reference'))} | {row['ratio']:.2f} | {bound} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="vmap,loop,3,2,2c,4,1",
                        help="comma-separated from 1, 2, 2c (target 2 compiled), 3, 4, loop, vmap")
    parser.add_argument("--repeats", type=int, default=3, help="epochs measured per side; the median is kept (3)")
    parser.add_argument("--job-repeats", type=int, default=1, help="runs of targets 1 and 4's whole commands (1)")
    parser.add_argument("--out", type=Path, default=HERE / "stacked_results.json")
    parser.add_argument("--keep", type=Path, help="write targets 1 and 4's runs to KEEP/target1, KEEP/target4")
    args = parser.parse_args()
    keep_freed_memory()  # the allocator setting the rnncount command runs with, for both sides of every ratio
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
               "load_before": os.getloadavg()}
    targets = args.targets.split(",")
    runners = {"vmap": lambda: target_vmap(args.repeats), "loop": lambda: target_loop(args.repeats),
               "3": lambda: target_3(args.repeats), "2": lambda: target_2(args.repeats),
               "2c": lambda: target_2(args.repeats, compile=True)}
    rows = []
    for name in targets:
        if name in ("1", "4"):
            continue
        print(f"target {name} ...", file=sys.stderr, flush=True)
        rows += runners[name]()
        print(table(rows), file=sys.stderr, flush=True)
        machine["load_after"] = os.getloadavg()
        args.out.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    jobs = tuple(int(t) for t in targets if t in ("1", "4"))
    if jobs:
        print(f"targets {jobs} ...", file=sys.stderr, flush=True)
        rows += target_jobs(args.job_repeats, tuple(sorted(jobs, reverse=True)), args.keep)
        machine["load_after"] = os.getloadavg()
        args.out.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    print(table(rows))
    print(f"\n{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, load average before "
          f"{machine['load_before'][0]:.2f}, after {machine['load_after'][0]:.2f}; median of {args.repeats} "
          f"(targets 1 and 4: of {args.job_repeats})")


if __name__ == "__main__":
    main()
