"""torch.compile on the CPU: a compiled model gives the eager model's outputs, and the engine
trains with ``trainer.compile: true``. Compiling costs tens of seconds, so two models stand for
the two kinds of network: ephys's own decoder and a Hugging Face backbone."""

from __future__ import annotations

import pytest
import torch

from ephys_core import get_registry

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("gpt2meg_trf", {"mlp": "dense", "learned_sinks": True}), ("flatgpt", {})],
)
def test_a_compiled_model_gives_the_eager_outputs(name, overrides):
    cls = get_registry("models").load(name)
    config = cls.Config(**{**cls.example_config().model_dump(), **overrides})
    torch.manual_seed(0)
    model = cls(config).eval()
    inputs = model.example_input()
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(inputs), model(inputs), atol=1e-4, rtol=1e-4)


def test_the_engine_trains_a_compiled_model(signal_root, tmp_path):
    from engine_helpers import tiny_run

    from ephys_core.config import load_config
    from ephys_models.training import module_from_checkpoint, train

    params = {"d_model": 16, "n_layers": 1, "n_heads": 2, "context_length": 64}
    config = tiny_run(
        signal_root,
        tmp_path,
        model={"name": "gpt2meg_trf", "params": params},
        trainer={"max_steps": 3, "compile": True},
    )
    result = train(load_config(config))
    assert result.global_step == 3 and result.last_checkpoint is not None
    # the checkpoint holds the plain model's weights: it loads and runs without compiling
    restored = module_from_checkpoint(result.last_checkpoint)
    assert not any("_orig_mod" in key for key in restored.state_dict())
    logits = restored.model(restored.model.example_input())
    assert torch.isfinite(logits).all()
