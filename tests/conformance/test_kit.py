"""The conformance kit itself: each check must fail on a component that breaks its contract."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from pydantic import Field
from torch import nn

from ephys_core.components import Component, ComponentConfig
from ephys_core.errors import ConformanceError
from ephys_core.testing import CHECKS, check_component, run_check


class Cfg(ComponentConfig):
    n_channels: int = Field(3, description="Channels.")


class CausalConv(Component, nn.Module):
    """A correct causal model: left-padded convolution over float signals."""

    Config = Cfg
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -1

    def __init__(self, config):
        super().__init__()
        self.conv = nn.Conv1d(config.n_channels, config.n_channels, 3)

    def forward(self, x):
        return self.conv(nn.functional.pad(x, (2, 0)))

    def example_input(self, batch_size=2):
        return torch.randn(batch_size, 3, 16)

    def output_shape(self, inputs):
        return tuple(inputs.shape)


class Leaky(CausalConv):
    """Declares itself causal but pads symmetrically: peeks one step ahead."""

    def forward(self, x):
        return self.conv(nn.functional.pad(x, (1, 1)))


class TokenLeaky(Component, nn.Module):
    """Token model whose output mixes in the next time step through the embedding."""

    Config = Cfg
    causal: ClassVar[bool] = True
    input_time_axis: ClassVar[int] = -1
    output_time_axis: ClassVar[int] = -2

    def __init__(self, config):
        super().__init__()
        self.emb = nn.Embedding(8, 4)
        self.head = nn.Linear(4, 8)

    def forward(self, x):
        h = self.emb(x)
        h = h + torch.roll(h, -1, dims=-2)  # future leaks in
        return self.head(h)

    def example_input(self, batch_size=2):
        return torch.randint(0, 8, (batch_size, 3, 12))

    def output_shape(self, inputs):
        return (*inputs.shape, 8)


class NaNModel(CausalConv):
    def forward(self, x):
        return super().forward(x) * float("nan")


class WrongShape(CausalConv):
    def output_shape(self, inputs):
        return (1, 2, 3)


class DeadParam(CausalConv):
    def __init__(self, config):
        super().__init__(config)
        self.unused = nn.Linear(2, 2)


class DeclaredLeaky(Leaky):
    expected_failures: ClassVar = {
        "causal_perturbation": "test double",
        "causal_gradient": "test double",
    }


class StaleDeclaration(CausalConv):
    expected_failures: ClassVar = {"causal_gradient": "it used to leak"}


def run(ephys_registry, tmp_path, cls, check, kind="models"):
    ephys_registry.register(kind, "x", cls, replace=True)
    return run_check(kind, "x", check, tmp_path)


def test_a_correct_model_passes_everything(ephys_registry, tmp_path):
    ephys_registry.register("models", "good", CausalConv)
    check_component("models", "good", tmp_path)


@pytest.mark.parametrize("check", ["causal_perturbation", "causal_gradient"])
def test_future_leak_is_caught_both_ways(ephys_registry, tmp_path, check):
    with pytest.raises(ConformanceError, match="from inputs after t|perturbed"):
        run(ephys_registry, tmp_path, Leaky, check)


@pytest.mark.parametrize("check", ["causal_perturbation", "causal_gradient"])
def test_future_leak_through_token_embeddings_is_caught(ephys_registry, tmp_path, check):
    with pytest.raises(ConformanceError):
        run(ephys_registry, tmp_path, TokenLeaky, check)


def test_non_finite_output_is_caught(ephys_registry, tmp_path):
    with pytest.raises(ConformanceError, match="NaN or Inf"):
        run(ephys_registry, tmp_path, NaNModel, "finite_outputs_and_gradients")


def test_wrong_declared_shape_is_caught(ephys_registry, tmp_path):
    with pytest.raises(ConformanceError, match="declared"):
        run(ephys_registry, tmp_path, WrongShape, "output_shape")


def test_parameters_without_gradient_are_caught(ephys_registry, tmp_path):
    with pytest.raises(ConformanceError, match="unused.weight"):
        run(ephys_registry, tmp_path, DeadParam, "finite_outputs_and_gradients")


def test_declared_expected_failures_are_honoured_and_kept_honest(ephys_registry, tmp_path):
    reason = run(ephys_registry, tmp_path, DeclaredLeaky, "causal_gradient")
    assert reason == "expected failure: test double"
    with pytest.raises(ConformanceError, match="remove the declaration"):
        run(ephys_registry, tmp_path, StaleDeclaration, "causal_gradient")


def test_non_causal_models_skip_causality(ephys_registry, tmp_path):
    class Bidirectional(Leaky):
        causal: ClassVar[bool] = False

    assert (
        run(ephys_registry, tmp_path, Bidirectional, "causal_gradient") == "the model is not causal"
    )


class MSE(Component):
    """A correct loss."""

    Config = Cfg
    metrics: ClassVar[tuple[str, ...]] = ("mae",)

    def __init__(self, config):
        pass

    def __call__(self, outputs, targets):
        return {"loss": ((outputs - targets) ** 2).mean(), "mae": (outputs - targets).abs().mean()}

    def example_inputs(self, batch_size=2):
        return torch.randn(batch_size, 3, requires_grad=True), torch.randn(batch_size, 3)


class UndeclaredMetric(MSE):
    metrics: ClassVar[tuple[str, ...]] = ()


class Detached(MSE):
    def __call__(self, outputs, targets):
        result = super().__call__(outputs.detach(), targets)
        result["loss"] = result["loss"] + 0 * outputs.sum()
        return result


def test_losses(ephys_registry, tmp_path):
    ephys_registry.register("losses", "mse", MSE)
    check_component("losses", "mse", tmp_path)
    with pytest.raises(ConformanceError, match="declared"):
        run(ephys_registry, tmp_path, UndeclaredMetric, "declared_metrics", "losses")
    with pytest.raises(ConformanceError, match="does not depend on the outputs"):
        run(ephys_registry, tmp_path, Detached, "gradient", "losses")


class RoundTok(Component):
    """Rounds to 0.1 steps, codes offset into [0, 21)."""

    Config = Cfg
    causal: ClassVar[bool] = True
    time_stride: ClassVar[int] = 1
    roundtrip_tolerance = 0.2
    vocab_size = 21

    def __init__(self, config):
        pass

    def encode(self, x):
        import numpy as np

        return (np.clip(np.round(x * 10), -10, 10) + 10).astype(np.int64)

    def decode(self, codes):
        return (codes - 10) / 10.0

    def example_input(self, batch_size=2):
        import numpy as np

        return np.random.default_rng(0).uniform(-1, 1, (batch_size, 3, 32))


class OutOfRange(RoundTok):
    vocab_size = 5


class Smearing(RoundTok):
    def encode(self, x):
        import numpy as np

        return super().encode(x + np.roll(x, -1, axis=-1))


def test_tokenizers(ephys_registry, tmp_path):
    ephys_registry.register("tokenizers", "round", RoundTok)
    check_component("tokenizers", "round", tmp_path)
    with pytest.raises(ConformanceError, match="outside"):
        run(ephys_registry, tmp_path, OutOfRange, "vocabulary_range", "tokenizers")
    with pytest.raises(ConformanceError, match="changed"):
        run(ephys_registry, tmp_path, Smearing, "causality", "tokenizers")


def test_undocumented_config_fields_are_caught(ephys_registry, tmp_path):
    class Bare(ComponentConfig):
        n: int = 1

    class Undocumented(CausalConv):
        Config = Bare

    with pytest.raises(ConformanceError, match="without a description: n"):
        run(ephys_registry, tmp_path, Undocumented, "config_roundtrip")


def test_every_kind_has_checks_and_a_config_roundtrip():
    from ephys_core.kinds import KINDS

    assert set(CHECKS) == set(KINDS)
    assert all("config_roundtrip" in checks for checks in CHECKS.values())
