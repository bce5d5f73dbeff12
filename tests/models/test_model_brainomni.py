"""BrainOmni tokenizer specifics: montage-free codes, exact causality, training, and its loss."""

from __future__ import annotations

import math

import pytest
import torch
from engine_helpers import reconstruction_before_and_after, train_tokenizer_briefly

from ephys_models.brainomni import BrainOmni
from ephys_models.configs.brainomni import BrainOmniConfig, TokenizerReconstructionConfig
from ephys_models.reconstruction_loss import TokenizerReconstruction, reconstruction_terms

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(seed: int = 0, **overrides) -> BrainOmni:
    torch.manual_seed(seed)
    config = BrainOmni.Config(**{**BrainOmni.example_config().model_dump(), **overrides})
    return BrainOmni(config).eval()


def fitted(seed: int = 0, **overrides) -> BrainOmni:
    """A model whose codebooks k-means initialised on a batch, so that codes vary."""
    model = build(seed, **overrides).train()
    model(batch(b=4, seed=seed + 10))
    return model.eval()


def batch(b: int = 2, c: int = 5, t: int = 32, p: int = 6, seed: int = 0, shared: bool = False):
    gen = torch.Generator().manual_seed(seed)
    lead = () if shared else (b,)
    return {
        "x": torch.randn(b, c, t, generator=gen),
        "pos": torch.randn(*lead, c, p, generator=gen),
        "ch_type": torch.randint(0, 3, (*lead, c), generator=gen),
    }


def sines(b: int, c: int, t: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    time = torch.arange(t) / 32
    freq = 1 + 2 * torch.rand(b, c, 1, generator=gen)
    phase = 2 * math.pi * torch.rand(b, c, 1, generator=gen)
    return torch.sin(2 * math.pi * freq * time + phase) + 0.1 * torch.randn(b, c, t, generator=gen)


# -- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("geometry_dim", "p"), [(None, 6), (None, 2), (6, 6), (2, 2)])
def test_shapes_of_forward_encode_and_decode(geometry_dim, p):
    model = build(geometry_dim=geometry_dim)
    inputs = batch(b=3, c=5, t=32, p=p)
    steps = 32 // model.time_stride
    with torch.no_grad():
        out = model(inputs)
        codes = model.encode(inputs)
        decoded = model.decode(codes, inputs["pos"], inputs["ch_type"])
    assert model.time_stride == 4 and model.vocab_size == model.codebook_size == 8
    assert list(out) == ["reconstruction", "codes", "commitment", "metrics"]
    assert out["reconstruction"].shape == (3, 5, 32) == tuple(model.output_shape(inputs))
    assert codes.shape == out["codes"].shape == (3, model.levels, model.n_latents, steps)
    assert codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < model.codebook_size
    assert decoded.shape == (3, 5, 32)
    assert out["commitment"].ndim == 0 and {"usage", "perplexity"} <= set(out["metrics"])


def test_eval_forward_is_decode_of_encode_and_fewer_levels_decode():
    model = build()
    inputs = batch()
    with torch.no_grad():
        out = model(inputs)
        codes = model.encode(inputs)
        assert torch.equal(codes, out["codes"])
        full = model.decode(codes, inputs["pos"], inputs["ch_type"])
        coarse = model.decode(codes, inputs["pos"], inputs["ch_type"], n_levels=1)
    torch.testing.assert_close(full, out["reconstruction"])
    assert coarse.shape == full.shape and not torch.allclose(coarse, full)


def test_shared_geometry_equals_batched_geometry():
    model = build()
    shared = batch(b=3, shared=True)
    batched = {
        **shared,
        "pos": shared["pos"].expand(3, -1, -1),
        "ch_type": shared["ch_type"].expand(3, -1),
    }
    with torch.no_grad():
        a, b = model(shared), model(batched)
    assert torch.equal(a["codes"], b["codes"])
    torch.testing.assert_close(a["reconstruction"], b["reconstruction"])


def test_codes_do_not_depend_on_the_montage_size():
    model = build()
    small, large = batch(b=2, c=10, t=32, seed=1), batch(b=2, c=14, t=32, seed=2)
    with torch.no_grad():
        small_codes, large_codes = model.encode(small), model.encode(large)
        # codes of one montage decode onto another
        onto_large = model.decode(small_codes, large["pos"], large["ch_type"])
    assert small_codes.shape == large_codes.shape == (2, model.levels, model.n_latents, 8)
    assert onto_large.shape == (2, 14, 32)


def test_sensor_geometry_and_type_change_the_codes():
    model = build()
    inputs = batch()
    moved = {**inputs, "pos": inputs["pos"] + 1.0}
    retyped = {**inputs, "ch_type": (inputs["ch_type"] + 1) % 3}
    with torch.no_grad():
        latents = [
            model._latents(v["x"], model._sensor_embedding(v["pos"], v["ch_type"], 2))
            for v in (inputs, moved, retyped)
        ]
    assert not torch.allclose(latents[0], latents[1])
    assert not torch.allclose(latents[0], latents[2])


def test_inputs_are_checked():
    model = build(geometry_dim=6)
    with pytest.raises(ValueError, match="geometry_dim is 6"):
        model(batch(p=2))
    with pytest.raises(ValueError, match="2 .layout. or 6"):
        build()(batch(p=3))
    with pytest.raises(ValueError, match="not a multiple of the time stride 4"):
        model(batch(t=30))
    bad_type = batch()
    bad_type["ch_type"] = bad_type["ch_type"] + 5
    with pytest.raises(ValueError, match="n_sensor_types=3"):
        model(bad_type)
    with pytest.raises(ValueError, match="mapping with 'x'"):
        model(torch.randn(2, 5, 32))


# -- causality -------------------------------------------------------------------------------


def test_each_sample_depends_exactly_on_the_code_steps_it_may_see():
    """Reconstructed sample t reads input samples up to floor((t + 1) / S) * S - 1, no later
    (and, for t >= S - 1, that sample itself): the first S - 1 samples read nothing."""
    model = build()
    inputs = batch(b=1, t=32)
    x = inputs["x"].clone().requires_grad_(True)
    out = model({**inputs, "x": x})["reconstruction"]
    s = model.time_stride
    for t in range(32):
        (grad,) = torch.autograd.grad(out[..., t].sum(), x, retain_graph=True)
        touched = (grad.abs().sum((0, 1)) > 0).nonzero().flatten()
        last = (t + 1) // s * s - 1
        if last < 0:
            assert touched.numel() == 0, t
        else:
            assert int(touched.max()) == last, t


@pytest.mark.parametrize("t", [1, 5, 12, 19, 28, 31])
def test_perturbing_the_future_keeps_past_codes_and_samples(t):
    model = fitted()
    inputs = batch()
    changed = {**inputs, "x": inputs["x"].clone()}
    changed["x"][..., t:] += 3 * torch.randn(changed["x"][..., t:].shape)
    with torch.no_grad():
        a, b = model(inputs), model(changed)
        codes_a, codes_b = model.encode(inputs), model.encode(changed)
    s = model.time_stride
    kept = t // s  # code steps k with (k + 1) * s <= t
    assert torch.equal(codes_a[..., :kept], codes_b[..., :kept])
    assert torch.equal(a["codes"][..., :kept], b["codes"][..., :kept])
    assert torch.equal(a["reconstruction"][..., :t], b["reconstruction"][..., :t])
    if t <= 32 - 2 * s:  # whole code steps were perturbed: the future changes
        assert not torch.equal(codes_a, codes_b)
        assert not torch.allclose(a["reconstruction"][..., t:], b["reconstruction"][..., t:])


# -- training --------------------------------------------------------------------------------


def test_a_few_adam_steps_cut_the_reconstruction_loss():
    model = build(dim=16, channels=8, n_latents=6, codebook_size=32, levels=3, decay=0.8)
    gen = torch.Generator().manual_seed(1)
    x = sines(4, 6, 64)
    inputs = {"x": x, "pos": torch.randn(6, 6, generator=gen), "ch_type": torch.arange(6) % 3}
    before, after = reconstruction_before_and_after(model, inputs, x, steps=60, lr=5e-3)
    assert after["loss"] < 0.6 * before["loss"]
    assert after["l1"] < 0.75 * before["l1"]
    assert after["pcc"] > 0.5 > before["pcc"]


def test_gradient_reaches_the_encoder_through_the_quantiser():
    model = build().train()
    inputs = batch()
    result = TokenizerReconstruction()(model(inputs), inputs["x"])
    result["loss"].backward()
    for param in (
        model.encoder[0].conv.weight,
        model.latent_queries,
        model.pre_quant.weight,
        model.sensors.position[0].weight,
    ):
        assert param.grad is not None and float(param.grad.abs().sum()) > 0


def test_a_run_trains_with_the_engine(signal_root, tmp_path):
    train_tokenizer_briefly(
        signal_root,
        tmp_path,
        "reconstruction",
        {"geometry": "3d"},
        "brainomni",
        BrainOmni.example_config().model_dump(),
        ("train/l1", "train/pcc", "train/spectral_phase", "train/usage"),
    )


# -- the loss --------------------------------------------------------------------------------


def test_loss_terms_of_a_perfect_and_of_a_shuffled_reconstruction():
    y = sines(2, 4, 64)
    perfect = reconstruction_terms(y, y)
    torch.testing.assert_close(
        perfect["pcc_loss"], torch.full((2, 4), math.exp(-1)), atol=1e-4, rtol=0
    )
    assert float(perfect["l1"].abs().max()) == 0.0
    assert float(perfect["spectral_amplitude"].abs().max()) == 0.0
    assert float(perfect["spectral_phase"].abs().max()) < 1e-5
    shuffled = reconstruction_terms(y[..., torch.randperm(64, generator=torch.Generator())], y)
    assert bool((shuffled["pcc_loss"] > math.exp(-1) + 0.2).all())
    assert bool((shuffled["spectral_phase"] > 0.1).all())
    assert bool((shuffled["spectral_amplitude"] > 0).all())
    flipped = reconstruction_terms(-y, y)
    torch.testing.assert_close(flipped["pcc_loss"], torch.full((2, 4), math.e), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        flipped["spectral_phase"], torch.full((2, 4), 2.0), atol=1e-3, rtol=0
    )


def test_loss_combines_weighted_terms_masks_and_the_commitment():
    y = sines(2, 3, 32)
    prediction = y + 0.3 * sines(2, 3, 32, seed=4)
    mask = torch.tensor([[True, True, False], [True, True, False]])
    outputs = {"reconstruction": prediction, "commitment": torch.tensor(0.5), "metrics": {}}
    loss = TokenizerReconstruction(TokenizerReconstructionConfig(commitment_weight=2.0))
    result = loss(outputs, {"y": y, "mask": mask})
    terms = {k: v[:, :2].mean() for k, v in reconstruction_terms(prediction, y).items()}
    expected = (
        terms["l1"]
        + terms["pcc_loss"]
        + terms["spectral_amplitude"]
        + 0.5 * terms["spectral_phase"]
        + 2.0 * 0.5
    )
    torch.testing.assert_close(result["loss"], expected)
    assert set(result) == {"loss", *TokenizerReconstruction.metrics}
    # the masked sensor does not count
    changed = prediction.clone()
    changed[:, 2] += 10
    again = loss({**outputs, "reconstruction": changed}, {"y": y, "mask": mask})
    torch.testing.assert_close(again["loss"], result["loss"])
    # a plain tensor is a reconstruction without quantiser
    plain = loss(prediction, y)
    assert float(plain["commitment"]) == float(plain["usage"]) == 0.0


# -- data checks -----------------------------------------------------------------------------


def spec(**overrides):
    base = {
        "n_channels": 4,
        "n_times": 32,
        "sfreq": 100.0,
        "ch_types": ["mag", "grad", "grad", "eeg"],
        "pos_2d": [[0.0, 0.0]] * 4,
    }
    return {**base, **overrides}


def test_check_data_refusals():
    config = BrainOmniConfig()
    assert config.check_data(spec()) == []
    (tokens,) = config.check_data(spec(vocab_size=256))
    assert "token ids" in tokens
    (odd,) = config.check_data(spec(n_times=30))
    assert "30 samples are not a multiple of the time stride 4" in odd
    (no_pos,) = config.check_data(spec(pos_2d=None))
    assert "no sensor positions" in no_pos
    (types,) = BrainOmniConfig(n_sensor_types=2).check_data(spec())
    assert "3 sensor types" in types
    (loss_tokens,) = TokenizerReconstructionConfig().check_data(spec(vocab_size=256))
    assert "token ids" in loss_tokens
    with pytest.raises(ValueError, match="must divide dim"):
        BrainOmniConfig(dim=10, n_heads=4)


# -- determinism and weights -----------------------------------------------------------------


def test_eval_is_deterministic_and_a_state_dict_round_trip_keeps_the_codes():
    model = build(seed=0).train()
    inputs = batch()
    model(inputs)  # k-means initialises and moves the codebooks (buffers)
    model.eval()
    with torch.no_grad():
        codes = model.encode(inputs)
        assert torch.equal(codes, model.encode(inputs))
        assert torch.equal(model(inputs)["reconstruction"], model(inputs)["reconstruction"])
        other = build(seed=1)
        assert not torch.equal(other.encode(inputs), codes)
        other.load_state_dict(model.state_dict())
        assert torch.equal(other.encode(inputs), codes)
        assert torch.equal(other(inputs)["reconstruction"], model(inputs)["reconstruction"])
