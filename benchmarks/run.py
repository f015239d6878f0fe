"""rnncount's speed against torch.nn and the reference loop: the five targets of issue 4, side by side
(target 6: the layer-normalised LSTM; target 7, issue 14: minGRU and minLSTM's parallel scan against the LSTM).

    python benchmarks/run.py                     # all targets; prints a table, writes benchmarks/results.json
    python benchmarks/run.py --targets 3,4,5     # some of them; the file keeps the other targets' last rows
    python benchmarks/run.py --repeats 5 --job-repeats 3 --out results.json

Every ratio is rnncount / torch.nn (or / reference for target 2), measured in one run with the two
interleaved, the median of --repeats. Lower is better; the target is the bound in the last column.
Run it on a quiet machine: the load average is printed and saved with the results.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import reference_loop  # noqa: E402

import rnncount  # noqa: E402
from rnncount.model import ModelConfig  # noqa: E402
from rnncount.parallel import log_space_scan  # noqa: E402
from rnncount.runs import default_threads, keep_freed_memory  # noqa: E402
from rnncount.train import TrainConfig, Trainer  # noqa: E402

SHAPES_3 = [((16, 20, 20), 1.0), ((64, 100, 128), 1.0), ((64, 100, 512), 1.0), ((16, 1000, 20), 2.0)]
SHAPE_4, BOUND_4 = (256, 1000, 20), 1.2
SHAPES_5, BOUND_5 = [(16, 1000, 20), (64, 100, 512)], 1.5
SHAPES_7 = [((16, 20, 20), 1.0), ((16, 1000, 20), 1 / 30)]  # issue 14: no slower at T=20, >= 30x faster at T=1000


def threads_for(hidden: int) -> int:
    """The CLI's rule, for both sides: one thread for small matmuls, all cores above."""
    return 1 if hidden <= 64 else os.cpu_count() or 1


# ---- the three implementations of one layer ------------------------------------------------------

class TorchLayer(nn.Module):
    """torch.nn.LSTM/GRU behind rnncount's layer interface (what Counter and the Trainer call)."""

    compiled = False

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer, self.state_sizes = layer, (layer.hidden_size,)

    def forward(self, x, hx=None, *, lengths=None):
        assert lengths is None, "the benchmark uses fixed-length data"
        return self.layer(x, hx)


class ReferenceLayer(nn.Module):
    """The reference loop's cell (nn.Linear maps, one step per Python iteration) as a layer, batch_first."""

    def __init__(self, cell: str, input_size: int, hidden_size: int):
        super().__init__()
        self.kind, self.hidden_size = cell, hidden_size
        self.cell = (reference_loop.LSTMCell if cell == "lstm" else reference_loop.GRUCell)(input_size, hidden_size)

    def forward(self, x):  # (B, T, I)
        h = x.new_zeros(x.size(0), self.hidden_size)
        state, outputs = ((h, h.clone()) if self.kind == "lstm" else h), []
        for t in range(x.size(1)):
            state = self.cell(x[:, t], state)
            outputs.append(state[0] if self.kind == "lstm" else state)
        return torch.stack(outputs, 1), state


def layers(cell: str, input_size: int, hidden: int):
    """rnncount (compiled steps), torch.nn and the reference loop; the GRU in torch's reset-after form."""
    if cell == "lstm":
        ours, theirs = rnncount.LSTM(input_size, hidden, batch_first=True), nn.LSTM(input_size, hidden, batch_first=True)
    else:
        ours = rnncount.GRU(input_size, hidden, batch_first=True, reset_after=True)
        theirs = nn.GRU(input_size, hidden, batch_first=True)
    ours.load_state_dict(theirs.state_dict())
    return {"rnncount": ours.compile_steps(), "torch.nn": theirs, "reference": ReferenceLayer(cell, input_size, hidden)}


# ---- measuring ---------------------------------------------------------------------------------------

def interleaved(functions: dict, repeats: int, budget: float = 0.5) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns; each warmed up twice first."""
    calls = {}
    for name, function in functions.items():
        function(), function()
        start = time.perf_counter()
        function()
        calls[name] = max(1, int(budget / max(time.perf_counter() - start, 1e-6)))
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                function()
            samples[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def training_step(layer: nn.Module, x: torch.Tensor):
    def step():
        output, _ = layer(x)
        output.sum().backward()
    return step


def inference(layer: nn.Module, x: torch.Tensor):
    def run():
        with torch.no_grad():
            layer(x)
    return run


def peak_memory(function) -> int | None:
    """Peak bytes the process grows by during function() (Linux: VmHWM after a reset, None elsewhere).

    Both warm-up calls first (compiling, allocator pools); then freed memory goes back to the system
    (malloc_trim), the high-water mark is reset (/proc/self/clear_refs) and one call is measured. This
    sees every allocation, also oneDNN's inside torch.nn.LSTM, which the profiler's memory events miss.
    """
    if not Path("/proc/self/clear_refs").exists():
        return None
    function(), function()
    gc.collect()
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_bytes("VmRSS")
    function()
    return _status_bytes("VmHWM") - before


def _status_bytes(key: str) -> int:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024  # kB


# ---- the targets -------------------------------------------------------------------------------------

def target_1(repeats: int) -> list[dict]:
    """Seconds per training epoch at the reference settings: the Trainer with rnncount's layer or torch.nn's."""
    rows = []
    torch.set_num_threads(1)  # as the CLI does for hidden size 20
    for cell in ("lstm", "gru"):
        config = TrainConfig(epochs=10_000)
        ours = Trainer(ModelConfig(cell=cell), config, compile=True)
        theirs = Trainer(ModelConfig(cell=cell), config, data=(ours.train_data, ours.test_data))
        twin = (nn.LSTM if cell == "lstm" else nn.GRU)(1, 20, batch_first=True)
        theirs.model.rnn = TorchLayer(twin)
        theirs.optimizer = torch.optim.Adam(theirs.model.parameters(), lr=config.lr)
        ours.train_epoch(), theirs.train_epoch()  # the first epoch compiles
        times = {"rnncount": [], "torch.nn": []}
        for _ in range(repeats):
            times["rnncount"].append(ours.train_epoch().seconds)
            times["torch.nn"].append(theirs.train_epoch().seconds)
        medians = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"target": 1, "case": f"{cell} epoch (B16 T20 H20)", **medians,
                     "ratio": medians["rnncount"] / medians["torch.nn"], "bound": 1.0,
                     "note": "rnncount's GRU is reset-before (the counting default), torch.nn.GRU reset-after"})
    return rows


def timed_process(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def target_2(repeats: int) -> list[dict]:
    """The whole main job in a fresh process, the two cells trained at once (--jobs 2): rnncount compare compiled
    (empty and warm compile cache) and eager, vs the reference."""
    cli = [sys.executable, "-m", "rnncount", "compare", "--cells", "lstm,gru", "--jobs", "2", "--force"]
    reference = [sys.executable, str(HERE / "reference_loop.py")]
    times = {"cold": [], "warm": [], "eager": [], "reference": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            cache = Path(scratch) / f"cache{repeat}"  # a new, empty compile cache for each cold run
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
            out = ["--out", str(Path(scratch) / "out")]
            times["cold"].append(timed_process(cli + ["--compile"] + out, env))
            times["warm"].append(timed_process(cli + ["--compile"] + out, env))
            times["eager"].append(timed_process(cli + out, env))
            times["reference"].append(timed_process(reference, dict(os.environ)))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return [{"target": 2, "case": f"compare lstm,gru --jobs 2, {case}", "rnncount": medians[key],
             "reference": medians["reference"], "ratio": medians[key] / medians["reference"], "bound": bound}
            for key, case, bound in (("cold", "--compile, empty compile cache", 0.25),
                                     ("warm", "--compile, warm compile cache", 0.1),
                                     ("eager", "eager (no --compile)", 0.1))]


def target_3(repeats: int) -> list[dict]:
    rows = []
    for (batch, steps, hidden), bound in SHAPES_3:
        torch.set_num_threads(threads_for(hidden))
        x = torch.randn(batch, steps, 1)
        for cell in ("lstm", "gru"):
            candidates = layers(cell, 1, hidden)
            seconds = interleaved({name: training_step(layer, x) for name, layer in candidates.items()}, repeats)
            rows.append({"target": 3, "case": f"{cell} fwd+bwd B{batch} T{steps} H{hidden}", **seconds,
                         "ratio": seconds["rnncount"] / seconds["torch.nn"], "bound": bound})
    return rows


def target_4(repeats: int) -> list[dict]:
    batch, steps, hidden = SHAPE_4
    torch.set_num_threads(threads_for(hidden))
    x, rows = torch.randn(batch, steps, 1), []
    for cell in ("lstm", "gru"):
        seconds = interleaved({name: inference(layer, x) for name, layer in layers(cell, 1, hidden).items()}, repeats)
        rows.append({"target": 4, "case": f"{cell} no-grad B{batch} T{steps} H{hidden}", **seconds,
                     "ratio": seconds["rnncount"] / seconds["torch.nn"], "bound": BOUND_4})
    return rows


def target_5(repeats: int) -> list[dict]:
    rows = []
    for batch, steps, hidden in SHAPES_5:
        torch.set_num_threads(threads_for(hidden))
        x = torch.randn(batch, steps, 1)
        for cell in ("lstm", "gru"):
            candidates = layers(cell, 1, hidden)
            peaks = {name: [peak_memory(training_step(layer, x)) for _ in range(repeats)]
                     for name, layer in candidates.items()}
            if None in peaks["rnncount"]:
                return [{"target": 5, "case": "step memory: needs Linux's /proc/self", "ratio": float("nan"),
                         "bound": BOUND_5}]
            peaks = {name: statistics.median(values) / 2**20 for name, values in peaks.items()}
            rows.append({"target": 5, "case": f"{cell} step memory (MiB) B{batch} T{steps} H{hidden}", **peaks,
                         "ratio": peaks["rnncount"] / peaks["torch.nn"], "bound": BOUND_5})
    return rows


def target_6(repeats: int) -> list[dict]:
    """Issue 8's variants on the same fast path: the layer-normalised LSTM against the plain one, fwd+bwd."""
    torch.set_num_threads(1)
    x, rows = torch.randn(16, 20, 1), []
    plain = rnncount.LSTM(1, 20, batch_first=True).compile_steps()
    normed = rnncount.LSTM(1, 20, batch_first=True, layer_norm=True).compile_steps()
    seconds = interleaved({"rnncount": training_step(normed, x), "plain": training_step(plain, x)}, repeats)
    rows.append({"target": 6, "case": "layernorm-lstm vs lstm (both rnncount, compiled) fwd+bwd B16 T20 H20",
                 "rnncount": seconds["rnncount"], "torch.nn": seconds["plain"],
                 "ratio": seconds["rnncount"] / seconds["plain"], "bound": float("inf"),
                 "note": "the torch.nn column holds rnncount's plain LSTM; the ratio is the cost of layer norm"})
    return rows


class LogSpaceMinGRU(nn.Module):
    """A MinGRU's cell through Heinsen's log-space scan (rnncount.parallel.log_space_scan), the textbook form."""

    def __init__(self, layer: rnncount.MinGRU):
        super().__init__()
        self.layer = layer

    def forward(self, x):  # (B, T, I)
        cell, weights = self.layer.cells[0], self.layer.cell_weights(0)  # the layer holds the parameters
        a, b = cell.coefficients(*cell.gate_inputs(x.transpose(0, 1), weights))  # (T, B, H) each
        h = log_space_scan(a, b, a.new_zeros(a.shape[1:]))
        return h.transpose(0, 1), h[-1]


def target_7(repeats: int) -> list[dict]:
    """Issue 14: minGRU and minLSTM (parallel chunked scan) against rnncount's sequential LSTM (the eager step loop),
    fwd+bwd at the same sizes, eager and with compiled gates; and minGRU through the log-space scan, for comparison."""
    torch.set_num_threads(1)
    rows = []
    for (batch, steps, hidden), bound in SHAPES_7:
        x = torch.randn(batch, steps, 1)
        mingru = rnncount.MinGRU(1, hidden, batch_first=True)
        minlstm = rnncount.MinLSTM(1, hidden, batch_first=True)
        candidates = {"lstm": rnncount.LSTM(1, hidden, batch_first=True), "mingru": mingru, "minlstm": minlstm,
                      "mingru, compiled gates": rnncount.MinGRU(1, hidden, batch_first=True).compile_steps(),
                      "minlstm, compiled gates": rnncount.MinLSTM(1, hidden, batch_first=True).compile_steps(),
                      "mingru, log-space scan": LogSpaceMinGRU(mingru)}
        cold = {}
        for name in ("mingru, compiled gates", "minlstm, compiled gates"):  # the first call compiles (this shape)
            start = time.perf_counter()
            training_step(candidates[name], x)()
            cold[name] = time.perf_counter() - start
        seconds = interleaved({name: training_step(layer, x) for name, layer in candidates.items()}, repeats)
        for name in list(candidates)[1:]:
            note = "the torch.nn column holds rnncount's LSTM, eager (the sequential step loop)"
            rows.append({"target": 7, "case": f"{name} vs sequential lstm, fwd+bwd B{batch} T{steps} H{hidden}",
                         "rnncount": seconds[name], "torch.nn": seconds["lstm"],
                         "ratio": seconds[name] / seconds["lstm"],
                         "bound": bound if "log-space" not in name else float("inf"),
                         "note": note + (f"; first call (compiling) {cold[name]:.1f} s" if name in cold else "")})
    rows += target_7_epochs(repeats)
    return rows


def target_7_epochs(repeats: int) -> list[dict]:
    """The same at T=1000 as the issue states it, per training epoch: rnncount's Trainer (the model's head, the
    loss, Adam, the checks, a test pass) over 320 sequences (20 batches of 16) and 16 test sequences. Each cell
    with the threads the CLI gives it (rnncount.runs.default_threads: the LSTM one, the parallel cells every usable
    CPU, where their whole-sequence ops split), and the parallel cells also on one thread."""
    # compiled code keeps the thread count it was compiled under (one, in target_7's layer rows): compile again, as
    # the CLI does, under the run's threads (the first call of each compiled trainer below is its default row's)
    torch._dynamo.reset()
    config = TrainConfig(length=1000, train_samples=320, test_samples=16, epochs=10_000)
    trainers = {"lstm": Trainer(ModelConfig(cell="lstm"), config)}
    for cell in ("mingru", "minlstm"):
        trainers[cell] = Trainer(ModelConfig(cell=cell), config)
        trainers[f"{cell}, compiled gates"] = Trainer(ModelConfig(cell=cell), config, compile=True)
    epochs = {}
    for name, trainer in trainers.items():
        cell = trainer.model_config.cell
        default = default_threads(cell, trainer.model_config.hidden_size)  # as `rnncount train --cell CELL` sets
        label = name if cell == "lstm" else f"{name}, {default} thread{'s' * (default > 1)} (the CLI's default)"
        epochs[label] = with_threads(default, trainer.train_epoch)
        if cell != "lstm" and default > 1:
            epochs[f"{name}, 1 thread"] = with_threads(1, trainer.train_epoch)
    seconds = interleaved(epochs, repeats, budget=0)
    return [{"target": 7, "case": f"{name} vs sequential lstm, training epoch T1000 (320 sequences, B16 H20)",
             "rnncount": seconds[name], "torch.nn": seconds["lstm"], "ratio": seconds[name] / seconds["lstm"],
             "bound": 1 / 30, "note": "the torch.nn column holds rnncount's LSTM, eager, one thread (its CLI "
                                      "default); Trainer.train_epoch"}
            for name in list(epochs)[1:]]


def with_threads(count: int, function):
    """function run with `count` threads, the thread count restored after it."""
    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            return function()
        finally:
            torch.set_num_threads(before)
    return run


TARGETS = {1: target_1, 2: target_2, 3: target_3, 4: target_4, 5: target_5, 6: target_6, 7: target_7}


def table(rows: list[dict]) -> str:
    def cell(value, unit):
        if value is None:
            return ""
        return f"{value:.1f}" if unit == "MiB" else f"{value:.3g} s" if value >= 1 else f"{value * 1e3:.3g} ms"
    lines = ["| target | case | rnncount | torch.nn | reference loop | ratio | bound | met |", "|---" * 8 + "|"]
    for row in rows:
        unit = "MiB" if row["target"] == 5 else "s"
        lines.append(f"| {row['target']} | {row['case']} | {cell(row.get('rnncount'), unit)} | "
                     f"{cell(row.get('torch.nn'), unit)} | {cell(row.get('reference'), unit)} | {row['ratio']:.3g} | "
                     f"<= {row['bound']:.3g} | {'yes' if row['ratio'] <= row['bound'] else 'no'} |")
    return "\n".join(lines)


def cpu_name() -> str:
    """The processor's model name where Linux says it, else the architecture; then the vector instructions torch's
    kernels use on it (the same model name has come with AVX-512 on one host and AVX2 on another, 2x apart)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


def earlier_rows(path: Path, numbers: list[int]) -> list[dict]:
    """The rows of the other targets in an earlier results file at path, each with the machine and repeats of the
    run that measured it, so that running some targets keeps the others' last results; [] where there is none."""
    if not path.exists():
        return []
    try:
        earlier = json.loads(path.read_text())
        return [{"machine": earlier["machine"], "repeats": earlier["repeats"]} | row
                for row in earlier["rows"] if row["target"] not in numbers]
    except (ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"{path}: not a results file of this script ({type(error).__name__}: {error}); "
                         "give another --out") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="1,2,3,4,5,6,7",
                        help="comma-separated: 1..5 are issue 4's, 6 the layer-normalised LSTM against the plain one, "
                             "7 minGRU and minLSTM (parallel scan) against the sequential LSTM")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per number; the median is kept (3)")
    parser.add_argument("--job-repeats", type=int, default=3,
                        help="runs of target 2's whole jobs; the median is kept (3; each repeat takes minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    keep_freed_memory()  # the allocator setting the rnncount command runs with, for both sides of every ratio
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(),
               "torch": torch.__version__, "python": platform.python_version(),
               "load_before": os.getloadavg()}
    numbers = [int(t) for t in args.targets.split(",")]
    kept = earlier_rows(args.out, numbers)  # read first: an unreadable file stops the run before it starts
    rows = []
    for number in numbers:
        print(f"target {number} ...", file=sys.stderr, flush=True)
        rows += TARGETS[number](args.job_repeats if number == 2 else args.repeats)
        print(table(rows), file=sys.stderr, flush=True)  # so far, in case the run is cut short
        machine["load_after"] = os.getloadavg()
        args.out.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": kept + rows},
                                       indent=2) + "\n")
    print(table(rows))
    print(f"\n{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, load average before "
          f"{machine['load_before'][0]:.2f}, after {machine['load_after'][0]:.2f}; median of {args.repeats} "
          f"(target 2: of {args.job_repeats})")


if __name__ == "__main__":
    main()
