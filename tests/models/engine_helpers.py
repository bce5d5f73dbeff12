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


def dataset_section(name, root, window_seconds, **params):
    """The dataset ``name`` over ``root``, split 60/20/20."""
    return {
        "name": name,
        "params": {
            "roots": [str(root)],
            "window_seconds": window_seconds,
            "split": {"val": 0.2, "test": 0.2},
            **params,
        },
    }


#: a tiny flatgpt_rvq on a Qwen2.5-VL decoder (the flagship path's model)
TINY_FLATGPT_RVQ = {
    "name": "flatgpt_rvq",
    "params": {
        "backbone": "qwen2_5_vl",
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "n_kv_heads": 1,
        "context_length": 64,
    },
}


def tiny_code_run(roots, out, name, model, dataset="tokens_next_step", **data):
    """A 3-step run of ``model`` on the codes in ``roots`` (30 code steps at 25 Hz a window),
    evaluated by a tiny ``decoded_forecast``; ``data`` adds keys to the data section."""
    return tiny_run(
        roots,
        out,
        name=name,
        data={"dataset": dataset_section(dataset, roots, 1.2), **data},
        model=model,
        evaluation={
            "split": "test",
            "evaluators": [
                {
                    "name": "decoded_forecast",
                    "params": {
                        "n_contexts": 4,
                        "horizon_seconds": 0.8,
                        "fit_segments": 4,
                        "fit_seconds": 4.0,
                        "ar_max_order": 4,
                        "var_orders": [1, 2],
                        "n_boot": 20,
                    },
                }
            ],
        },
        trainer={"max_steps": 3},
    )


def train_tokenizer_briefly(root, out, dataset, params, model, model_params, metrics):
    """Train a tokenizer model 3 steps on ``dataset`` and check what the engine logged; then
    check that a 30-sample window (not a multiple of the time stride) is refused."""
    import pytest

    from ephys_core.config import load_config
    from ephys_core.errors import ConfigError
    from ephys_models.training import train

    config = tiny_run(
        root,
        out,
        data={"dataset": dataset_section(dataset, root, 0.32, **params), "batch_size": 4},
        model={"name": model, "params": model_params},
        loss={"name": "tokenizer_reconstruction"},
        trainer={"max_steps": 3},
    )
    assert train(load_config(config)).global_step == 3
    header = (out / "run" / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    for name in metrics:
        assert name in header
    config["data"]["dataset"]["params"]["window_seconds"] = 0.3  # 30 samples
    with pytest.raises(ConfigError, match="not a multiple of the time stride"):
        train(load_config({**config, "name": "odd"}))


def reconstruction_before_and_after(model, inputs, target, steps, lr):
    """``tokenizer_reconstruction`` results (eval mode) before and after ``steps`` Adam steps
    of ``model`` on one batch."""
    import torch

    from ephys_models.reconstruction_loss import TokenizerReconstruction

    loss_fn = TokenizerReconstruction()
    with torch.no_grad():
        before = loss_fn(model.eval()(inputs), target)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        result = loss_fn(model(inputs), target)
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = loss_fn(model(inputs), target)
    return before, after
