"""Small synthetic prepared datasets, for examples, tests and the conformance suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ephys_data.format import write_manifest, write_session
from ephys_data.recording import Recording
from ephys_tokenizers import mulaw

__all__ = ["write_example_dataset"]


def write_example_dataset(
    root: str | Path,
    *,
    n_subjects: int = 5,
    seconds: float = 4.0,
    sfreq: float = 100.0,
    n_channels: int = 8,
    codes: bool = False,
    labels: bool = False,
    seed: int = 0,
    dataset: str = "example",
) -> Path:
    """Write ``n_subjects`` one-session subjects of autoregressive noise with 10 Hz rhythm.

    Channels carry 3-D positions on a half sphere so layouts and images work. With ``codes``
    the data are mu-law codes (``mu = 255``, amplitude 4) as the ``mulaw`` stage writes them;
    with ``labels`` each session gets a condition track alternating 0/1/2 every second.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_times = int(seconds * sfreq)
    theta = np.linspace(0, 2 * np.pi, n_channels, endpoint=False)
    pos_3d = np.stack(
        [0.07 * np.cos(theta), 0.07 * np.sin(theta), 0.04 + 0.01 * np.sin(3 * theta)], axis=1
    )
    pos_2d = (pos_3d[:, :2] - pos_3d[:, :2].min(0)) / np.ptp(pos_3d[:, :2], axis=0)
    names = [f"CH{i:03d}" for i in range(n_channels)]
    t = np.arange(n_times) / sfreq
    for s in range(n_subjects):
        noise = rng.standard_normal((n_channels, n_times))
        x = np.zeros_like(noise)
        for i in range(1, n_times):  # AR(1) background
            x[:, i] = 0.9 * x[:, i - 1] + noise[:, i]
        x += 2 * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6.28, (n_channels, 1)))
        x = (x / x.std()).astype(np.float32)
        transforms: tuple[dict, ...] = (
            {
                "kind": "normalize",
                "method": "standard",
                "center": [0.0] * n_channels,
                "scale": [1e-12] * n_channels,
            },
        )
        data: np.ndarray = x
        if codes:
            data = mulaw.encode(x / 4.0, 255)
            transforms = (*transforms, {"kind": "mulaw", "mu": 255, "amplitude": 4.0})
        track = None
        if labels:
            track = ((np.arange(n_times) // int(sfreq)) % 3).astype(np.int16)
        recording = Recording.from_array(
            data,
            sfreq,
            names,
            "mag",
            name=f"sub-{s:02d}_task-rest",
            subject=f"{s:02d}",
            task="rest",
            dataset=dataset,
            units=("T",) * n_channels,
            pos_2d=pos_2d,
            pos_3d=pos_3d,
            ori_3d=pos_3d / np.linalg.norm(pos_3d, axis=1, keepdims=True),
            transforms=transforms,
            labels=track,
            label_names={0: "none", 1: "a", 2: "b"} if labels else {},
        )
        write_session(root, recording, {"source": "synthetic", "seed": seed})
    write_manifest(root, {"pipeline": [], "source": {"name": "synthetic"}})
    return root
