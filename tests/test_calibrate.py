"""The calibration script's rule and its verdict memory (benchmarks/calibrate.py)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import calibrate  # noqa: E402


def row(bits, recall, precision=1.0, flag_false_pairs=0, removed_wrongly=0, lost=0):
    return {"bits": bits, "recall": recall, "precision": precision, "flag_false_pairs": flag_false_pairs,
            "removed_wrongly": removed_wrongly, "lost": lost}


def test_the_default_is_the_smallest_threshold_reaching_the_recall_target():
    rows = [row(10, 0.96), row(12, 0.979), row(14, 0.9813), row(15, 0.9813), row(16, 0.985)]
    assert calibrate.choose(rows) == 14


def test_unacceptable_thresholds_are_skipped_and_a_lower_best_recall_is_taken():
    rows = [row(6, 0.95), row(8, 0.97), row(9, 0.99, precision=0.99), row(10, 0.99, flag_false_pairs=21),
            row(11, 0.99, removed_wrongly=1), row(12, 0.99, lost=1)]
    assert calibrate.choose(rows) == 8


def test_verdicts_are_remembered_per_pair_of_signatures():
    calls = []

    def decide(colour_a, colour_b, settings):
        calls.append(len(colour_a))
        return colour_a[:, 0] != colour_b[:, 0]

    remembered = calibrate.RememberedVerdicts(decide)
    signatures = np.array([[1, 2], [1, 3], [5, 2]], dtype=np.uint8)
    first, second = signatures[[0, 0, 1]], signatures[[1, 2, 2]]
    expected = decide(first, second, None)
    calls.clear()
    assert remembered(first, second, None).tolist() == expected.tolist()
    assert remembered(first, second, None).tolist() == expected.tolist()
    assert remembered(signatures[[2]], signatures[[1]], None).tolist() == [True]
    assert calls == [3, 1]  # the repeated pairs were not decided again
