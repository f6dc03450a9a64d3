"""The ingest benchmark's arithmetic: a base run that accepted nothing is a failed round."""

from __future__ import annotations

import math

from benchmarks.ingest import Run, round_ratios


def run(accepted: int, refused: int = 0) -> Run:
    return Run(requests=accepted + refused, seconds=1.0, refused=refused, p50_ms=1, p99_ms=2)


def test_each_round_gives_a_ratio_and_the_median_is_reported() -> None:
    figures = round_ratios("ours_vs_noop", [run(90), run(60), run(80)], [run(100)] * 3)
    assert figures == {"ours_vs_noop": 0.8, "ours_vs_noop_low": 0.6, "ours_vs_noop_high": 0.9,
                       "ours_vs_noop_failed": 0.0}  # fmt: skip


def test_a_base_run_that_accepted_nothing_is_a_failed_round_not_a_crash() -> None:
    figures = round_ratios("x", [run(50), run(80)], [run(0, refused=10), run(100)])
    assert figures["x"] == 0.8 and figures["x_failed"] == 1.0


def test_when_every_base_run_failed_there_is_no_ratio() -> None:
    figures = round_ratios("x", [run(50)], [run(0)])
    assert math.isnan(figures["x"]) and figures["x_failed"] == 1.0
