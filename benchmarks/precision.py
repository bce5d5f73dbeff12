"""bf16-mixed against float32 training on this CPU, for the benchmark's model sizes.

For each model of the forecasting benchmark's ``standard`` budget (the code-aware layers
included), time full training steps (forward, backward, AdamW update) on random mu-law
tokens shaped like the benchmark's data (batch 16, 16 channels, 100 time steps, 256 codes) in
float32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``, which is what Lightning's
``precision: bf16-mixed`` does on a CPU, and report tokens/s and the ratio. The float32 and
bf16 matrix-multiplication peaks of the machine are measured in the same process, for
reference (on CPUs with native bf16, ``avx512_bf16``, the bf16 product can be several times
faster).

Run: ``.venv/bin/python benchmarks/precision.py [--steps N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from ephys_core import get_registry  # noqa: E402
from ephys_eval.bench.protocol import BUDGETS  # noqa: E402
from ephys_eval.bench.runner import matmul_peak  # noqa: E402

BATCH, CHANNELS, STEPS, VOCAB = 16, 16, 100, 256


def step_time(name: str, params: dict, bf16: bool, steps: int) -> float:
    torch.manual_seed(0)
    model = (
        get_registry("models")
        .create(name, {**params, "n_channels": CHANNELS, "vocab_size": VOCAB})
        .train()
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, VOCAB, (BATCH, CHANNELS, STEPS))
    y = torch.randint(0, VOCAB, (BATCH, CHANNELS, STEPS))
    context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def one() -> None:
        with context:
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, VOCAB).float(), y.reshape(-1)
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):  # warm-up
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fp32 = matmul_peak(size=2048, dtype="float32")
    bf16 = matmul_peak(size=2048, dtype="bfloat16")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"matmul peak: float32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s ({bf16 / fp32:.2f}x)")
    tokens = BATCH * CHANNELS * STEPS
    header = ("model", "fp32 ms", "bf16 ms", "fp32 tok/s", "bf16 tok/s", "ratio")
    widths = (12, 10, 10, 13, 13, 8)
    print(
        "".join(
            f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for name, params in BUDGETS["standard"].models.items():
        t32 = step_time(name, params, False, args.steps)
        t16 = step_time(name, params, True, args.steps)
        print(
            f"{name:<12}{1e3 * t32:>10.1f}{1e3 * t16:>10.1f}{tokens / t32:>13,.0f}"
            f"{tokens / t16:>13,.0f}{t32 / t16:>8.2f}"
        )


if __name__ == "__main__":
    main()
