"""How `make bench` combines several runs of a phase into one row per measurement."""

import dataclasses
import json

from bench.common import Row, combine_runs, format_table
from bench.run_all import _row


def _runs() -> list[list[Row]]:
    figures = [(100.0, 200.0, 200.0), (120.0, 100.0, 190.0), (110.0, 180.0, 210.0)]
    return [
        [
            Row("upload", value, "MB/s", reference=reference, min_ratio=0.85),
            Row(f"peak RSS, upload (largest process {rss / 2:.0f} MiB)", rss, "MiB", max_value=150),
        ]
        for value, reference, rss in figures
    ]


def test_speed_is_the_median_and_the_ratio_the_median_of_same_run_ratios() -> None:
    speed, _ = combine_runs(_runs())
    assert speed.value == 110.0
    assert speed.reference == 180.0
    # Per run: 0.5, 1.2, 0.611…; the ratio of the medians (0.611) would hide the run-to-run pairing.
    assert speed.ratios == [0.5, 1.2, 110.0 / 180.0]
    assert speed.ratio == 110.0 / 180.0
    assert speed.passed is False


def test_peak_rss_is_the_worst_run_with_its_label() -> None:
    _, rss = combine_runs(_runs())
    assert rss.value == 210.0
    assert rss.measurement == "peak RSS, upload (largest process 105 MiB)"
    assert rss.samples == (200.0, 190.0, 210.0)


def test_table_shows_min_and_max_and_rows_survive_the_report() -> None:
    rows = combine_runs(_runs())
    table = format_table(rows)
    assert "| 110 MB/s (100–120) | 180 MB/s (100–200) | 0.61× (0.50–1.20) | ≥ 0.85× | **FAIL** |" in table
    stored = json.loads(json.dumps([dataclasses.asdict(row) for row in rows]))
    assert [_row(row) for row in stored] == rows
