"""Whether the accelerator and devices a configuration asks for exist on this machine.

Lightning finds out only when the trainer is built, after the data and the model; ephys asks
first, so that a run configured for a GPU fails on a laptop in one line before any work.
torch is imported only for accelerators other than the CPU.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ephys_core.config import TrainerSection

__all__ = ["ACCELERATORS", "hardware_problems"]

#: accelerator names Lightning accepts, and what each needs
ACCELERATORS = {
    "auto": "whatever is available",
    "cpu": "the CPU",
    "gpu": "a CUDA (or MPS) device",
    "cuda": "a CUDA device",
    "mps": "Apple's Metal device",
    "tpu": "torch_xla",
    "xla": "torch_xla",
    "hpu": "Habana's habana_frameworks",
}


def _count(devices: Any) -> int | None:
    """Devices a ``devices`` value asks for (``None``: all or automatic)."""
    if isinstance(devices, list):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if text in {"auto", "-1"}:
            return None
        if "," in text:
            return len([p for p in text.split(",") if p.strip()])
        return int(text) if text.lstrip("-").isdigit() else None
    return None if devices == -1 else int(devices)


def _cpu_problems(devices: Any) -> list[str]:
    if isinstance(devices, list) or (isinstance(devices, str) and "," in devices):
        return [
            "trainer.devices: a list of device indices selects GPUs; on the CPU give a number "
            "of processes (e.g. devices: 2) or auto"
        ]
    if isinstance(devices, str) and devices.strip() != "auto" and not devices.strip().isdigit():
        return [f"trainer.devices: {devices!r} is not a number of processes or auto"]
    if isinstance(devices, int) and devices < 1:
        return [f"trainer.devices: the CPU needs at least one process, got {devices}"]
    return []


def _cuda_problems(accelerator: str, devices: Any) -> list[str]:
    import torch

    available = torch.cuda.device_count()
    if available == 0:
        build = f"torch {torch.__version__}" + (
            f" built for CUDA {torch.version.cuda}" if torch.version.cuda else " (a CPU build)"
        )
        return [
            f"trainer.accelerator: {accelerator!r} needs a CUDA device, and this machine has "
            f"none visible to {build}; use accelerator: cpu (or auto)"
        ]
    wanted = _count(devices)
    if isinstance(devices, list) and any(int(i) >= available for i in devices):
        return [f"trainer.devices: GPU indices {devices} asked, {available} available"]
    if wanted is not None and wanted > available:
        return [f"trainer.devices: {wanted} GPUs asked, {available} available"]
    return []


def hardware_problems(trainer: TrainerSection) -> list[str]:
    """Why this machine cannot run the ``trainer`` section's accelerator and devices.

    Returns
    -------
    list of str
        One line per problem, each naming its key (``trainer.accelerator: ...``).
    """
    accelerator = trainer.accelerator.strip().lower()
    if accelerator not in ACCELERATORS:
        return [
            f"trainer.accelerator: unknown accelerator {trainer.accelerator!r}; use one of "
            + ", ".join(ACCELERATORS)
        ]
    if accelerator == "cpu":
        return _cpu_problems(trainer.devices)
    if accelerator in {"gpu", "cuda"}:
        import torch

        if accelerator == "gpu" and torch.cuda.device_count() == 0 and _mps_available():
            return []
        return _cuda_problems(accelerator, trainer.devices)
    if accelerator == "mps":
        if not _mps_available():
            return ["trainer.accelerator: 'mps' needs Apple's Metal device, which is not here"]
        return []
    if accelerator in {"tpu", "xla"} and importlib.util.find_spec("torch_xla") is None:
        return [f"trainer.accelerator: {accelerator!r} needs torch_xla, which is not installed"]
    if accelerator == "hpu" and importlib.util.find_spec("habana_frameworks") is None:
        return ["trainer.accelerator: 'hpu' needs habana_frameworks, which is not installed"]
    return []


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
