"""What the access log and the metrics cost: the metadata and download phases with the server's
defaults (log level info, an access line per request, request metrics) and with both off,
interleaved run by run, the order flipped every run (ABBA: a drift of the machine during the
measurement weighs on both alike), printed side by side.

    .venv/bin/python -m bench.overhead [--runs N]

Each row gives the median over the runs of each setting and the smallest, median and largest
per-run ratio (defaults ÷ off): 1.00 costs nothing, 0.95 is a 5% cost on a rate. docs are not
written; the figures go into docs/performance.md by hand, with this command.
"""

import argparse
import statistics
from collections.abc import Callable

from bench import common, download, metadata
from bench.common import OUT, MiB, Row, ensure_tools, make_source_file

DEFAULTS = {"log_level": "info"}  # access_log and metrics are on by default
OFF = {"log_level": "info", "access_log": "false", "metrics": "false"}
SETTINGS = {"defaults": DEFAULTS, "off": OFF}


def measured_rows(phases: list[Callable[[], list[Row]]], settings: dict[str, str]) -> dict[str, float]:
    """Each rate and latency row's value (RSS rows left out) with `settings` on every server."""
    common.SERVER_SETTINGS.clear()
    common.SERVER_SETTINGS.update(settings)
    rows = [row for phase in phases for row in phase()]
    return {row.measurement: row.value for row in rows if not row.measurement.startswith("peak RSS")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ensure_tools()
    source = make_source_file(OUT / "source-256.bin", 256 * MiB)
    phases = [metadata.run_sqlite, metadata.run_postgres, lambda: download.run(source)]
    values: dict[str, dict[str, list[float]]] = {name: {} for name in SETTINGS}
    for run in range(args.runs):
        order = list(SETTINGS.items()) if run % 2 == 0 else list(reversed(SETTINGS.items()))
        for name, settings in order:
            print(f"run {run + 1}/{args.runs}: {name}", flush=True)
            for measurement, value in measured_rows(phases, settings).items():
                values[name].setdefault(measurement, []).append(value)
    print("| measurement | defaults (median) | off (median) | defaults ÷ off, per run: min / median / max |")
    print("|---|---|---|---|")
    for measurement, on in values["defaults"].items():
        off = values["off"][measurement]
        ratios = [a / b for a, b in zip(on, off, strict=True) if b]
        print(
            f"| {measurement} | {statistics.median(on):,.2f} | {statistics.median(off):,.2f}"
            f" | {min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f} |"
        )


if __name__ == "__main__":
    main()
