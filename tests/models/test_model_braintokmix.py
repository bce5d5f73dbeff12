"""BrainTokMix specifics: channels mixed jointly, exact causality, training and export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from engine_helpers import reconstruction_before_and_after, train_tokenizer_briefly

from ephys_models.braintokmix import BrainTokMix
from ephys_models.braintokmix_tokenizer import BrainTokMixTokenizer
from ephys_models.configs.braintokmix import BrainTokMixConfig, BrainTokMixTokenizerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(seed: int = 0, **overrides) -> BrainTokMix:
    torch.manual_seed(seed)
    config = BrainTokMix.Config(**{**BrainTokMix.example_config().model_dump(), **overrides})
    return BrainTokMix(config).eval()


def fitted(seed: int = 0, **overrides) -> BrainTokMix:
    """A model whose codebooks k-means initialised on a batch, so that codes vary."""
    model = build(seed, **overrides).train()
    model(signal(b=4, seed=seed + 10, c=model.config.n_channels))
    return model.eval()


def signal(b: int = 2, c: int = 5, t: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, c, t, generator=torch.Generator().manual_seed(seed))


def test_shapes_of_forward_encode_and_decode():
    model = build()
    x = signal(b=3)
    with torch.no_grad():
        out = model(x)
        codes = model.encode(x)
        decoded = model.decode(codes)
        coarse = model.decode(codes, n_levels=1)
    assert model.time_stride == 4 and model.vocab_size == 8
    assert list(out) == ["reconstruction", "codes", "commitment", "metrics"]
    assert out["reconstruction"].shape == (3, 5, 32) == model.output_shape(x)
    assert codes.shape == (3, model.levels, model.n_latents, 8) and codes.dtype == torch.int64
    assert torch.equal(codes, out["codes"])
    torch.testing.assert_close(decoded, out["reconstruction"])
    assert coarse.shape == decoded.shape and not torch.allclose(coarse, decoded)
    # the items of the reconstruction dataset work too; their geometry is not needed
    with torch.no_grad():
        mapped = model.encode({"x": x, "pos": torch.zeros(5, 2), "ch_type": torch.zeros(5)})
    assert torch.equal(mapped, codes)


def test_every_channel_reaches_every_latent():
    """The stem mixes the channels: each spatial token reads all of them."""
    model = build()
    x = signal(b=1).requires_grad_(True)
    latents = model._latents(x)  # (B, D, L, T')
    for j in range(model.n_latents):
        (grad,) = torch.autograd.grad(latents[:, :, j].sum(), x, retain_graph=True)
        assert bool((grad.abs().sum(-1) > 0).all()), j


def test_inputs_are_checked():
    model = build()
    with pytest.raises(ValueError, match="mixes 5 channels; the signal has 4"):
        model(signal(c=4))
    with pytest.raises(ValueError, match="not a multiple of the time stride 4"):
        model(signal(t=30))
    with pytest.raises(ValueError, match=r"float \(B, C, T\) signal"):
        model(signal().long())
    with pytest.raises(ValueError, match="codes must be"):
        model.decode(torch.zeros(1, 2, 4, 3, dtype=torch.int64))


def test_each_sample_depends_exactly_on_the_code_steps_it_may_see():
    """Reconstructed sample t reads input samples up to floor((t + 1) / S) * S - 1."""
    model = build()
    x = signal(b=1).requires_grad_(True)
    out = model(x)["reconstruction"]
    s = model.time_stride
    for t in range(32):
        (grad,) = torch.autograd.grad(out[..., t].sum(), x, retain_graph=True)
        touched = (grad.abs().sum((0, 1)) > 0).nonzero().flatten()
        last = (t + 1) // s * s - 1
        if last < 0:
            assert touched.numel() == 0, t
        else:
            assert int(touched.max()) == last, t


@pytest.mark.parametrize("t", [3, 12, 21])
def test_perturbing_the_future_keeps_past_codes_and_samples(t):
    model = fitted()
    x = signal()
    changed = x.clone()
    changed[..., t:] += 3 * torch.randn(changed[..., t:].shape)
    with torch.no_grad():
        a, b = model(x), model(changed)
    kept = t // model.time_stride
    assert torch.equal(a["codes"][..., :kept], b["codes"][..., :kept])
    assert torch.equal(a["reconstruction"][..., :t], b["reconstruction"][..., :t])
    assert not torch.equal(a["codes"], b["codes"])


def test_a_few_adam_steps_cut_the_reconstruction_loss():
    model = build(n_channels=6, dim=16, channels=16, n_latents=2, codebook_size=32, decay=0.8)
    gen = torch.Generator().manual_seed(1)
    time = torch.arange(64) / 32
    freq = 1 + 2 * torch.rand(4, 6, 1, generator=gen)
    x = torch.sin(2 * math.pi * freq * time) + 0.1 * torch.randn(4, 6, 64, generator=gen)
    before, after = reconstruction_before_and_after(model, x, x, steps=60, lr=5e-3)
    assert after["loss"] < 0.6 * before["loss"]
    assert after["pcc"] > 0.5 > before["pcc"]


def test_check_data_refusals():
    config = BrainTokMixConfig(n_channels=4)
    spec = {"n_channels": 4, "n_times": 32}
    assert config.check_data(spec) == []
    (tokens,) = config.check_data({**spec, "vocab_size": 256})
    assert "token ids" in tokens
    (odd,) = config.check_data({**spec, "n_times": 30})
    assert "30 samples are not a multiple of the time stride 4" in odd
    (count,) = config.check_data({**spec, "n_channels": 6})
    assert "n_channels is 4, but the data has 6 channels" in count
    with pytest.raises(ValueError, match="mixes 5 channels, but 2 channel names"):
        BrainTokMixTokenizerConfig(
            model=BrainTokMix.example_config().model_dump(), ch_names=["a", "b"]
        )


def test_the_tokenizer_encodes_in_blocks_with_the_codes_of_one_pass():
    torch.manual_seed(0)
    whole = BrainTokMixTokenizer()
    whole._take_weights(fitted())
    blocks = BrainTokMixTokenizer(whole.config.model_copy(update={"block_steps": 3}))
    blocks.load_state(whole.state())
    x = np.random.default_rng(2).standard_normal((1, 5, 24 * whole.time_stride))
    codes = whole.encode(x)
    assert codes.shape == (1, whole.code_rows, 24) == (1, 2 * 3, 24)
    assert np.array_equal(codes, blocks.encode(x))
    grid = whole.model.encode(torch.as_tensor(x, dtype=torch.float32))
    assert np.array_equal(codes, grid.reshape(1, 6, 24).numpy())


def test_a_run_trains_exports_and_encodes(signal_root, tmp_path):
    from ephys_data.encoding import encode_dataset
    from ephys_data.format import PreparedDataset
    from ephys_models.tokenizer_export import export_tokenizer
    from ephys_tokenizers.artifact import load_tokenizer

    params = BrainTokMix.example_config().model_dump()
    params.pop("n_channels")  # taken from the data
    train_tokenizer_briefly(
        signal_root,
        tmp_path,
        "reconstruction",
        {},
        "braintokmix",
        params,
        ("train/l1", "train/pcc", "train/usage"),
    )
    artifact = export_tokenizer(tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert artifact.name == "braintokmix" and loaded.identity == artifact.identity
    assert loaded.tokenizer.ch_names == artifact.fitted_on["ch_names"]
    summary = encode_dataset(loaded, [signal_root], tmp_path / "codes")
    session = PreparedDataset(tmp_path / "codes").session(summary.done[0])
    source = PreparedDataset(signal_root).session(summary.done[0])
    assert np.array_equal(session.data, loaded.tokenizer.encode(np.asarray(source.data)))
