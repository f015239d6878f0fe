"""Figures, drawn with matplotlib (the `cli` extra) off-screen and saved as PNG."""

from __future__ import annotations

from pathlib import Path

from .files import write_atomically


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'rnncount[cli]'") from None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    return plt


def save_learning_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Test accuracy and test loss against epoch, one line per cell; `histories` maps cell -> epoch dicts."""
    plt = _pyplot()
    figure, (accuracy_axes, loss_axes) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for cell, epochs in histories.items():
        x = [e["epoch"] for e in epochs]
        accuracy_axes.plot(x, [e["test_accuracy"] for e in epochs], marker="o", label=cell)
        loss_axes.plot(x, [e["test_loss"] for e in epochs], marker="o", label=cell)
    accuracy_axes.set(xlabel="epoch", ylabel="test accuracy", ylim=(-0.02, 1.02), title="Exact-count accuracy")
    loss_axes.set(xlabel="epoch", ylabel="test MSE", yscale="log", title="Test loss")
    for axes in (accuracy_axes, loss_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=120))
    plt.close(figure)
