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


GENERALIZATION_SIZE = (800, 500)  # pixels of the accuracy-against-length figure (8 x 5 inches at 100 dpi)


def save_generalization(results: dict[str, list[dict]], path: Path, trained_length: int | None = None) -> None:
    """Exact-count accuracy against sequence length (log scale), one line per model; `results` maps a label to
    rows {"length", "accuracy", ...} (rnncount.generalize)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(GENERALIZATION_SIZE[0] / 100, GENERALIZATION_SIZE[1] / 100),
                                constrained_layout=True)
    many = len(results) > 10  # more lines than tab10 has colours: tab20's, and the line styles in turn
    colors = plt.get_cmap("tab20" if many else "tab10").colors
    styles = ("-", "--", ":") if many else ("-",)
    for index, (label, rows) in enumerate(results.items()):
        axes.plot([r["length"] for r in rows], [r["accuracy"] for r in rows], marker="o", label=label,
                  color=colors[index % len(colors)], linestyle=styles[index % len(styles)])
    if trained_length is not None:
        axes.axvline(trained_length, color="grey", linestyle=":", label=f"training length {trained_length}")
    axes.set(xscale="log", xlabel="sequence length", ylabel="exact-count accuracy", ylim=(-0.02, 1.02),
             title="Counting beyond the training length")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small" if len(results) > 6 else None)
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=100))
    plt.close(figure)


INSPECT_SIZE = (1200, 800)  # pixels of the inspect figure (12 x 8 inches at 100 dpi)


def save_inspection(trace, best, path: Path, title: str = "") -> None:
    """Every unit's h_t and c_t over the sequence (heatmaps above, lines below), the best counting unit drawn
    thick and named; the running count on a second axis. `trace`, `best`: rnncount.inspection's."""
    plt = _pyplot()
    states = [("h", trace.hidden)] + ([("c", trace.cell)] if trace.cell is not None else [])
    figure, axes = plt.subplots(2, 2, figsize=(INSPECT_SIZE[0] / 100, INSPECT_SIZE[1] / 100),
                                constrained_layout=True, squeeze=False)
    steps = range(1, len(trace.count) + 1)
    for column in range(2):
        if column >= len(states):
            for row in range(2):
                axes[row][column].axis("off")
            axes[0][column].text(0.5, 0.5, "no cell state (only the LSTM has one)", ha="center", va="center")
            continue
        name, values = states[column]
        heat = axes[0][column].imshow(values.T.numpy(), aspect="auto", cmap="coolwarm", interpolation="nearest",
                                      extent=(0.5, len(trace.count) + 0.5, values.size(1) - 0.5, -0.5))
        figure.colorbar(heat, ax=axes[0][column])
        axes[0][column].set(xlabel="step t", ylabel="unit", title=f"{name}_t of every unit")
        axes[0][column].yaxis.get_major_locator().set_params(integer=True)
        lines = axes[1][column]
        for unit in range(values.size(1)):
            marked = best is not None and best.state == name and best.unit == unit
            lines.plot(steps, values[:, unit].numpy(), linewidth=2.5 if marked else 0.8, alpha=1 if marked else 0.5,
                       color="black" if marked else None, zorder=3 if marked else 2,
                       label=f"unit {unit}: r = {best.correlation:.6f}" if marked else None)
            if marked:
                axes[0][column].axhline(unit, color="black", linewidth=1)
        count_axes = lines.twinx()
        count_axes.plot(steps, trace.count.numpy(), color="green", linestyle="--", label="running count")
        count_axes.set_ylabel("running count", color="green")
        lines.set(xlabel="step t", ylabel=name, title=f"{name}_t over the sequence")
        handles = lines.get_legend_handles_labels()[0] + count_axes.get_legend_handles_labels()[0]
        lines.legend(handles=handles, loc="upper left", fontsize="small")
    sequence = trace.sequence if len(trace.sequence) <= 80 else trace.sequence[:77] + "..."
    figure.suptitle((title + "\n" if title else "") + sequence, fontsize="medium")
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=100))
    plt.close(figure)
