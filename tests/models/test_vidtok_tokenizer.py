"""The vidtok_fsq tokenizer: a trained sensor-image model exported as a tokenizer folder that
encodes a montage's channels through their pixels, in blocks with the codes of one pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_helpers import tiny_run

from ephys_core.config import load_config
from ephys_data.encoding import encode_dataset
from ephys_data.format import PreparedDataset
from ephys_models.tokenizer_export import export_tokenizer
from ephys_models.vidtok import VidTokFSQ
from ephys_models.vidtok_tokenizer import VidTokTokenizer
from ephys_tokenizers.artifact import load_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tokenizer(block_steps: int = 2048) -> VidTokTokenizer:
    torch.manual_seed(0)
    first = VidTokTokenizer()
    other = VidTokTokenizer(first.config.model_copy(update={"block_steps": block_steps}))
    other.load_state(first.state())
    return other


def test_codes_are_the_models_on_the_sensor_image():
    tokenizer = _tokenizer()
    x = tokenizer.example_input(batch_size=2)
    codes = tokenizer.encode(x)
    image = np.zeros((2, 4, 4, x.shape[-1]), dtype=np.float32)
    image[:, tokenizer.config.rows, tokenizer.config.cols] = x
    grid = tokenizer.model.encode(torch.as_tensor(image))  # (B, T', H', W')
    assert codes.shape == (2, tokenizer.code_rows, x.shape[-1] // tokenizer.time_stride)
    assert np.array_equal(codes, grid.permute(0, 2, 3, 1).reshape(2, tokenizer.code_rows, -1))
    decoded = tokenizer.decode(codes)
    expected = tokenizer.model.decode(grid)[:, tokenizer.config.rows, tokenizer.config.cols]
    assert np.allclose(decoded, expected.detach().numpy(), atol=1e-6)


def test_blocks_give_the_codes_of_one_pass():
    whole, blocks = _tokenizer(), _tokenizer(block_steps=3)
    assert whole.receptive_field > whole.time_stride
    x = np.random.default_rng(2).standard_normal((1, 5, 24 * whole.time_stride))
    assert np.array_equal(whole.encode(x), blocks.encode(x))


def test_a_trained_model_exports_and_encodes_a_dataset(signal_root, tmp_path):
    from ephys_models.training import train

    config = tiny_run(
        signal_root,
        tmp_path,
        name="vt",
        data={
            "dataset": {
                "name": "sensor_image",
                "params": {
                    "roots": [str(signal_root)],
                    "window_seconds": 0.32,
                    "image_size": 4,
                    "target": "reconstruction",
                    "split": {"val": 0.2, "test": 0.2},
                },
            },
            "batch_size": 4,
        },
        model={"name": "vidtok_fsq", "params": VidTokFSQ.example_config().model_dump()},
        loss={"name": "tokenizer_reconstruction"},
        trainer={"max_steps": 2},
    )
    train(load_config(config))
    artifact = export_tokenizer(tmp_path / "vt" / "checkpoints" / "last.ckpt", tmp_path / "tok")
    assert artifact.name == "vidtok_fsq" and len(artifact.fitted_on["ch_names"]) == 8
    loaded = load_tokenizer(tmp_path / "tok")
    assert loaded.identity == artifact.identity
    summary = encode_dataset(loaded, [signal_root], tmp_path / "codes")
    session = PreparedDataset(tmp_path / "codes").session(summary.done[0])
    source = PreparedDataset(signal_root).session(summary.done[0])
    assert session.data.shape == (
        loaded.tokenizer.code_rows,
        source.n_times // loaded.tokenizer.time_stride,
    )
    assert np.array_equal(session.data, loaded.tokenizer.encode(np.asarray(source.data)))
    from ephys_eval.tokenizer_card import tokenizer_card

    card = tokenizer_card(loaded, [signal_root], tmp_path / "card", segments=2, seconds=2)
    assert card.summary["data"]["n_channels"] == 8
    assert card.summary["codes"]["layout"][0] == loaded.tokenizer.code_rows
