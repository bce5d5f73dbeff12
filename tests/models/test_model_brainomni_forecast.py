"""BrainOmniForecast specifics: residual-quantiser levels folded into one token per latent,
causal attention over time and attention across the latents, the temporal KV cache."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from reach_helpers import embedding_gradients

from ephys_models.brainomni_forecast import BrainOmniForecast
from ephys_models.configs.brainomni_forecast import BrainOmniForecastConfig
from ephys_models.generation import Sampler

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(seed: int = 0, **overrides) -> BrainOmniForecast:
    torch.manual_seed(seed)
    params = {**BrainOmniForecast.example_config().model_dump(), **overrides}
    return BrainOmniForecast(BrainOmniForecastConfig(**params)).eval()


def ids(model: BrainOmniForecast, batch: int = 1, steps: int = 6, seed: int = 0) -> torch.Tensor:
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (batch, cfg.n_channels, steps), generator=gen)


def test_levels_fold_into_one_stream_per_latent():
    model = build()  # 2 levels x 3 latents
    assert (model.levels, model.latents) == (2, 3)
    shapes = []
    handle = model.blocks[0].register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0].shape))
    )
    logits = model(ids(model, batch=2, steps=5))
    handle.remove()
    assert shapes == [(2, 3, 5, 16)]  # (B, latents, T, D): the levels summed
    assert logits.shape == (2, 6, 5, 16)  # every level of every latent gets logits


def test_each_output_reads_every_latent_and_level_up_to_its_step_and_nothing_later():
    model = build()
    x = ids(model)
    # the embeddings are (1, rows, T, D): one vector per level of every latent
    logits, grad_of = embedding_gradients(model, model.codes, x)  # (1, rows, T, V)
    rows, steps = x.shape[1], x.shape[2]
    for step in range(steps):
        for row in range(rows):
            touched = grad_of(logits[0, row, step].sum()).abs().sum(-1)[0] > 0  # (rows, T)
            assert bool(touched[:, : step + 1].all()), (row, step)
            assert not bool(touched[:, step + 1 :].any()), (row, step)


def test_a_changed_code_changes_every_row_from_its_step_on_and_nothing_before():
    model = build()
    x = ids(model, steps=8)
    changed = x.clone()
    changed[0, 4, 3] = (changed[0, 4, 3] + 1) % 16  # level 1 of latent 1, step 3
    with torch.no_grad():
        base, after = model(x), model(changed)
    torch.testing.assert_close(after[..., :3, :], base[..., :3, :], atol=0, rtol=0)
    assert all(not torch.allclose(after[0, r, 3], base[0, r, 3]) for r in range(6))
    assert not torch.allclose(after[..., 4:, :], base[..., 4:, :])


def test_cached_generation_equals_recomputing_the_window():
    model = build()
    context = ids(model, batch=2, steps=5, seed=1)
    greedy = Sampler(strategy="argmax")
    cached = model.forecast(context, 7, sampler=greedy, use_cache=True)
    fresh = model.forecast(context, 7, sampler=greedy, use_cache=False)
    assert cached.shape == (2, 6, 7)
    assert torch.equal(cached, fresh)
    # and every generated step is the argmax of the full forward on its past
    full = torch.cat([context, cached], dim=-1)
    with torch.no_grad():
        logits = model(full[..., :-1])
    assert torch.equal(logits[..., 4:, :].argmax(-1), cached)


def test_the_temporal_cache_is_bounded_by_the_context():
    model = build()
    x = ids(model, steps=31)
    with torch.no_grad():
        _, state = model._prefill(x)
        _, state = model._step(x[..., -1:], state)
        assert all(buffer.length == 32 for buffer in state[0])
        with pytest.raises(ValueError, match="33 time steps exceed context_length=32"):
            model._step(x[..., -1:], state)


def test_too_long_inputs_are_refused():
    model = build()
    with pytest.raises(ValueError, match="brainomni_forecast: 33 time steps exceed context"):
        model(ids(model, steps=33))


def test_the_levels_must_divide_the_rows_and_match_the_data():
    with pytest.raises(ValidationError, match="must divide the code rows"):
        BrainOmniForecastConfig(n_channels=5, code_levels=2)
    config = BrainOmniForecastConfig(n_channels=6, code_levels=3, vocab_size=16)
    assert config.n_latents == 2
    spec = {"n_channels": 6, "vocab_size": 16, "n_times": 30}
    assert config.check_data({**spec, "code_levels": 3}) == []
    (problem,) = config.check_data({**spec, "code_levels": 2})
    assert "code_levels is 3, but the data's codes have 2 levels" in problem


def test_mulaw_layers_are_refused():
    for overrides in ({"head": "mixture"}, {"embedding": "amplitude"}, {"highway": "var"}):
        with pytest.raises(ValidationError, match="not mu-law amplitudes"):
            BrainOmniForecastConfig(**overrides)


def test_untied_level_heads():
    tied, untied = build(), build(tie_level_heads=False)
    assert tied.heads is None and untied.heads is not None
    extra = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert extra == 2 * 16 * 16  # levels x V x d_model
    assert untied(ids(untied)).shape == (1, 6, 6, 16)


def test_a_few_adam_steps_lower_the_loss():
    model = build(dropout=0.0).train()
    x = ids(model, batch=4, steps=12, seed=2)
    inputs, targets = x[..., :-1], x[..., 1:]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        logits = model(inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 16), targets.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_the_brainomni_codes_path_in_miniature(signal_root, tmp_path):
    """brainomni trained and exported, the data encoded, brainomni_forecast trained on the
    codes with its levels taken from the data, and its rollouts decoded to signal."""
    from engine_helpers import tiny_code_run, train_tokenizer_briefly

    from ephys_core.config import load_config
    from ephys_data.encoding import encode_dataset
    from ephys_eval.runner import evaluate
    from ephys_models.brainomni import BrainOmni
    from ephys_models.tokenizer_export import export_tokenizer
    from ephys_models.training import train
    from ephys_tokenizers.artifact import load_tokenizer

    train_tokenizer_briefly(
        signal_root,
        tmp_path / "tok",
        "reconstruction",
        {},
        "brainomni",
        BrainOmni.example_config().model_dump(),
        ("train/l1",),
    )
    export_tokenizer(tmp_path / "tok/run/checkpoints/last.ckpt", tmp_path / "brainomni")
    encode_dataset(load_tokenizer(tmp_path / "brainomni"), [signal_root], tmp_path / "codes")
    config = tiny_code_run(
        tmp_path / "codes",
        tmp_path,
        "forecast",
        {
            "name": "brainomni_forecast",
            "params": {"d_model": 16, "n_layers": 1, "n_heads": 2, "context_length": 64},
        },
    )
    result = train(load_config(config))
    assert result.global_step == 3
    params = load_config(str(tmp_path / "forecast" / "config.yaml")).params("model")
    assert params.code_levels == 2 and params.n_channels == 2 * 3  # levels x latents
    evaluation = evaluate(result.last_checkpoint, None, tmp_path / "report")
    decoded = evaluation.summary["evaluators"]["decoded_forecast"]
    assert decoded["tokenizer"]["name"] == "brainomni"
    assert decoded["rollout"]["metrics"]["psd_log_distance"]["model"]["value"] >= 0
