"""The training objective of learned tokenizers: time-domain, correlation and spectral terms
plus the quantiser's commitment loss.

torch is imported at module level: ephys imports this module only when the loss is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from ephys_core.components import Component
from ephys_models.configs.brainomni import RECONSTRUCTION_METRICS, TokenizerReconstructionConfig

__all__ = ["TokenizerReconstruction", "reconstruction_terms"]


def _prediction(outputs: Any) -> tuple[torch.Tensor, torch.Tensor | None, Mapping[str, Any]]:
    """``(reconstruction, commitment or None, quantiser metrics)`` of a model output."""
    if isinstance(outputs, Mapping):
        if "reconstruction" not in outputs:
            raise ValueError(
                "tokenizer_reconstruction: model outputs need a 'reconstruction' entry; got "
                f"{sorted(outputs)}"
            )
        return outputs["reconstruction"], outputs.get("commitment"), outputs.get("metrics", {})
    if isinstance(outputs, tuple | list):
        return outputs[0], None, {}
    return outputs, None, {}


def _targets(targets: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(targets, Mapping):
        if "y" not in targets:
            raise ValueError(
                f"tokenizer_reconstruction: mapping targets need a 'y' entry; got {sorted(targets)}"
            )
        return targets["y"], targets.get("mask")
    return targets, None


def reconstruction_terms(
    prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-6
) -> dict[str, torch.Tensor]:
    """Per-sensor reconstruction terms, each ``(..., C)`` for signals ``(..., C, T)``.

    Returns
    -------
    dict
        ``"l1"`` mean absolute error over time; ``"pcc"`` the Pearson correlation over time
        (``eps`` keeps it finite for flat signals: a flat sensor has correlation 0);
        ``"pcc_loss"`` ``exp(-pcc)`` (``exp(-1)`` for a perfect reconstruction);
        ``"spectral_amplitude"`` the mean ``|log(1 + |P|) - log(1 + |Y|)|`` over frequencies
        of the orthonormal real FFTs ``P`` and ``Y``; ``"spectral_phase"`` the mean over
        frequencies of ``1 - cos(phase(P) - phase(Y))`` weighted by ``|Y|`` (0 for identical
        signals, up to 2 for opposite ones).
    """
    p, y = prediction.float(), target.float()
    l1 = (p - y).abs().mean(-1)
    pc, yc = p - p.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    cov = (pc * yc).mean(-1)
    pcc = cov / torch.sqrt(pc.square().mean(-1) * yc.square().mean(-1) + eps)
    spec_p = torch.fft.rfft(p, dim=-1, norm="ortho")
    spec_y = torch.fft.rfft(y, dim=-1, norm="ortho")
    # |.| through sqrt(re^2 + im^2 + eps): finite gradients at zero amplitude
    amp_p = torch.sqrt(spec_p.real.square() + spec_p.imag.square() + eps)
    amp_y = torch.sqrt(spec_y.real.square() + spec_y.imag.square() + eps)
    amplitude = (torch.log1p(amp_p) - torch.log1p(amp_y)).abs().mean(-1)
    # 1 - cos(phase difference) as half the squared distance of the unit phasors: exactly 0
    # for equal spectra, and it fades out smoothly where an amplitude nears 0
    unit_p, unit_y = spec_p / amp_p, spec_y / amp_y
    diff = unit_p - unit_y
    mismatch = (diff.real.square() + diff.imag.square()) / 2
    weight = amp_y.detach()
    phase = (weight * mismatch).sum(-1) / weight.sum(-1)
    return {
        "l1": l1,
        "pcc": pcc,
        "pcc_loss": torch.exp(-pcc),
        "spectral_amplitude": amplitude,
        "spectral_phase": phase,
    }


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over ``(B, C)`` values, over the present sensors when a mask is given."""
    if mask is None:
        return values.mean()
    weight = mask.to(device=values.device, dtype=values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


class TokenizerReconstruction(Component):
    """Reconstruction loss of learned tokenizers (BrainOmni-style).

    ``loss = l1_weight * l1 + pcc_weight * pcc_loss + amplitude_weight * spectral_amplitude +
    phase_weight * spectral_phase + commitment_weight * commitment``, each term computed per
    sensor over time (:func:`reconstruction_terms`) and averaged over batch and sensors.

    ``outputs`` is a model output mapping with ``"reconstruction"`` ``(B, C, T)`` and
    optionally ``"commitment"`` (the quantiser loss, a scalar) and ``"metrics"`` (with
    ``"usage"`` and ``"perplexity"``), as :class:`ephys_models.brainomni.BrainOmni` returns;
    a plain tensor (or a tuple whose first entry is it) counts as a reconstruction without
    quantiser. ``targets`` is ``(B, C, T)`` or ``{"y": (B, C, T), "mask": (B, C) bool}``, which
    restricts every term to the present sensors.

    Metrics: the five terms (``l1``, ``pcc`` the mean correlation, ``pcc_loss``,
    ``spectral_amplitude``, ``spectral_phase``), ``commitment`` and the codebook ``usage``
    (fraction of codes used in the batch) and ``perplexity``, 0 when the outputs carry none.
    """

    Config: ClassVar[type[TokenizerReconstructionConfig]] = TokenizerReconstructionConfig
    metrics: ClassVar[tuple[str, ...]] = RECONSTRUCTION_METRICS

    def __init__(self, config: TokenizerReconstructionConfig | None = None) -> None:
        self.config = config or self.Config()

    def __call__(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        cfg = self.config
        prediction, commitment, quantiser = _prediction(outputs)
        y, mask = _targets(targets)
        if tuple(y.shape) != tuple(prediction.shape):
            raise ValueError(
                f"tokenizer_reconstruction: targets of shape {tuple(y.shape)} do not match the "
                f"reconstruction of shape {tuple(prediction.shape)}"
            )
        terms = {
            name: _masked_mean(value, mask)
            for name, value in reconstruction_terms(prediction, y, cfg.eps).items()
        }
        zero = torch.zeros((), device=prediction.device)
        commitment = zero if commitment is None else commitment.float().reshape(())
        loss = (
            cfg.l1_weight * terms["l1"]
            + cfg.pcc_weight * terms["pcc_loss"]
            + cfg.amplitude_weight * terms["spectral_amplitude"]
            + cfg.phase_weight * terms["spectral_phase"]
            + cfg.commitment_weight * commitment
        )
        result = {"loss": loss}
        result.update({name: value.detach() for name, value in terms.items()})
        result["commitment"] = commitment.detach()
        for name in ("usage", "perplexity"):
            value = quantiser.get(name)
            result[name] = zero if value is None else torch.as_tensor(value).detach().float()
        return result

    def example_inputs(self, batch_size: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
        gen = torch.Generator().manual_seed(0)
        y = torch.randn(batch_size, 3, 32, generator=gen)
        reconstruction = (y + 0.5 * torch.randn(y.shape, generator=gen)).requires_grad_(True)
        outputs = {
            "reconstruction": reconstruction,
            "codes": torch.randint(0, 8, (batch_size, 2, 3, 8), generator=gen),
            "commitment": torch.tensor(0.1, requires_grad=True),
            "metrics": {"usage": torch.tensor(0.5), "perplexity": torch.tensor(3.0)},
        }
        mask = torch.ones(batch_size, 3, dtype=torch.bool)
        mask[:, -1] = False
        return outputs, {"y": y, "mask": mask}
