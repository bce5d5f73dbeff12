"""The mu-law-aware layers: amplitude embedding and discretised-mixture head."""

from __future__ import annotations

import math

import pytest
import torch

from ephys_core import get_registry
from ephys_models.codes import AmplitudeEmbedding, MixtureHead, code_features
from ephys_models.generation import Sampler
from ephys_tokenizers import mulaw


def test_code_features_are_the_codes_amplitudes():
    features = code_features(256)
    assert features.shape == (256, 2)
    torch.testing.assert_close(
        features[:, 0], torch.as_tensor(mulaw.decode(torch.arange(256), 255))
    )
    assert features[0, 1] == -1 and features[-1, 1] == 1  # companded: linear in the code


def test_the_amplitude_embedding_is_a_function_of_the_amplitude():
    torch.manual_seed(0)
    embedding = AmplitudeEmbedding(256, 8)
    codes = torch.tensor([100, 128, 156])
    out = embedding(codes)
    # a linear map of (amplitude, companded): the middle code sits between its neighbours
    companded = code_features(256)[codes]
    torch.testing.assert_close(out, companded @ embedding.proj.weight.T)


def test_the_mixture_head_is_a_normalised_distribution_with_finite_gradients():
    torch.manual_seed(1)
    head = MixtureHead(16, 256, components=3)
    hidden = torch.randn(4, 7, 16, requires_grad=True)
    log_probs = head(hidden)
    assert log_probs.shape == (4, 7, 256)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(4, 7))
    loss = torch.nn.functional.cross_entropy(
        log_probs.reshape(-1, 256), torch.randint(0, 256, (28,))
    )
    loss.backward()
    assert torch.isfinite(hidden.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


@pytest.mark.parametrize("code", [3, 120, 128, 200, 252])
def test_a_sharp_component_puts_its_mass_on_the_code_of_its_mean(code):
    head = MixtureHead(None, 256, components=1)
    amplitude = float(mulaw.decode(torch.tensor(code), 255))
    width = float(head.log_widths[code].exp())
    raw = torch.tensor([0.0, amplitude, math.log(width / 4)])  # weight, mean, log scale
    probs = head.log_probs(raw).exp()
    assert int(probs.argmax()) == code and float(probs[code]) > 0.6


def test_a_wide_component_spreads_its_mass_like_the_gaussian():
    head = MixtureHead(None, 256, components=1)
    probs = head.log_probs(torch.tensor([0.0, 0.0, math.log(0.2)])).exp()
    centres = code_features(256)[:, 0]
    mean = float((probs * centres).sum())
    sd = float((probs * centres**2).sum().sqrt())
    assert abs(mean) < 1e-3 and sd == pytest.approx(0.2, rel=0.05)


MODELS = ["gpt2meg", "stgpt2meg", "wavenet"]


def build(name: str, **overrides):
    cls = get_registry("models").load(name)
    config = cls.example_config().model_copy(
        update={"embedding": "amplitude", "head": "mixture", "vocab_size": 32, **overrides}
    )
    torch.manual_seed(0)
    return cls(cls.Config.model_validate(config.model_dump())).eval()


@pytest.mark.parametrize("name", MODELS)
def test_models_with_the_mu_law_layers_stay_causal_and_normalised(name):
    model = build(name)
    x = torch.randint(0, 32, (2, model.config.n_channels, 12))
    with torch.no_grad():
        log_probs = model(x)
        changed = x.clone()
        changed[..., 8:] = (changed[..., 8:] + 5) % 32
        later = model(changed)
    assert log_probs.shape == (2, model.config.n_channels, 12, 32)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:-1]))
    torch.testing.assert_close(log_probs[..., :8, :], later[..., :8, :])
    assert not torch.allclose(log_probs[..., 8:, :], later[..., 8:, :])


@pytest.mark.parametrize("name", MODELS)
def test_cached_generation_equals_recomputation_with_the_mixture_head(name):
    model = build(name)
    context = torch.randint(0, 32, (2, model.config.n_channels, 6))
    argmax = Sampler(strategy="argmax")
    cached = model.forecast(context, 8, sampler=argmax)
    assert torch.equal(cached, model.forecast(context, 8, sampler=argmax, use_cache=False))


def test_the_mu_law_layers_need_mu_law_codes():
    config = get_registry("models").config_model("gpt2meg")(
        n_channels=2, vocab_size=16, embedding="amplitude"
    )
    spec = {"n_channels": 2, "vocab_size": 16, "n_times": 8}
    assert "mu-law" in " ".join(config.check_data(spec))
    assert config.check_data({**spec, "codes": "mulaw"}) == []
