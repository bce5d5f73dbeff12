"""A tiny run configuration for training-engine tests."""

from __future__ import annotations


def tiny_run(root, out, name="run", **sections):
    """A run configuration training a tiny gpt2meg on mu-law tokens for a few steps."""
    config = {
        "name": name,
        "out_dir": str(out),
        "seed": 3,
        "data": {
            "dataset": {
                "name": "mulaw_next_step",
                "params": {
                    "roots": [str(root)],
                    "window_seconds": 0.3,
                    "split": {"val": 0.2, "test": 0.2},
                    "augmentations": [
                        {"name": "time_shift", "max_shift": 3},
                        {"name": "additive_noise", "sigma": 0.1},
                    ],
                },
            },
            "batch_size": 4,
        },
        "model": {
            "name": "gpt2meg",
            "params": {
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 64,
                "dropout": 0.0,
            },
        },
        "loss": {"name": "cross_entropy"},
        "trainer": {
            "max_steps": 6,
            "log_every_n_steps": 2,
            "accelerator": "cpu",
            "devices": 1,
            "progress_bar": False,
        },
        "optim": {"lr": 1e-3, "warmup_steps": 2, "scheduler": {"name": "cosine"}},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config
