"""MuLawTokenizer: persisted amplitude scale, numpy and torch, stored transforms."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ephys_tokenizers import MuLawTokenizer, mulaw


def tokenizer(mu: int = 255, amplitude: float = 3.2e-12) -> MuLawTokenizer:
    return MuLawTokenizer(MuLawTokenizer.Config(mu=mu, amplitude=amplitude))


def test_decoded_signals_come_back_in_the_units_given():
    tok = tokenizer()
    x = tok.example_input(batch_size=3)
    assert 1e-13 < np.abs(x).max() < 3.2e-12  # tesla-sized values
    codes = tok.encode(x)
    assert codes.shape == x.shape and codes.dtype == np.uint8
    assert tok.vocab_size == 256 and int(codes.max()) < tok.vocab_size
    y = tok.decode(codes)
    assert y.dtype == np.float32 and y.shape == x.shape
    error = np.linalg.norm(y - x) / np.linalg.norm(x)
    assert error < tok.roundtrip_tolerance
    assert np.abs(y - x).max() < 0.03 * 3.2e-12


def test_numpy_and_torch_agree():
    torch = pytest.importorskip("torch")
    tok = tokenizer()
    x = tok.example_input()
    codes = tok.encode(torch.from_numpy(x))
    assert isinstance(codes, torch.Tensor) and codes.dtype == torch.int64
    np.testing.assert_array_equal(codes.numpy(), tok.encode(x))
    decoded = tok.decode(codes)
    assert isinstance(decoded, torch.Tensor) and decoded.dtype == torch.float32
    np.testing.assert_allclose(decoded.numpy(), tok.decode(tok.encode(x)), rtol=1e-6, atol=1e-20)


@pytest.mark.parametrize("mu", [3, 15, 63, 255, 1023, 65535])
def test_stated_tolerance_holds_for_every_mu(mu):
    tok = tokenizer(mu=mu, amplitude=2.0)
    x = tok.example_input(batch_size=4)
    error = np.linalg.norm(tok.decode(tok.encode(x)) - x) / np.linalg.norm(x)
    assert error <= tok.roundtrip_tolerance
    assert tok.vocab_size == mu + 1


def test_zero_and_clipping():
    tok = tokenizer(amplitude=2.0)
    codes = tok.encode(np.array([[0.0, 5.0, -5.0, 2.0, -2.0]]))
    assert codes.tolist() == [[128, 255, 0, 255, 0]]
    assert abs(float(tok.decode(codes)[0, 0])) < 1e-3 * 2.0
    np.testing.assert_allclose(tok.decode(codes)[0, 1:], [2.0, -2.0, 2.0, -2.0], rtol=1e-6)


def test_codes_are_sample_wise_and_causal():
    tok = tokenizer()
    x = tok.example_input()
    changed = x.copy()
    changed[..., 100:] *= -3
    np.testing.assert_array_equal(tok.encode(x)[..., :100], tok.encode(changed)[..., :100])
    assert tok.causal and tok.time_stride == 1


def test_from_transforms_uses_the_stored_mulaw_entry():
    transforms = [
        {"kind": "normalize", "method": "robust", "center": [0.0], "scale": [1.0]},
        {"kind": "mulaw", "mu": 127, "amplitude": 4.5, "reconstruction_mse": 0.01},
    ]
    tok = MuLawTokenizer.from_transforms(transforms)
    assert tok.config == MuLawTokenizer.Config(mu=127, amplitude=4.5)
    assert tok.vocab_size == 128
    with pytest.raises(ValueError, match="mulaw"):
        MuLawTokenizer.from_transforms(transforms[:1])
    with pytest.raises(ValueError, match="amplitude"):
        MuLawTokenizer.from_transforms([{"kind": "mulaw", "mu": 255}])


def test_decodes_data_prepared_by_the_mulaw_stage():
    pytest.importorskip("ephys_data")
    from ephys_data.recording import Recording
    from ephys_data.stages.scaling import MuLaw

    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 500)) * 1e-12
    recording = Recording.from_array(data, sfreq=100.0, ch_names=["a", "b", "c"])
    prepared = MuLaw(MuLaw.Config())(recording)
    tok = MuLawTokenizer.from_transforms(prepared.transforms)
    codes = prepared.get_data()
    np.testing.assert_array_equal(tok.encode(data), codes)
    decoded = tok.decode(codes)
    assert np.linalg.norm(decoded - data) / np.linalg.norm(data) < 0.03
    np.testing.assert_allclose(decoded, mulaw.decode(codes) * tok.config.amplitude, rtol=1e-6)


def test_from_signal_and_config_round_trip():
    tok = MuLawTokenizer.from_signal(np.array([[0.5, -3.0, 1.0]]), mu=63)
    assert tok.config.amplitude == 3.0 and tok.vocab_size == 64
    again = MuLawTokenizer.Config.model_validate_json(tok.config.model_dump_json())
    assert again == tok.config
    with pytest.raises(ValueError, match="all-zero"):
        MuLawTokenizer.from_signal(np.zeros((2, 3)))


def test_importing_the_package_stays_light():
    code = (
        "import json, sys, ephys_tokenizers\n"
        "ephys_tokenizers.MuLawTokenizer\n"
        "print(json.dumps('torch' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(bad):
    x = np.zeros((2, 50))
    x[1, 7] = bad
    with pytest.raises(ValueError, match="got 1 NaN or infinite value.s. among 100"):
        mulaw.encode(x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        tokenizer(amplitude=1.0).encode(x)
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="got 1 NaN or infinite value.s. among 100"):
        mulaw.encode(torch.from_numpy(x).float())
    x[1, 7] = 0.0
    assert mulaw.encode(x).shape == (2, 50) and mulaw.encode(torch.from_numpy(x)).shape == (2, 50)
    assert mulaw.encode(np.zeros((0, 3))).shape == (0, 3)
