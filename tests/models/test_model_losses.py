"""CrossEntropy (ids, soft targets, channel masks, metrics) and MSE."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from ephys_models.losses import MSE, CrossEntropy
from ephys_tokenizers import mulaw


def ce(**params) -> CrossEntropy:
    return CrossEntropy(CrossEntropy.Config(**params))


def random_batch(seed: int = 0, v: int = 16):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 5, v, generator=gen, requires_grad=True)
    return logits, torch.randint(0, v, (2, 3, 5), generator=gen)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_torch_cross_entropy(smoothing):
    logits, y = random_batch()
    result = ce(label_smoothing=smoothing)(logits, y)
    expected = F.cross_entropy(logits.reshape(-1, 16), y.reshape(-1), label_smoothing=smoothing)
    torch.testing.assert_close(result["loss"], expected)
    assert set(result) == {"loss", "accuracy", "mse"}


def test_soft_targets_mix_the_losses_of_their_classes():
    logits, a = random_batch(0)
    _, b = random_batch(1)
    lam = 0.3
    soft = lam * F.one_hot(a, 16).float() + (1 - lam) * F.one_hot(b, 16).float()
    loss = ce()(logits, soft)["loss"]
    expected = lam * ce()(logits, a)["loss"] + (1 - lam) * ce()(logits, b)["loss"]
    torch.testing.assert_close(loss, expected)
    # one-hot soft targets are the same as ids, metrics included
    hard, onehot = ce()(logits, a), ce()(logits, F.one_hot(a, 16).float())
    for key in hard:
        torch.testing.assert_close(hard[key], onehot[key])


def test_mask_restricts_loss_and_metrics_to_present_channels():
    logits, y = random_batch()
    mask = torch.tensor([[True, False, True], [False, False, True]])
    result = ce()(logits, {"y": y, "mask": mask})
    keep = mask[..., None].expand_as(y)
    expected = F.cross_entropy(logits[keep], y[keep])
    torch.testing.assert_close(result["loss"], expected)
    acc = (logits.argmax(-1) == y)[keep].float().mean()
    torch.testing.assert_close(result["accuracy"], acc)
    # gradients reach present channels only
    (grad,) = torch.autograd.grad(result["loss"], logits)
    assert grad[0, 1].abs().sum() == 0 and grad[0, 0].abs().sum() > 0
    # nothing present: a finite zero
    none = ce()(logits, {"y": y, "mask": torch.zeros(2, 3, dtype=torch.bool)})
    assert float(none["loss"].detach()) == 0.0


def test_metrics_are_in_decoded_amplitude_units():
    v = 256
    y = torch.full((1, 2, 4), 0)  # code 0 decodes to -1
    perfect = F.one_hot(y, v).float() * 10
    result = ce()(perfect, y)
    assert float(result["accuracy"]) == 1.0 and float(result["mse"]) == 0.0
    opposite = F.one_hot(torch.full_like(y, v - 1), v).float() * 10  # decodes to +1
    result = ce()(opposite, y)
    assert float(result["accuracy"]) == 0.0
    torch.testing.assert_close(result["mse"], torch.tensor(4.0))
    # mu follows the vocabulary: V = 16 -> mu = 15
    logits, ids = random_batch(v=16)
    expected = (mulaw.decode(logits.argmax(-1), 15) - mulaw.decode(ids, 15)).square().mean()
    torch.testing.assert_close(ce()(logits, ids)["mse"], expected)


def test_model_output_containers_and_shape_errors():
    logits, y = random_batch()
    plain = ce()(logits, y)["loss"]
    torch.testing.assert_close(ce()((logits, "extra"), y)["loss"], plain)
    torch.testing.assert_close(ce()({"logits": logits}, y)["loss"], plain)
    with pytest.raises(ValueError, match="do not match"):
        ce()(logits, y[..., :-1])
    with pytest.raises(ValueError, match="'y'"):
        ce()(logits, {"target": y})


def test_mse_and_its_mask():
    gen = torch.Generator().manual_seed(0)
    out, y = torch.randn(2, 3, 7, generator=gen), torch.randn(2, 3, 7, generator=gen)
    loss = MSE(MSE.Config())
    result = loss(out, y)
    torch.testing.assert_close(result["loss"], F.mse_loss(out, y))
    torch.testing.assert_close(result["mae"], F.l1_loss(out, y))
    mask = torch.tensor([[True, True, False], [False, True, True]])
    masked = loss(out, {"y": y, "mask": mask})
    keep = mask[..., None].expand_as(y)
    torch.testing.assert_close(masked["loss"], F.mse_loss(out[keep], y[keep]))
    assert set(masked) == {"loss", *MSE.metrics}
    with pytest.raises(ValueError, match="do not match"):
        loss(out, y[:, :2])
