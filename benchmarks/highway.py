"""What the linear highway costs a training step, for the benchmark's model sizes.

For each model of the forecasting benchmark's ``standard`` budget, time full float32
training steps (forward, backward, AdamW) with the VAR(32) highway the budget configures and
without it (``highway: none``), on random mu-law tokens shaped like the benchmark's batches
(16 x 16 channels x 100 steps). The two variants alternate over several rounds, so a change in
the machine's load hits both; the median of the rounds is reported, with the ratio.

Run: ``.venv/bin/python benchmarks/highway.py [--steps N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import statistics

from precision import BATCH, CHANNELS, STEPS, step_time

from ephys_eval.bench.protocol import BUDGETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per measurement.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating A/B rounds.")
    args = parser.parse_args()
    tokens = BATCH * CHANNELS * STEPS
    print(f"{'model':<12}{'without ms':>12}{'with ms':>10}{'with / without':>16}")
    for name, params in BUDGETS["standard"].models.items():
        plain = {**params, "highway": "none"}
        without, with_ = [], []
        for _ in range(args.rounds):
            without.append(step_time(name, plain, False, args.steps))
            with_.append(step_time(name, params, False, args.steps))
        a, b = statistics.median(without), statistics.median(with_)
        print(f"{name:<12}{1e3 * a:>12.1f}{1e3 * b:>10.1f}{b / a:>16.3f}")
    print(f"({tokens} tokens per step)")


if __name__ == "__main__":
    main()
