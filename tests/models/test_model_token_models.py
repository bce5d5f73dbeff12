"""Behaviour every registered token model shares: shapes, side information, data checks, and
the generation API (cache, sliding window, sampling strategies).

The models are taken from the registry, not from a list: every installed model whose
``Config`` is a :class:`~ephys_models.configs.token.TokenModelConfig` is tested.
"""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from ephys_core import get_registry
from ephys_models.configs.token import AttentionConfig, TokenModelConfig, WindowedTokenModelConfig
from ephys_models.generation import Sampler


def _token_models(kind: type = TokenModelConfig) -> list[str]:
    registry = get_registry("models")
    return [n for n in registry.names() if issubclass(registry.config_model(n), kind)]


MODELS = _token_models()
WINDOWED = _token_models(WindowedTokenModelConfig)
ATTENTION = _token_models(AttentionConfig)


def test_the_first_party_token_models_are_found():
    assert {"gpt2meg", "stgpt2meg", "wavenet"} <= set(MODELS)
    assert {"gpt2meg", "stgpt2meg"} <= set(ATTENTION)


def build(name: str, seed: int = 0, **overrides):
    cls = get_registry("models").load(name)
    config = cls.example_config().model_copy(update=overrides)
    torch.manual_seed(seed)
    return cls(cls.Config.model_validate(config.model_dump())).eval()


def tokens(model, batch: int, n_times: int, seed: int = 0) -> dict[str, torch.Tensor]:
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randint(0, cfg.vocab_size, (batch, cfg.n_channels, n_times), generator=gen),
        "condition": torch.randint(0, cfg.n_conditions + 1, (batch, n_times), generator=gen),
        "subject": torch.randint(0, cfg.n_subjects, (batch,), generator=gen),
    }


def extend(context: dict, generated: torch.Tensor) -> dict:
    """The context followed by generated steps (conditions repeat the last label)."""
    n = generated.shape[-1]
    return {
        "x": torch.cat([context["x"], generated], dim=-1),
        "condition": torch.cat(
            [context["condition"], context["condition"][:, -1:].expand(-1, n)], dim=-1
        ),
        "subject": context["subject"],
    }


@pytest.fixture(params=MODELS)
def model(request):
    return build(request.param)


# -- forward ------------------------------------------------------------------------------


def test_shapes_for_tensor_and_mapping_inputs(model):
    cfg = model.config
    inputs = tokens(model, batch=3, n_times=10)
    with torch.no_grad():
        out_map = model(inputs)
        out_ids = model(inputs["x"])
    expected = (3, cfg.n_channels, 10, cfg.vocab_size)
    assert out_map.shape == out_ids.shape == expected
    assert tuple(model.output_shape(inputs)) == expected
    assert model.causal and model.input_time_axis == -1 and model.output_time_axis == -2


def test_condition_changes_outputs_from_its_time_step_on(model):
    inputs = tokens(model, batch=2, n_times=12)
    plain = {**inputs, "condition": torch.zeros_like(inputs["condition"])}
    labelled = {**plain, "condition": plain["condition"].clone()}
    labelled["condition"][:, 6:] = 1
    with torch.no_grad():
        a, b = model(plain), model(labelled)
        no_track = model({"x": inputs["x"], "subject": inputs["subject"]})
    torch.testing.assert_close(a[..., :6, :], b[..., :6, :])
    assert not torch.allclose(a[..., 6:, :], b[..., 6:, :])
    # label 0 means "no condition": its embedding is exactly zero
    torch.testing.assert_close(a, no_track)


def test_subject_changes_outputs(model):
    inputs = tokens(model, batch=2, n_times=8)
    with torch.no_grad():
        a = model({**inputs, "subject": torch.tensor([0, 0])})
        b = model({**inputs, "subject": torch.tensor([1, 1])})
    assert not torch.allclose(a, b)


#: models built around condition labels: they refuse n_conditions=0
CONDITIONED = {"gpt2meg_cond"}


@pytest.mark.parametrize("name", sorted(CONDITIONED))
def test_a_conditioned_model_refuses_data_without_conditions(name):
    with pytest.raises(ValidationError, match="n_conditions is 0"):
        build(name, n_conditions=0)


@pytest.mark.parametrize("name", sorted(set(MODELS) - CONDITIONED))
def test_condition_labels_without_condition_embeddings_are_an_error(name):
    model = build(name, n_conditions=0)
    inputs = tokens(build(name), batch=1, n_times=6)
    inputs["condition"][:] = 1
    with pytest.raises(ValueError, match="n_conditions"):
        model(inputs)
    inputs["condition"][:] = 0  # an all-zero track carries nothing and is accepted
    assert model(inputs).shape[2] == 6


@pytest.mark.parametrize("name", MODELS)
def test_subject_is_ignored_without_subject_embeddings(name):
    model = build(name, n_subjects=0)
    inputs = tokens(build(name), batch=2, n_times=6)
    with torch.no_grad():
        a = model({**inputs, "subject": torch.tensor([0, 0])})
        b = model({**inputs, "subject": torch.tensor([1, 1])})
    torch.testing.assert_close(a, b)


def test_bad_inputs_are_explained(model):
    cfg = model.config
    with pytest.raises(ValueError, match="n_channels"):
        model(torch.zeros(1, cfg.n_channels + 1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integers"):
        model(torch.zeros(1, cfg.n_channels, 4))
    with pytest.raises(ValueError, match="condition"):
        model(
            {
                "x": torch.zeros(1, cfg.n_channels, 4, dtype=torch.long),
                "condition": torch.zeros(1, 5, dtype=torch.long),
            }
        )


@pytest.mark.parametrize("name", WINDOWED)
def test_inputs_longer_than_the_context_are_rejected(name):
    model = build(name)
    length = model.config.context_length + 1
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, model.config.n_channels, length, dtype=torch.long))


@pytest.mark.parametrize("name", WINDOWED)
def test_the_config_refuses_windows_longer_than_the_context(name):
    config = build(name).config
    spec = {
        "n_channels": config.n_channels,
        "vocab_size": config.vocab_size,
        "n_times": config.context_length,
    }
    assert config.check_data(spec) == []
    problems = config.check_data({**spec, "n_times": config.context_length + 1})
    assert len(problems) == 1 and "context_length" in problems[0]


@pytest.mark.parametrize("name", MODELS)
def test_the_config_refuses_data_it_cannot_consume(name):
    config = build(name).config
    spec = {"n_channels": config.n_channels, "vocab_size": config.vocab_size, "n_times": 4}
    assert config.check_data(spec) == []
    assert "continuous signals" in config.check_data({**spec, "vocab_size": None})[0]
    assert "vocab_size" in config.check_data({**spec, "vocab_size": 7})[0]
    assert "n_channels" in config.check_data({**spec, "n_channels": 99})[0]
    more = config.n_conditions + 1
    assert "n_conditions" in config.check_data({**spec, "n_conditions": more})[0]


@pytest.mark.parametrize("name", ATTENTION)
def test_heads_must_divide_the_width(name):
    config_model = get_registry("models").config_model(name)
    with pytest.raises(ValidationError, match="divisible"):
        config_model(d_model=10, n_heads=3)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in ATTENTION
        if "tie_embeddings" in get_registry("models").config_model(n).model_fields
    ],
)
def test_untied_head(name):
    tied, untied = build(name), build(name, tie_embeddings=False)
    assert untied.head is not None and tied.head is None
    extra = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert extra == untied.config.d_model * untied.config.vocab_size
    out = untied.forecast(untied.example_input(1), 5, sampler=Sampler(seed=0))
    assert out.shape == (1, untied.config.n_channels, 5)


@pytest.mark.parametrize("name", MODELS)
def test_the_registry_declaration_matches_the_model(name):
    """The torch-free declaration validates exactly what the model class is built from."""
    registry = get_registry("models")
    assert registry.config_model(name) is registry.load(name).Config
    assert registry.metadata(name, "causal") is registry.load(name).causal


# -- generation ---------------------------------------------------------------------------


def test_cached_steps_reproduce_the_forward_logits(model):
    inputs = tokens(model, batch=2, n_times=min(20, model.max_context))
    with torch.no_grad():
        full = model(inputs)
        logits, state = model._prefill(
            {k: v[..., :5] if k != "subject" else v for k, v in inputs.items()}
        )
        torch.testing.assert_close(logits, full[:, :, 4], atol=1e-5, rtol=1e-4)
        for t in range(5, inputs["x"].shape[-1]):
            step = {k: v[..., t : t + 1] if k != "subject" else v for k, v in inputs.items()}
            logits, state = model._step(step, state)
            torch.testing.assert_close(logits, full[:, :, t], atol=1e-5, rtol=1e-4)


def test_a_step_may_carry_several_new_time_steps(model):
    inputs = tokens(model, batch=2, n_times=12)
    with torch.no_grad():
        full = model(inputs)
        _, state = model._prefill(
            {k: v[..., :5] if k != "subject" else v for k, v in inputs.items()}
        )
        chunk = {k: v[..., 5:9] if k != "subject" else v for k, v in inputs.items()}
        logits, state = model._step(chunk, state)
        torch.testing.assert_close(logits, full[:, :, 8], atol=1e-5, rtol=1e-4)
        step = {k: v[..., 9:10] if k != "subject" else v for k, v in inputs.items()}
        logits, _ = model._step(step, state)
    torch.testing.assert_close(logits, full[:, :, 9], atol=1e-5, rtol=1e-4)


def test_cached_forecast_equals_uncached_within_the_window(model):
    context = tokens(model, batch=2, n_times=6)
    n_steps = model.max_context - 6 + 1  # the window never overflows
    argmax = Sampler(strategy="argmax")
    cached = model.forecast(context, n_steps, sampler=argmax)
    uncached = model.forecast(context, n_steps, sampler=argmax, use_cache=False)
    assert cached.shape == (2, model.config.n_channels, n_steps)
    assert cached.dtype == torch.int64
    assert torch.equal(cached, uncached)
    seeded = Sampler(strategy="multinomial", seed=3)
    assert torch.equal(
        model.forecast(context, n_steps, sampler=seeded),
        model.forecast(context, n_steps, sampler=seeded, use_cache=False),
    )


@pytest.mark.parametrize("use_cache", [True, False])
def test_forecasts_longer_than_the_window_slide(model, use_cache):
    context = tokens(model, batch=1, n_times=model.max_context + 5)  # longer context too
    n_steps = 2 * model.max_context + 3
    out = model.forecast(context, n_steps, sampler=Sampler(seed=0), use_cache=use_cache)
    assert out.shape == (1, model.config.n_channels, n_steps)
    assert int(out.min()) >= 0 and int(out.max()) < model.config.vocab_size
    plain = model.forecast(context["x"], 5, sampler=Sampler(seed=0), use_cache=use_cache)
    assert plain.shape == (1, model.config.n_channels, 5)


def test_argmax_is_greedy_and_deterministic(model):
    context = tokens(model, batch=2, n_times=5)
    argmax = Sampler(strategy="argmax")
    first = model.forecast(context, 12, sampler=argmax)
    assert torch.equal(first, model.forecast(context, 12, sampler=argmax))
    with torch.no_grad():
        logits = model(extend(context, first[..., :-1]))[:, :, 4:]
    assert torch.equal(first, logits.argmax(-1))
    cold = model.forecast(context, 12, sampler=Sampler(temperature=1e-6, seed=0))
    assert torch.equal(first, cold)


def test_top_k_never_leaves_the_top_k(model):
    context = tokens(model, batch=2, n_times=5)
    k = 3
    out = model.forecast(context, 20, sampler=Sampler(strategy="top_k", top_k=k, seed=1))
    with torch.no_grad():
        logits = model(extend(context, out[..., :-1]))[:, :, 4:]
    allowed = logits.topk(k, dim=-1).indices
    assert bool((allowed == out.unsqueeze(-1)).any(-1).all())
    assert len(out.unique()) > k  # it does sample, not only take the best


def test_top_p_stays_inside_the_nucleus(model):
    context = tokens(model, batch=2, n_times=5)
    p = 0.5
    out = model.forecast(context, 20, sampler=Sampler(strategy="top_p", top_p=p, seed=2))
    with torch.no_grad():
        probs = model(extend(context, out[..., :-1]))[:, :, 4:].softmax(-1)
    chosen = probs.gather(-1, out.unsqueeze(-1))
    mass_above = (probs * (probs > chosen)).sum(-1)  # probability of strictly likelier tokens
    assert bool((mass_above < p + 1e-5).all())


def test_sampling_by_the_inverse_cumulative_distribution_keeps_each_distribution():
    from ephys_models.generation import sample

    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    logits = probs.log().expand(40000, 4)
    uniforms = torch.rand(40000, generator=torch.Generator().manual_seed(0))
    drawn = sample(logits, Sampler(), uniforms=uniforms)
    frequencies = torch.bincount(drawn, minlength=4).float() / 40000
    torch.testing.assert_close(frequencies, probs, atol=0.01, rtol=0)
    top = sample(logits, Sampler(strategy="top_k", top_k=2), uniforms=uniforms)
    assert set(top.unique().tolist()) == {2, 3}
    # the same uniform gives the same quantile: dependent uniforms make dependent tokens
    ordered = sample(logits[:3], Sampler(), uniforms=torch.tensor([0.05, 0.5, 0.95]))
    assert ordered.tolist() == [0, 2, 3]


def test_seeded_sampler_is_reproducible(model):
    context = tokens(model, batch=2, n_times=5)
    a = model.forecast(context, 16, sampler=Sampler(seed=7))
    b = model.forecast(context, 16, sampler=Sampler(seed=7))
    c = model.forecast(context, 16, sampler=Sampler(seed=8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_future_condition_steers_the_forecast(model):
    context = tokens(model, batch=1, n_times=5)
    argmax = Sampler(strategy="argmax")
    n = 8
    zeros = torch.zeros(1, n, dtype=torch.long)
    a = model.forecast(context, n, sampler=argmax, future_condition=zeros)
    b = model.forecast(context, n, sampler=argmax, future_condition=zeros + 2)
    with torch.no_grad():
        cond = torch.cat([context["condition"], zeros[:, :-1] + 2], dim=-1)
        x = torch.cat([context["x"], b[..., :-1]], dim=-1)
        logits = model({"x": x, "condition": cond, "subject": context["subject"]})[:, :, 4:]
    assert torch.equal(b, logits.argmax(-1))
    assert torch.equal(a[..., 0], b[..., 0])  # the first step depends on the context only


@pytest.mark.parametrize("name", MODELS)
def test_bf16_autocast_trains_like_float32(name):
    """Under ``precision: bf16-mixed`` (CPU autocast) the forward and backward stay finite
    and the loss stays near its float32 value."""
    model = build(name).train()
    inputs = tokens(model, batch=2, n_times=8)
    targets = torch.randint(0, model.config.vocab_size, inputs["x"].shape)

    def loss() -> torch.Tensor:
        logits = model(inputs)
        return torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1)
        )

    torch.manual_seed(0)
    full = loss()
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = loss()
    half.backward()
    assert torch.isfinite(half)
    assert abs(half.item() - full.item()) < 0.05 * full.item()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
