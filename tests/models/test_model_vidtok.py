"""VidTok-FSQ sensor-image tokenizer specifics: shapes, exact causality, training, data checks."""

from __future__ import annotations

import math

import pytest
import torch
from engine_helpers import reconstruction_before_and_after, train_tokenizer_briefly

from ephys_models.configs.vidtok import VidTokConfig
from ephys_models.reconstruction_loss import TokenizerReconstruction
from ephys_models.vidtok import VidTokFSQ

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(seed: int = 0, **overrides) -> VidTokFSQ:
    torch.manual_seed(seed)
    config = VidTokFSQ.Config(**{**VidTokFSQ.example_config().model_dump(), **overrides})
    return VidTokFSQ(config).eval()


def images(b: int = 2, side: int = 4, t: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, side, side, t, generator=torch.Generator().manual_seed(seed))


def smooth(b: int, side: int, t: int, seed: int = 1) -> torch.Tensor:
    """Sines over time whose phase drifts smoothly across the image, plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    time = torch.arange(t) / 32
    rows = torch.linspace(0, 1, side).reshape(1, side, 1, 1)
    cols = torch.linspace(0, 1, side).reshape(1, 1, side, 1)
    freq = 1 + torch.rand(b, 1, 1, 1, generator=gen)
    phase = 2 * math.pi * torch.rand(b, 1, 1, 1, generator=gen) + rows + 0.5 * cols
    noise = 0.05 * torch.randn(b, side, side, t, generator=gen)
    return torch.sin(2 * math.pi * freq * time + phase) + noise


# -- shapes ----------------------------------------------------------------------------------


def test_shapes_and_code_range():
    model = build()
    x = images(b=3, side=4, t=16)
    with torch.no_grad():
        out = model(x)
        codes = model.encode(x)
        decoded = model.decode(codes)
    assert model.time_stride == 4 and model.space_stride == 2
    assert model.vocab_size == 5 * 4 * 3
    assert list(out) == ["reconstruction", "codes", "commitment", "metrics"]
    assert out["reconstruction"].shape == (3, 4, 4, 16) == tuple(model.output_shape(x))
    assert codes.shape == out["codes"].shape == (3, 4, 2, 2) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < model.vocab_size
    assert decoded.shape == (3, 4, 4, 16)
    assert out["commitment"].ndim == 0 and float(out["commitment"]) == 0.0
    assert {"usage", "perplexity"} <= set(out["metrics"])
    # the default strides: 16 x 16 images of 32 samples give 8 x 8 codes over 8 steps
    default = VidTokFSQ(VidTokConfig(channels=2, fsq_levels=[3, 3])).eval()
    with torch.no_grad():
        assert default.encode(images(b=1, side=16, t=32)).shape == (1, 8, 8, 8)


def test_eval_forward_is_decode_of_encode():
    model = build()
    x = images()
    with torch.no_grad():
        out = model(x)
        codes = model.encode(x)
        assert torch.equal(codes, out["codes"])
        torch.testing.assert_close(model.decode(codes), out["reconstruction"])
        # other codes decode to other images
        assert not torch.allclose(model.decode((codes + 1) % model.vocab_size), model.decode(codes))


def test_inputs_are_checked():
    model = build()
    with pytest.raises(ValueError, match="not a multiple of the time stride 4"):
        model(images(t=14))
    with pytest.raises(ValueError, match="not multiples of the space stride 2"):
        model(images(side=5))
    with pytest.raises(ValueError, match=r"float \(B, H, W, T\)"):
        model(torch.zeros(2, 4, 4, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="codes must be"):
        model.decode(torch.zeros(2, 4, 2, dtype=torch.int64))


# -- causality -------------------------------------------------------------------------------


def test_each_sample_depends_exactly_on_the_code_steps_it_may_see():
    """Reconstructed sample t reads input samples up to floor((t + 1) / S) * S - 1, no later
    (and, for t >= S - 1, that sample itself): the first S - 1 samples read nothing."""
    model = build()
    x = images(b=1, t=16).requires_grad_(True)
    out = model(x)["reconstruction"]
    s = model.time_stride
    for t in range(16):
        (grad,) = torch.autograd.grad(out[..., t].sum(), x, retain_graph=True)
        touched = (grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
        last = (t + 1) // s * s - 1
        if last < 0:
            assert touched.numel() == 0, t
        else:
            assert int(touched.max()) == last, t


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("t", [1, 5, 8, 11, 15])
def test_perturbing_the_future_keeps_past_codes_and_samples(t, train):
    model = build().train(train)
    x = images(seed=2)
    changed = x.clone()
    changed[..., t:] += 3 * torch.randn(changed[..., t:].shape)
    with torch.no_grad():
        a, b = model(x), model(changed)
        codes_a, codes_b = model.encode(x), model.encode(changed)
    kept = t // model.time_stride  # code steps k with (k + 1) * S <= t
    assert torch.equal(codes_a[:, :kept], codes_b[:, :kept])
    assert torch.equal(a["codes"][:, :kept], b["codes"][:, :kept])
    assert torch.equal(a["reconstruction"][..., :t], b["reconstruction"][..., :t])
    # the future does change
    assert not torch.allclose(a["reconstruction"][..., t:], b["reconstruction"][..., t:])


# -- training --------------------------------------------------------------------------------


def test_a_few_adam_steps_cut_the_reconstruction_loss():
    model = build(channels=6, fsq_levels=[7, 5, 5, 5])
    x = smooth(4, 4, 32)
    before, after = reconstruction_before_and_after(model, x, x, steps=40, lr=1e-2)
    assert after["loss"] < 0.6 * before["loss"]
    assert after["l1"] < 0.6 * before["l1"]
    assert after["pcc"] > 0.5 > before["pcc"]


def test_gradient_reaches_the_encoder_through_the_quantiser():
    model = build().train()
    x = images()
    TokenizerReconstruction()(model(x), x)["loss"].backward()
    for param in (model.encoder[0].conv.weight, model.encoder[-1].conv.weight):
        assert param.grad is not None and float(param.grad.abs().sum()) > 0


def test_a_run_trains_with_the_engine(signal_root, tmp_path):
    train_tokenizer_briefly(
        signal_root,
        tmp_path,
        "sensor_image",
        {"image_size": 4, "target": "reconstruction"},
        "vidtok_fsq",
        VidTokFSQ.example_config().model_dump(),
        ("train/l1", "train/pcc", "train/usage", "train/perplexity"),
    )


# -- data checks -----------------------------------------------------------------------------


def spec(**overrides):
    base = {
        "n_channels": 8,
        "n_times": 32,
        "sfreq": 100.0,
        "image_size": 8,
        "grid": {"rows": list(range(8)), "cols": list(range(8))},
    }
    return {**base, **overrides}


def test_check_data_refusals():
    config = VidTokConfig()
    assert config.check_data(spec()) == []
    (tokens,) = config.check_data(spec(vocab_size=256))
    assert "token ids" in tokens
    no_image = spec()
    del no_image["image_size"], no_image["grid"]
    (not_images,) = config.check_data(no_image)
    assert "needs sensor images" in not_images and "sensor_image" in not_images
    (odd,) = config.check_data(spec(n_times=30))
    assert "30 samples are not a multiple of the time stride 4" in odd
    (side,) = VidTokConfig(space_strides=[2, 2]).check_data(spec(image_size=6))
    assert "6 pixels a side are not a multiple of the space stride 4" in side
    with pytest.raises(ValueError, match="must be odd"):
        VidTokConfig(spatial_kernel_size=2)
    with pytest.raises(ValueError, match=">= 2"):
        VidTokConfig(fsq_levels=[1, 3])


# -- determinism and weights -----------------------------------------------------------------


def test_eval_is_deterministic_and_a_state_dict_round_trip_keeps_the_codes():
    model = build(seed=0)
    x = images()
    with torch.no_grad():
        codes = model.encode(x)
        assert torch.equal(codes, model.encode(x))
        assert torch.equal(model(x)["reconstruction"], model(x)["reconstruction"])
        other = build(seed=1)
        assert not torch.equal(other(x)["reconstruction"], model(x)["reconstruction"])
        other.load_state_dict(model.state_dict())
        assert torch.equal(other.encode(x), codes)
        assert torch.equal(other(x)["reconstruction"], model(x)["reconstruction"])
