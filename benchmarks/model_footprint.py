"""What a model configuration will need on a GPU: parameters, training memory and FLOPs.

For each configuration given (default: the GPU configurations in ``examples/configs/gpu``),
build its model on the CPU at the shapes its data section implies and measure, for one
training step at its batch size:

* the parameters, and the memory of weights, gradients and AdamW's two moments (float32
  master weights: 16 bytes a parameter, whatever the autocast precision);
* the activations autograd keeps for the backward pass, measured by a saved-tensor hook on a
  forward pass of one example and scaled to the batch. It is an upper bound for a GPU:
  ``precision: bf16-mixed`` keeps many of them in bf16, and the CPU's attention kernels keep
  the attention probabilities, which a GPU's fused kernels recompute;
* the floating-point operations of forward and backward (``torch.utils.flop_counter``) per
  code, and the training codes/s they allow at a stated fraction of a GPU's dense bf16 peak
  (``--peak-tflops``, default 989 for an H200 SXM; ``--mfu``, default 0.35).

The memory is measured; the tokens/s are an estimate from the FLOPs, not a GPU measurement.

Run: ``.venv/bin/python benchmarks/model_footprint.py [CONFIG ...] [--mfu 0.35]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ephys_core import get_registry  # noqa: E402

GPU_CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs" / "gpu"


#: what each GPU configuration's data gives its model: code rows, vocabulary, RVQ levels and
#: code steps a second (the flagship's brainomni codes: 2 levels x 8 latents at 25 Hz; mu-law
#: on 68 source parcels at 100 Hz)
DATA = {
    "flagship-qwen2_5_vl.yaml": {"rows": 16, "vocab_size": 256, "code_levels": 2, "rate": 25},
    "flatgpt-embeds-rvq.yaml": {"rows": 16, "vocab_size": 256, "code_levels": 2, "rate": 25},
    # channels folded into the batch: one channel's pass is measured and scaled by 68
    "gpt2meg-trf-moe.yaml": {"rows": 68, "vocab_size": 256, "rate": 100, "folded": True},
}


def _shape(path: Path, config: dict) -> tuple[int, int, int, int, dict]:
    """(batch, rows, time steps, vocabulary, model parameters) of a GPU configuration."""
    data = DATA[path.name]
    params = {**config["model"].get("params", {})}
    params.setdefault("n_channels", data["rows"])
    params.setdefault("vocab_size", data["vocab_size"])
    if "code_levels" in data:
        params.setdefault("code_levels", data["code_levels"])
    steps = round(config["data"]["dataset"]["params"]["window_seconds"] * data["rate"])
    return config["data"]["batch_size"], data["rows"], steps, data["vocab_size"], params


def _saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the activations autograd saves for backward in one forward pass: every saved
    storage once, the parameters' own storages (saved as views of the weights) left out."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).float().logsumexp(-1).sum()
    return sum(seen.values())


def footprint(path: Path, mfu: float, peak_tflops: float) -> dict:
    config = yaml.safe_load(path.read_text())
    batch, rows, steps, vocab, params = _shape(path, config)
    name = config["model"]["name"]
    torch.manual_seed(0)
    models = get_registry("models")
    model = models.create(name, params).train()
    n_params = sum(p.numel() for p in model.parameters())
    scale = batch
    if DATA[path.name].get("folded"):  # each channel its own sequence: measure one, scale
        model = models.create(name, {**params, "n_channels": 1}).train()
        scale, rows = batch * rows, 1
    x = torch.randint(0, vocab, (1, rows, steps))
    activations = _saved_bytes(model, x) * scale
    y = torch.randint(0, vocab, (1, rows, steps))
    with FlopCounterMode(display=False) as counter:
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
    flops_per_token = counter.get_total_flops() / (rows * steps)
    return {
        "config": path.name,
        "model": name,
        "params_m": n_params / 1e6,
        "codes_per_example": DATA[path.name]["rows"] * steps,
        "batch": batch,
        "state_gib": 16 * n_params / 2**30,
        "activations_gib": activations / 2**30,
        "gflop_per_code": flops_per_token / 1e9,
        "codes_per_s": mfu * peak_tflops * 1e12 / flops_per_token,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--mfu", type=float, default=0.35, help="Fraction of the peak reached.")
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="Dense bf16 peak of the GPU."
    )
    args = parser.parse_args()
    paths = args.configs or sorted(GPU_CONFIGS.glob("*.yaml"))
    print(
        "| config | model | parameters | codes / example | batch | weights+grads+AdamW | "
        f"activations (fp32, CPU kernels) | GFLOP / code | training codes/s at {args.mfu:.0%} "
        f"of {args.peak_tflops:.0f} TFLOP/s |"
    )
    print("|" + "---|" * 9)
    for path in paths:
        r = footprint(path, args.mfu, args.peak_tflops)
        print(
            f"| {r['config']} | {r['model']} | {r['params_m']:.1f} M | "
            f"{r['codes_per_example']:,} | {r['batch']} | {r['state_gib']:.1f} GiB | "
            f"{r['activations_gib']:.1f} GiB | {r['gflop_per_code']:.2f} | "
            f"{r['codes_per_s']:,.0f} |"
        )


if __name__ == "__main__":
    main()
