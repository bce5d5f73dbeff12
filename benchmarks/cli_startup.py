"""Start-up time of the command line, against a bare Python interpreter.

Runs ``python -c pass`` (the baseline), ``ephys --help``, ``ephys plugins``,
``ephys plugins --json``, ``ephys config validate`` on an example configuration, and an
``ephys train`` that fails on an unknown model name, several times each in fresh processes (all
packages installed), and prints the median wall time and the difference to the baseline,
measured in this run.

Bytecode is compiled first: with ``PYTHONDONTWRITEBYTECODE`` set (some environments set it)
every run would otherwise recompile every module it imports, which is not what a user's
installation does after its first run.

Run: ``.venv/bin/python benchmarks/cli_startup.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPHYS = str(Path(sys.executable).parent / "ephys")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "configs" / "gpt2meg.yaml"


def commands(folder: Path) -> dict[str, tuple[list[str], int]]:
    """Name -> (command, expected exit status)."""
    unknown = folder / "unknown-model.yaml"
    text = EXAMPLE.read_text().replace("name: gpt2meg\n  params", "name: gpt2mge\n  params")
    unknown.write_text(text)
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], 0),
        "ephys --help": ([EPHYS, "--help"], 0),
        "ephys plugins": ([EPHYS, "plugins"], 0),
        "ephys plugins --json": ([EPHYS, "plugins", "--json"], 0),
        "ephys config validate (example)": ([EPHYS, "config", "validate", str(EXAMPLE)], 0),
        "ephys train (unknown model)": ([EPHYS, "train", str(unknown)], 1),
    }


def median_time(command: list[str], status: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode != status:
            raise SystemExit(f"{command} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import ephys_core

    compileall.compile_path(quiet=2)  # site-packages
    compileall.compile_dir(Path(ephys_core.__file__).parents[3], quiet=2)  # the workspace
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            name: median_time(cmd, status, args.repeats)
            for name, (cmd, status) in commands(Path(tmp)).items()
        }
    base = results["python -c pass"]
    print(f"{'command':<34}{'median s':>10}{'minus python':>14}")
    for name, seconds in results.items():
        print(f"{name:<34}{seconds:>10.3f}{seconds - base:>14.3f}")


if __name__ == "__main__":
    main()
