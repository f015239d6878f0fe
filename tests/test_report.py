"""rnncount.report: the one table renderer, and the tables and files each command's report makes of its runs."""

import json

from rnncount.report import (comparison_table, lengths_table, markdown_table, report_sweep, run_ended, seeds_table,
                             sweep_table)


def epoch(number, accuracy, loss=0.5, seconds=1.0):
    return {"epoch": number, "test_accuracy": accuracy, "test_loss": loss, "seconds": seconds}


def test_markdown_table_is_header_rule_rows():
    assert markdown_table(["a", "b"], [["1", ""], ["x", "y"]]) == "| a | b |\n|---|---|\n| 1 |  |\n| x | y |"
    assert markdown_table(["only"], []) == "| only |\n|---|"


def test_comparison_table_written_out_by_hand():
    histories = {"lstm": [epoch(1, 0.5, seconds=2.0), epoch(2, 1.0, 0.01, 4.0)], "gru": [epoch(1, 0.25, 0.75, 3.0)]}
    lengths = {"lstm": [{"length": 40, "accuracy": 0.9}], "gru": [{"length": 40, "accuracy": 0.125}]}
    assert comparison_table(histories, lengths) == "\n".join([
        "| epoch | lstm | gru |",
        "|---|---|---|",
        "| 1 | 0.500 | 0.250 |",
        "| 2 | 1.000 |  |",
        "| first epoch at 100% | 2 | never |",
        "| final test loss | 0.0100 | 0.7500 |",
        "| time (s) | 6.0 | 3.0 |",
        "| time per epoch (s) | 3.0 | 3.0 |",
        "| accuracy at length 40 | 0.900 | 0.125 |"])


def test_seeds_table_written_out_by_hand():
    histories = {"lstm": [[epoch(1, 0.5), epoch(2, 1.0, 0.25)], [epoch(1, 0.75), epoch(2, 0.5, 0.5)],
                          [epoch(1, 1.0), epoch(2, 1.0, 0.125)]]}
    table = seeds_table(histories, {"lstm": ["seed 1"]}, {"lstm": 12.34})
    assert table == "\n".join([
        "| epoch | lstm (3 seeds: min / median / max) |",
        "|---|---|",
        "| 1 | 0.500 / 0.750 / 1.000 |",
        "| 2 | 0.500 / 1.000 / 1.000 |",
        "| first epoch at 100% | never on some seeds: 2, -, 1 |",
        "| runs reaching 100% | 2/3 |",
        "| final test loss | 0.1250 / 0.2500 / 0.5000 |",
        "| diverged | seed 1 |",
        "| wall time of the stack (s) | 12.3 |"])


def test_sweep_table_csv_and_run_lines(tmp_path):
    row = {"cell": "gru", "hidden_size": 4, "length": 20, "runs": 2, "accuracy_mean": 0.5, "accuracy_min": 0.25,
           "accuracy_max": 0.75, "reached_100": 1, "first_100_mean": 3.0, "first_100_min": 3, "first_100_max": 3,
           "seconds_mean": 1.25}
    assert sweep_table([row]).splitlines()[2] == "| gru | 4 | 20 | 2 | 0.500 (0.250-0.750) | 1/2 | 3.0 (3-3) | 1.2 |"
    printout = report_sweep([row], tmp_path)
    assert (tmp_path / "summary.md").read_text() == sweep_table([row]) + "\n"
    assert (tmp_path / "summary.csv").read_text().splitlines()[1].startswith("gru,4,20,2,0.5,0.25,0.75,1,3.0,3,3,")
    assert printout.text.endswith(f"each run to {tmp_path}/RUN/") and not printout.notes
    assert run_ended("r", {"error": "diverged"}, None) == "r: diverged"
    assert run_ended("r", {"error": None}, [epoch(1, 1.0, seconds=0.5)]) == (
        "r: test accuracy 1.000, first epoch at 100%: 1, 0.5 s")


def test_lengths_table_with_and_without_loss():
    rows = [{"length": 20, "accuracy": 1.0, "mae": 0.0001234, "loss": 0.00001}]
    assert lengths_table(rows) == "| length | accuracy | MAE | loss |\n|---|---|---|---|\n| 20 | 1.000 | 0.000 | 1e-05 |"
    assert lengths_table(rows, loss=False, mae=".3g").splitlines()[2] == "| 20 | 1.000 | 0.000123 |"
    assert json.dumps(rows)  # rows stay plain values for the JSON
