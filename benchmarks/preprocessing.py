"""Preprocessing throughput: seconds of recording processed per wall-clock second.

Four simulated 306-channel MEG recordings of 10 minutes each (OSL-ephys's MEGIN model) go
through a standard pipeline (read, band-pass 1-45 Hz, notch 50 Hz, resample to 100 Hz, bad
channels, robust normalisation, clipping), first in this process (1 worker), then on a local
pool of 2 worker processes, into fresh folders each time. The ratio is measured in this run.

Run: ``.venv/bin/python benchmarks/preprocessing.py [--workdir DIR] [--minutes M] [--n N]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _simulated import simulated_raw  # noqa: E402

from ephys_data.pipeline import preprocess  # noqa: E402

STAGES = [
    {"name": "read"},
    {"name": "bandpass", "params": {"l_freq": 1.0, "h_freq": 45.0}},
    {"name": "notch", "params": {"freqs": [50.0]}},
    {"name": "resample", "params": {"sfreq": 100.0}},
    {"name": "bad_channels"},
    {"name": "normalize"},
    {"name": "clip", "params": {"k": 5.0}},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ephys-benchmarks"
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--n", type=int, default=4)
    args = parser.parse_args()
    raw = simulated_raw(args.workdir / f"raw-{args.n}x{args.minutes:g}min", args.n, args.minutes)
    recorded = args.n * args.minutes * 60
    print(f"{args.n} recordings x {args.minutes:g} min of 306-channel MEG at 150 Hz")
    rates = {}
    for workers in (1, 2):
        out = args.workdir / f"preprocessed-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        summary = preprocess(
            {"name": "folder", "params": {"root": str(raw)}}, STAGES, out, workers=workers
        )
        wall = time.perf_counter() - start
        assert summary.count("done") == args.n, summary.results
        rates[workers] = recorded / wall
        print(f"workers={workers}: {wall:6.1f} s wall, {rates[workers]:6.1f} s of recording per s")
    print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
