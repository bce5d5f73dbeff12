"""Start-up time of the command line, against a bare Python interpreter.

Runs ``python -c pass`` (the baseline), ``ephys --help``, ``ephys plugins`` and
``ephys plugins --json`` several times each in fresh processes (all packages installed) and
prints the median wall time and the difference to the baseline, measured in this run.

Run: ``.venv/bin/python benchmarks/cli_startup.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

EPHYS = str(Path(sys.executable).parent / "ephys")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "ephys --help": [EPHYS, "--help"],
    "ephys plugins": [EPHYS, "plugins"],
    "ephys plugins --json": [EPHYS, "plugins", "--json"],
}


def median_time(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results = {name: median_time(cmd, args.repeats) for name, cmd in COMMANDS.items()}
    base = results["python -c pass"]
    print(f"{'command':<24}{'median s':>10}{'minus python':>14}")
    for name, seconds in results.items():
        print(f"{name:<24}{seconds:>10.3f}{seconds - base:>14.3f}")


if __name__ == "__main__":
    main()
