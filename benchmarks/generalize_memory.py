"""Peak memory and time of scoring at long lengths: rnncount.generalize (chunks of steps, sequences as bits)
against the evaluation it replaced (train.evaluate on counting_data, batches of 200,000 // length sequences).

    python benchmarks/generalize_memory.py [--samples 200] [--lengths 1000,10000,100000]

Each measurement runs in a fresh process (one thread): how far its resident memory grows during the
call (Linux's VmHWM, reset just before), and the seconds it takes. The model is an untrained 20-unit
LSTM read out from c (memory and time do not depend on the weights).
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from rnncount.data import counting_data
from rnncount.generalize import generalization
from rnncount.model import Counter, ModelConfig
from rnncount.train import evaluate
way, length, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = Counter(ModelConfig(readout="c", forget_bias=20.0)).eval()
def status(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024
Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
before, start = status("VmRSS"), time.perf_counter()
if way == "before":
    data = counting_data(samples, length, torch.Generator().manual_seed(12345))
    row = evaluate(model, data, batch_size=max(1, min(1000, 200_000 // length)))
else:
    row = generalization(model, [length], samples)[0]
print(json.dumps({"way": way, "length": length, "samples": samples, "seconds": time.perf_counter() - start,
                  "peak_mb": (status("VmHWM") - before) / 2**20, "accuracy": row["accuracy"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--lengths", default="1000,10000,100000")
    parser.add_argument("--before-up-to", type=int, default=10_000,
                        help="run the old evaluation only up to this length (at 100,000 it takes minutes)")
    args = parser.parse_args()
    print("| evaluation | length | sequences | peak memory growth (MB) | seconds |\n|---|---|---|---|---|")
    for length in map(int, args.lengths.split(",")):
        for way in ("before", "chunks"):
            if way == "before" and length > args.before_up_to:
                continue
            out = subprocess.run([sys.executable, "-c", CHILD, way, str(length), str(args.samples)],
                                 capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1",
                                                                                  "PATH": "/usr/bin:/bin"})
            row = json.loads(out.stdout.splitlines()[-1])
            name = "train.evaluate on counting_data (before)" if way == "before" else "generalize (chunks of 256 steps)"
            print(f"| {name} | {length:,} | {args.samples} | {row['peak_mb']:.0f} | {row['seconds']:.1f} |")


if __name__ == "__main__":
    main()
