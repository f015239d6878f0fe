"""The reference implementation of the counting experiment, as /work/shared/SEED-SPEC.md describes it: cells made
of nn.Linear maps, a model that walks the sequence one element at a time, a DataLoader, Adam, MSE.

It is the baseline of benchmark target 2 (rnncount's whole main job against this). Nothing of rnncount is used.

    python benchmarks/reference_loop.py                 # both cells, 10 epochs each, prints the reference's lines
    python benchmarks/reference_loop.py --cells gru --epochs 1
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.x2h = nn.Linear(input_size, 4 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size)
        bound = math.sqrt(3 / hidden_size)  # the reference's initialisation: every weight and bias U(-b, b)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = (self.x2h(x) + self.h2h(h)).chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        return o * torch.tanh(c), c


class GRUCell(nn.Module):
    """Reset-before form (Cho et al. 2014), six nn.Linear maps with their default initialisation."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.xz, self.xr, self.xn = (nn.Linear(input_size, hidden_size) for _ in range(3))
        self.hz, self.hr, self.hn = (nn.Linear(hidden_size, hidden_size) for _ in range(3))

    def forward(self, x, h):
        z = torch.sigmoid(self.xz(x) + self.hz(h))
        r = torch.sigmoid(self.xr(x) + self.hr(h))
        n = torch.tanh(self.xn(x) + self.hn(r * h))
        return z * h + (1 - z) * n


class Counter(nn.Module):
    def __init__(self, cell: str, hidden_size: int = 20):
        super().__init__()
        self.kind, self.hidden_size = cell, hidden_size
        self.cell = LSTMCell(1, hidden_size) if cell == "lstm" else GRUCell(1, hidden_size)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x):  # (B, L, 1) -> (B,)
        h = x.new_zeros(x.size(0), self.hidden_size)
        state = (h, h.clone()) if self.kind == "lstm" else h
        for t in range(x.size(1)):
            state = self.cell(x[:, t], state)
        return self.fc(state[0] if self.kind == "lstm" else state).squeeze(-1)


def make_data(samples: int, length: int, generator: torch.Generator) -> TensorDataset:
    """k uniform in {0..L-1}, a = k/L, each element 0 with probability a, 1 with probability 1 - a."""
    a = torch.randint(0, length, (samples, 1), generator=generator) / length
    x = (torch.rand(samples, length, generator=generator) >= a).float()
    return TensorDataset(x.unsqueeze(-1), x.sum(1))


def run(cell: str, epochs: int = 10, seed: int = 0, quiet: bool = False) -> dict:
    """Train one cell with the reference settings; return its time and final test metrics."""
    generator = torch.Generator().manual_seed(seed)
    train, test = make_data(10_000, 20, generator), make_data(1_000, 20, generator)
    torch.manual_seed(seed)
    model = Counter(cell)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train, batch_size=16, shuffle=True)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total = correct = 0.0
        for x, y in loader:
            optimizer.zero_grad()
            out = model(x)
            loss = nn.functional.mse_loss(out, y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            correct += (out.round() == y).sum().item()
        model.eval()
        with torch.no_grad():
            x, y = test.tensors
            out = model(x)
            test_loss, test_accuracy = nn.functional.mse_loss(out, y).item(), (out.round() == y).float().mean().item()
        if not quiet:
            print(f"Epoch {epoch}/{epochs}\nTrain Loss: {total / len(train):.4f}; Accuracy: {correct / len(train):.4f}\n"
                  f"Test Loss: {test_loss:.4f}; Accuracy: {test_accuracy:.4f}", flush=True)
    return {"cell": cell, "seconds": time.perf_counter() - start, "test_loss": test_loss,
            "test_accuracy": test_accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for cell in args.cells.split(","):
        print(f"== {cell} ==")
        result = run(cell, args.epochs, args.seed)
        print(f"{cell}: {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
