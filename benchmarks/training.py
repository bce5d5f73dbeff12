"""Training throughput of the three first models, and how much of this CPU it uses.

For gpt2meg, stgpt2meg and wavenet at small CPU-sized configurations, time full training steps
(forward, backward, AdamW update) on random mu-law tokens shaped like the quickstart's data
(batch 8, 16 channels, 100 time steps, 256 codes) and report tokens/s (a token is one channel
at one time step). The floating-point work of a step is counted with
``torch.utils.flop_counter.FlopCounterMode`` and divided by the time, and compared with this
machine's float32 matrix-multiplication peak, measured in the same process with large
``torch.mm`` calls.

Run: ``.venv/bin/python benchmarks/training.py [--steps N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ephys_core import get_registry  # noqa: E402

BATCH, CHANNELS, STEPS, VOCAB = 8, 16, 100, 256
CONFIGS = {
    "gpt2meg": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context_length": 128},
    "stgpt2meg": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context_length": 128},
    "wavenet": {},
}


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """float32 GFLOP/s of large matrix products on this CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def step_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    loss_fn = torch.nn.CrossEntropyLoss()
    with FlopCounterMode(display=False) as counter:
        logits = model(x)
        loss_fn(logits.reshape(-1, VOCAB), y.reshape(-1)).backward()
    model.zero_grad()
    return counter.get_total_flops()


def throughput(name: str, steps: int) -> dict[str, float]:
    params = {"n_channels": CHANNELS, "vocab_size": VOCAB, "dropout": 0.0, **CONFIGS[name]}
    model = get_registry("models").create(name, params).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randint(0, VOCAB, (BATCH, CHANNELS, STEPS))
    y = torch.randint(0, VOCAB, (BATCH, CHANNELS, STEPS))
    flops = step_flops(model, x, y)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            start = time.perf_counter()
        optimizer.zero_grad()
        logits = model(x)
        loss_fn(logits.reshape(-1, VOCAB), y.reshape(-1)).backward()
        optimizer.step()
    elapsed = (time.perf_counter() - start) / steps
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "step_s": elapsed,
        "tokens_per_s": BATCH * CHANNELS * STEPS / elapsed,
        "gflops": flops / elapsed / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 matmul peak "
        f"{peak:.1f} GFLOP/s"
    )
    print(
        f"batch {BATCH} x {CHANNELS} channels x {STEPS} steps = {BATCH * CHANNELS * STEPS} "
        "tokens per training step"
    )
    print(f"{'model':<11}{'params':>9}{'step ms':>9}{'tokens/s':>10}{'GFLOP/s':>9}{'of peak':>9}")
    for name in CONFIGS:
        r = throughput(name, args.steps)
        print(
            f"{name:<11}{r['params'] / 1e3:>8.0f}k{r['step_s'] * 1e3:>9.0f}"
            f"{r['tokens_per_s']:>10.0f}{r['gflops']:>9.2f}{r['gflops'] / peak:>9.1%}"
        )


if __name__ == "__main__":
    main()
