"""The frozen forecasting-benchmark protocol, ``ephys-forecast/4``, and its budgets.

A protocol fixes everything that decides a score, so that two leaderboards written with the
same protocol and data hash compare: the data (simulated MEG: subjects, minutes, seeds), its
preprocessing, the dataset (channels, windows, the split by subject), the evaluation (windows,
contexts and horizon, baselines, sampling, seeds) and, per budget, each model's size and
training length. Changing any of it is a new protocol version: the content is hashed into
every leaderboard (``protocol_hash``).

Budgets, measured on a 2-core CPU (the figures in ``docs/benchmarks.md``):

``smoke``
    A few CPU minutes in all: tiny models, a short simulation. It shows that the machinery
    works; its scores say little.
``standard``
    The default suite: twenty simulated subjects of five minutes (split by subject: 12
    train, 4 validation, 4 test), models trained for a fixed number of steps chosen so that
    each stays within 30 CPU minutes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUDGETS", "PROTOCOL", "Budget", "protocol_hash"]

PROTOCOL = "ephys-forecast/4"


@dataclass(frozen=True)
class Budget:
    """One named budget of the protocol.

    Attributes
    ----------
    name
        ``smoke`` or ``standard``.
    subjects, seconds
        Simulated subjects and seconds of MEG each (the default data).
    batch_size
        Training batch of every model.
    steps
        Optimiser steps of each model (a model missing here trains for ``default_steps``).
    models
        Registry name -> model parameters (the data-derived ones are filled from the data).
    evaluation
        Parameters of the ``token_forecast`` evaluator.
    tokenizers
        Tokenizer rows: key -> how its codes are made. A fixed tokenizer is
        ``{"name", "params"}``, fitted on the training split; a learned one is ``{"name",
        "dataset", "dataset_params", "model", "steps", "window_seconds"}``, trained with
        ``ephys train`` on the training split and exported. ``code_forecaster`` is trained on
        each tokenizer's codes and scored by ``decoded_forecast`` in signal space.
    code_forecaster
        ``{"name", "params", "steps", "window_steps"}``: the forecaster of every tokenizer
        row, with plain layers (``embedding: table``, ``head: softmax``, no highway), so
        that only the codes differ; ``window_steps`` code steps per training window.
    code_models
        Further rows on one tokenizer's codes: model name -> ``{"tokenizer", "params",
        "steps"}``, for the models made for such codes (RVQ levels, latent images), trained
        and scored as the code forecaster is on the same tokenizer's codes.
    decoded_evaluation
        Parameters of the ``decoded_forecast`` evaluator of the tokenizer rows.
    """

    name: str
    subjects: int
    seconds: float
    batch_size: int
    steps: dict[str, int]
    models: dict[str, dict[str, Any]]
    evaluation: dict[str, Any]
    tokenizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_forecaster: dict[str, Any] = field(default_factory=dict)
    code_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    decoded_evaluation: dict[str, Any] = field(default_factory=dict)
    default_steps: int = 1000
    lr: float = 2e-3
    warmup_steps: int = 50
    window_seconds: float = 1.0
    split: dict[str, Any] = field(
        default_factory=lambda: {"strategy": "subject", "val": 0.2, "test": 0.2, "seed": 42}
    )

    def steps_of(self, model: str) -> int:
        """Optimiser steps of ``model``."""
        return int(self.steps.get(model, self.default_steps))

    def to_dict(self) -> dict[str, Any]:
        """Everything the budget fixes, JSON-ready."""
        return {
            "name": self.name,
            "subjects": self.subjects,
            "seconds": self.seconds,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "default_steps": self.default_steps,
            "lr": self.lr,
            "warmup_steps": self.warmup_steps,
            "window_seconds": self.window_seconds,
            "split": self.split,
            "models": self.models,
            "evaluation": self.evaluation,
            "tokenizers": self.tokenizers,
            "code_forecaster": self.code_forecaster,
            "code_models": self.code_models,
            "decoded_evaluation": self.decoded_evaluation,
        }


#: what every token model uses in the benchmark: the code-aware layers (ephys_models.codes)
#: and the least-squares VAR highway it refines (ephys_models.highway), of the order the
#: VAR baseline chooses on this data
_CODES = {
    "embedding": "amplitude",
    "head": "mixture",
    "mixture_components": 1,
    "highway": "var",
    "highway_order": 32,
}

#: the forecaster of the tokenizer rows: plain code layers, so that only the codes differ
_PLAIN_WAVENET = {
    "residual_channels": 32,
    "gate_channels": 32,
    "skip_channels": 64,
    "head_channels": 64,
    "embedding_dim": 8,
    "embedding": "table",
    "head": "softmax",
    "highway": "none",
}

#: the size of the smoke budget's transformers over a learned tokenizer's codes
_SMOKE_CODE_TRANSFORMER = {
    "d_model": 32,
    "n_layers": 1,
    "n_heads": 2,
    "n_kv_heads": 1,
    "context_length": 128,
}

#: and the standard budget's, as wide as its gpt2meg
_STANDARD_CODE_TRANSFORMER = {
    "d_model": 64,
    "n_layers": 2,
    "n_heads": 4,
    "n_kv_heads": 2,
    "context_length": 128,
}

BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        name="smoke",
        subjects=4,
        seconds=60.0,
        batch_size=8,
        steps={
            "gpt2meg": 60,
            "stgpt2meg": 60,
            "wavenet": 60,
            "flatgpt": 60,
            "flatgpt_embeds": 60,
            "flatgpt_mix": 60,
            "gpt2meg_trf": 60,
            "gpt2meg_mix": 60,
        },
        models={
            "flatgpt": {
                "backbone": "qwen2",
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "n_kv_heads": 1,
                "context_length": 128,
                **_CODES,
            },
            "flatgpt_embeds": {
                "backbone": "llama",
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 128,
                **_CODES,
            },
            "flatgpt_mix": {
                "backbone": "qwen3",
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "channel_dim": 4,
                "context_length": 128,
                **_CODES,
            },
            "gpt2meg": {
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 128,
                "dropout": 0.0,
                **_CODES,
            },
            "gpt2meg_trf": {
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "n_kv_heads": 1,
                "context_length": 128,
                "mlp": "moe",
                "n_experts": 4,
                "learned_sinks": True,
                **_CODES,
            },
            "gpt2meg_mix": {
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "channel_dim": 4,
                "channel_dropout": 0.1,
                "context_length": 128,
                **_CODES,
            },
            "stgpt2meg": {
                "d_model": 32,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 128,
                "dropout": 0.0,
                **_CODES,
            },
            "wavenet": {
                "residual_channels": 16,
                "gate_channels": 16,
                "skip_channels": 32,
                "head_channels": 32,
                "dilations": [1, 2, 4, 8, 16, 32, 64],
                "embedding_dim": 4,
                **_CODES,
            },
        },
        evaluation={
            "max_windows": 64,
            "n_contexts": 8,
            "horizon_seconds": 1.0,
            "fit_segments": 16,
            "fit_seconds": 10.0,
            "n_boot": 100,
        },
        tokenizers={
            "mulaw": {"name": "mulaw", "params": {"mu": 255, "amplitude": 5.0}},
            "quantile": {"name": "quantile", "params": {"n_codes": 256}},
            "brainomni": {
                "name": "brainomni",
                "dataset": "reconstruction",
                "dataset_params": {},
                "model": {
                    "channels": 4,
                    "dim": 16,
                    "n_latents": 4,
                    "levels": 2,
                    "codebook_size": 64,
                    "strides": [2, 2],
                    "n_heads": 2,
                },
                "steps": 60,
                "window_seconds": 1.28,
            },
            "vidtok_fsq": {
                "name": "vidtok_fsq",
                "dataset": "sensor_image",
                "dataset_params": {"image_size": 8, "target": "reconstruction"},
                "model": {"channels": 4, "fsq_levels": [5, 5, 5]},
                "steps": 30,
                "window_seconds": 1.28,
            },
        },
        code_forecaster={
            "name": "wavenet",
            "params": {**_PLAIN_WAVENET, "dilations": [1, 2, 4, 8, 16, 32]},
            "steps": 60,
            "window_steps": 100,
        },
        code_models={
            "flatgpt_rvq": {
                "tokenizer": "brainomni",
                "params": {"backbone": "qwen2_5_vl", **_SMOKE_CODE_TRANSFORMER},
                "steps": 60,
            },
            "flatgpt_embeds_rvq": {
                "tokenizer": "brainomni",
                "params": {"backbone": "qwen3", **_SMOKE_CODE_TRANSFORMER},
                "steps": 60,
            },
            "brainomni_forecast": {
                "tokenizer": "brainomni",
                "params": {"d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 128},
                "steps": 60,
            },
            "vqgpt2meg": {
                "tokenizer": "vidtok_fsq",
                "params": _SMOKE_CODE_TRANSFORMER,
                "steps": 60,
            },
        },
        decoded_evaluation={
            "n_contexts": 8,
            "horizon_seconds": 1.0,
            "fit_segments": 4,
            "fit_seconds": 10.0,
            "n_boot": 100,
        },
    ),
    "standard": Budget(
        name="standard",
        subjects=20,
        seconds=300.0,
        batch_size=16,
        steps={"gpt2meg": 1500, "stgpt2meg": 1500, "wavenet": 4000},
        models={
            "gpt2meg": {
                "d_model": 64,
                "n_layers": 2,
                "n_heads": 4,
                "context_length": 128,
                "dropout": 0.0,
                **_CODES,
            },
            "stgpt2meg": {
                "d_model": 64,
                "n_layers": 2,
                "n_heads": 4,
                "context_length": 128,
                "dropout": 0.0,
                **_CODES,
            },
            "wavenet": {
                "residual_channels": 32,
                "gate_channels": 32,
                "skip_channels": 64,
                "head_channels": 64,
                "dilations": [1, 2, 4, 8, 16, 32, 64] * 2,
                "embedding_dim": 8,
                **_CODES,
            },
        },
        evaluation={
            "max_windows": 256,
            "n_contexts": 32,
            "horizon_seconds": 2.0,
            # the baselines see the whole training split, as the models do: each of the 12
            # training sessions once, in full
            "fit_segments": 12,
            "fit_seconds": 300.0,
            "n_boot": 200,
        },
        tokenizers={
            "mulaw": {"name": "mulaw", "params": {"mu": 255, "amplitude": 5.0}},
            "quantile": {"name": "quantile", "params": {"n_codes": 256}},
            "brainomni": {
                "name": "brainomni",
                "dataset": "reconstruction",
                "dataset_params": {},
                "model": {
                    "channels": 16,
                    "dim": 64,
                    "n_latents": 8,
                    "levels": 2,
                    "codebook_size": 256,
                    "strides": [2, 2],
                },
                "steps": 3000,
                "window_seconds": 1.28,
            },
            "braintokmix": {
                "name": "braintokmix",
                "dataset": "reconstruction",
                "dataset_params": {},
                "model": {
                    "channels": 64,
                    "dim": 64,
                    "n_latents": 8,
                    "levels": 2,
                    "codebook_size": 256,
                    "strides": [2, 2],
                },
                "steps": 3000,
                "window_seconds": 1.28,
            },
            "vidtok_fsq": {
                "name": "vidtok_fsq",
                "dataset": "sensor_image",
                "dataset_params": {"image_size": 8, "target": "reconstruction"},
                "model": {"channels": 16, "fsq_levels": [8, 5, 5, 5]},
                # its 3-D convolutions cost about 0.5 s a step on 2 cores
                "steps": 1500,
                "window_seconds": 1.28,
            },
        },
        code_forecaster={
            "name": "wavenet",
            "params": {**_PLAIN_WAVENET, "dilations": [1, 2, 4, 8, 16, 32, 64] * 2},
            "steps": 800,
            "window_steps": 100,
        },
        code_models={
            "flatgpt_rvq": {
                "tokenizer": "brainomni",
                "params": {"backbone": "qwen2_5_vl", **_STANDARD_CODE_TRANSFORMER},
                "steps": 800,
            },
            "flatgpt_embeds_rvq": {
                "tokenizer": "brainomni",
                "params": {"backbone": "qwen3", **_STANDARD_CODE_TRANSFORMER},
                "steps": 800,
            },
            "brainomni_forecast": {
                "tokenizer": "brainomni",
                "params": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context_length": 128},
                "steps": 800,
            },
            "vqgpt2meg": {
                "tokenizer": "vidtok_fsq",
                "params": _STANDARD_CODE_TRANSFORMER,
                "steps": 800,
            },
        },
        decoded_evaluation={
            "n_contexts": 32,
            "horizon_seconds": 2.0,
            "fit_segments": 12,
            "fit_seconds": 300.0,
            "n_boot": 200,
        },
    ),
}

#: what every budget shares: preprocessing and the item format
SHARED = {
    "protocol": PROTOCOL,
    "data": "OSL-ephys simulated MEGIN MEG (multivariate AR model of a real recording), "
    "one recording per subject, posterior magnetometers thinned to 16 channels",
    "preprocessing": "read mag, band-pass 1-30 Hz, resample 100 Hz, zero bad channels, "
    "robust normalisation, clip 5 SD",
    "dataset": {"name": "mulaw_next_step", "mu": 255, "amplitude": 5.0},
    "evaluator": "token_forecast on the test split; tokenizer rows: decoded_forecast on the "
    "test split, in tesla",
    # /2: AR and VAR orders up to 96 (the window), where /1 stopped at 32; /3: tokenizer rows;
    # /4: code models (further forecasters on one tokenizer's codes)
    "baselines": "AR(p <= 96) by AIC, ridge VAR(p <= 96) on held-out training segments",
    "seed": 0,
}


def protocol_hash(budget: Budget) -> str:
    """A digest of everything the protocol and the budget fix."""
    text = json.dumps({**SHARED, "budget": budget.to_dict()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
