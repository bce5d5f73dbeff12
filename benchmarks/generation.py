"""Per-step generation time of the token models, with and without their cache.

For gpt2meg, stgpt2meg and wavenet (small models sized for a CPU), generate rollouts of
128 ... 2048 steps after a 64-step context with ``forecast(use_cache=True)`` and
``forecast(use_cache=False)`` (re-running the model on the whole window every step), and print
the mean time per generated step and the uncached/cached ratio, all measured in this process.

Times are taken between consecutive sampled steps, so the rare re-fills of a sliding window are
included in the mean and the median shows a typical step.

The transformers attend to at most ``--window`` steps (512): rollouts that fit in it show the
uncached cost growing with the window, longer ones slide it. The cached cost per step should
stay flat for every length.

Run: ``.venv/bin/python benchmarks/generation.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from ephys_models import generation  # noqa: E402
from ephys_models.generation import Sampler  # noqa: E402
from ephys_models.gpt2meg import GPT2MEG  # noqa: E402
from ephys_models.stgpt2meg import STGPT2MEG  # noqa: E402
from ephys_models.wavenet import WaveNet  # noqa: E402

CHANNELS, VOCAB, CONTEXT = 8, 256, 64


def models(window: int) -> dict[str, torch.nn.Module]:
    common = {"n_channels": CHANNELS, "vocab_size": VOCAB, "dropout": 0.0}
    transformer = {"d_model": 64, "n_layers": 2, "n_heads": 4, "context_length": window}
    return {
        "gpt2meg": GPT2MEG(GPT2MEG.Config(**common, **transformer)),
        "stgpt2meg": STGPT2MEG(STGPT2MEG.Config(**common, **transformer)),
        "wavenet": WaveNet(
            WaveNet.Config(
                **common,
                embedding_dim=4,
                residual_channels=32,
                gate_channels=32,
                skip_channels=64,
                head_channels=64,
                dilations=[2**i for i in range(7)] * 2,  # receptive field 255
            )
        ),
    }


class StepClock:
    """Records when the generation loop samples each token (it calls ``generation.sample``
    once per step), giving the time of every step, re-filled windows included."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self._sample = generation.sample

    def __enter__(self) -> StepClock:
        def timed(*args, **kwargs):
            out = self._sample(*args, **kwargs)
            self.stamps.append(time.perf_counter())
            return out

        generation.sample = timed
        return self

    def __exit__(self, *exc) -> None:
        generation.sample = self._sample


def per_step_ms(model: torch.nn.Module, n_steps: int, use_cache: bool) -> tuple[float, float]:
    """Mean and median milliseconds per generated step (the first step, which includes the
    prefill of the context, is left out)."""
    gen = torch.Generator().manual_seed(0)
    context = torch.randint(0, VOCAB, (1, CHANNELS, CONTEXT), generator=gen)
    with StepClock() as clock:
        model.forecast(context, n_steps, sampler=Sampler(strategy="argmax"), use_cache=use_cache)
    steps = [1000 * (b - a) for a, b in zip(clock.stamps, clock.stamps[1:], strict=False)]
    return statistics.fmean(steps), statistics.median(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument(
        "--window", type=int, default=512, help="context_length of the transformers"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--models", nargs="+", default=["gpt2meg", "stgpt2meg", "wavenet"])
    parser.add_argument("--quick", action="store_true", help="short rollouts only (smoke test)")
    args = parser.parse_args()
    lengths = [16, 32] if args.quick else args.lengths

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"B=1, C={CHANNELS}, V={VOCAB}, context {CONTEXT} steps, argmax"
    )
    built = models(args.window)
    for name, model in built.items():
        if name in args.models:
            model.eval()
            size = sum(p.numel() for p in model.parameters())
            print(f"# {name}: {size / 1e3:.0f} k parameters, window {model.max_context} steps")
            per_step_ms(model, 8, True)  # warm-up
    print()
    print(
        "| model | steps | cached ms/step (mean / median) | uncached ms/step (mean / median) "
        "| uncached / cached (means) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in args.models:
        model = built[name]
        for n in lengths:
            cached = per_step_ms(model, n, True)
            uncached = per_step_ms(model, n, False)
            print(
                f"| {name} | {n} | {cached[0]:.2f} / {cached[1]:.2f} "
                f"| {uncached[0]:.2f} / {uncached[1]:.2f} | {uncached[0] / cached[0]:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
