"""The brainomni tokenizer: a trained model exported as a tokenizer folder, encoding prepared
data into code datasets (in blocks, by channel name) with the identity of its weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import tiny_run

from ephys_core.config import load_config
from ephys_core.errors import ConfigError
from ephys_data.encoding import encode_dataset
from ephys_data.format import PreparedDataset
from ephys_models.brainomni import BrainOmni
from ephys_models.brainomni_tokenizer import BrainOmniTokenizer, receptive_field
from ephys_models.tokenizer_export import export_tokenizer
from ephys_tokenizers.artifact import load_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tokenizer(block_steps: int = 2048) -> BrainOmniTokenizer:
    torch.manual_seed(0)
    tokenizer = BrainOmniTokenizer()
    config = tokenizer.config.model_copy(update={"block_steps": block_steps})
    other = BrainOmniTokenizer(config)
    other.load_state(tokenizer.state())
    return other


def test_codes_flatten_levels_by_latents_and_decode_onto_the_montage():
    tokenizer = _tokenizer()
    x = tokenizer.example_input(batch_size=3)
    codes = tokenizer.encode(x)
    model = tokenizer.model
    assert codes.shape == (3, model.levels * model.n_latents, x.shape[-1] // model.time_stride)
    grid = model.encode(
        {"x": torch.as_tensor(x), "pos": tokenizer._pos, "ch_type": tokenizer._types}
    )
    assert np.array_equal(codes, grid.reshape(3, -1, grid.shape[-1]).numpy())
    decoded = tokenizer.decode(codes)
    assert decoded.shape == x.shape and decoded.dtype == np.float32
    assert isinstance(tokenizer.encode(torch.as_tensor(x)), torch.Tensor)


def test_encoding_in_blocks_gives_the_codes_of_one_pass():
    whole, blocks = _tokenizer(), _tokenizer(block_steps=3)
    assert receptive_field(whole.model) > whole.time_stride  # the blocks must overlap
    x = np.random.default_rng(1).standard_normal((2, 5, 40 * whole.time_stride)).astype(np.float32)
    assert np.array_equal(whole.encode(x), blocks.encode(x))


def test_a_trailing_partial_step_is_dropped_and_bad_input_refused():
    tokenizer = _tokenizer()
    stride = tokenizer.time_stride
    x = tokenizer.example_input(batch_size=1)
    longer = np.concatenate([x, x[..., : stride - 1]], axis=-1)
    assert np.array_equal(tokenizer.encode(longer), tokenizer.encode(x))
    with pytest.raises(ValueError, match="montage of 5 channels"):
        tokenizer.encode(x[:, :4])
    bad = x.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tokenizer.encode(bad)
    with pytest.raises(ValueError, match=r"codes must lie in \[0,"):
        tokenizer.decode(np.full((1, tokenizer.code_rows, 4), tokenizer.vocab_size))


def _train(root, out, name, steps=2, seed=3):
    config = tiny_run(
        root,
        out,
        name=name,
        seed=seed,
        data={
            "dataset": {
                "name": "reconstruction",
                "params": {
                    "roots": [str(root)],
                    "window_seconds": 0.32,
                    "geometry": "3d",
                    "channels": ["CH001", "CH003", "CH004", "CH006"],
                    "split": {"val": 0.2, "test": 0.2},
                },
            },
            "batch_size": 4,
        },
        model={"name": "brainomni", "params": BrainOmni.example_config().model_dump()},
        loss={"name": "tokenizer_reconstruction"},
        trainer={"max_steps": steps},
    )
    from ephys_models.training import train

    train(load_config(config))
    return out / name / "checkpoints" / "last.ckpt"


def test_export_encode_and_identity(signal_root, tmp_path):
    first = export_tokenizer(_train(signal_root, tmp_path, "a"), tmp_path / "tok-a")
    assert first.name == "brainomni"
    facts = first.fitted_on
    assert facts["ch_names"] == ["CH001", "CH003", "CH004", "CH006"]
    assert facts["train_sessions"] >= 1 and facts["checkpoint"] == "last.ckpt"
    loaded = load_tokenizer(tmp_path / "tok-a")
    assert loaded.identity == first.identity
    # other weights, another identity
    second = export_tokenizer(_train(signal_root, tmp_path, "b", steps=3), tmp_path / "tok-b")
    assert second.identity != first.identity
    # a code dataset takes the montage's channels by name from every session
    summary = encode_dataset(loaded, [signal_root], tmp_path / "codes")
    assert summary.done
    source = {s.name: s for s in PreparedDataset(signal_root).sessions()}
    names = source[summary.done[0]].meta["ch_names"]
    rows = [names.index(n) for n in facts["ch_names"]]
    session = PreparedDataset(tmp_path / "codes").session(summary.done[0])
    expected = loaded.tokenizer.encode(np.asarray(source[session.name].data)[rows][None])[0]
    assert np.array_equal(session.data, expected)
    assert session.sfreq == pytest.approx(source[session.name].sfreq / loaded.tokenizer.time_stride)
    assert session.meta["ch_names"][0] == "latent000"
    # its card scores the montage's channels, taken by name, on data it was not trained on
    from ephys_eval.tokenizer_card import tokenizer_card

    card = tokenizer_card(loaded, [signal_root], tmp_path / "card", segments=2, seconds=2)
    assert card.summary["data"]["n_channels"] == 4
    assert card.summary["codes"]["layout"][0] == loaded.tokenizer.code_rows
    assert "<4 values>" in card.markdown.read_text()  # the montage, not its coordinates


def test_export_refuses_a_model_that_is_not_a_tokenizer(signal_root, tmp_path):
    from ephys_models.training import train

    train(load_config(tiny_run(signal_root, tmp_path, name="lm")))
    with pytest.raises(ConfigError, match="not a tokenizer"):
        export_tokenizer(tmp_path / "lm" / "checkpoints" / "last.ckpt", tmp_path / "tok")
