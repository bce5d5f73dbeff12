"""Layers that know mu-law codes are ordered amplitudes, not unrelated symbols.

A plain token embedding and a ``V``-way softmax treat code 130 as unrelated to code 131. For
mu-law codes that throws away what matters most: neighbouring codes are neighbouring
amplitudes, and the next sample of a brain signal is, to a first approximation, a smooth
(often linear) function of the previous ones with a unimodal spread around it. A model has
to learn all of that from data before it can even match a linear autoregression.

:class:`AmplitudeEmbedding` (``embedding: amplitude``)
    adds to each code's learned vector a learned linear map of the code's amplitude
    (mu-law decoded, in ``[-1, 1]``) and of its companded value, so the first layer can
    compute linear functions of the past amplitudes at once.
:class:`MixtureHead` (``head: mixture``)
    predicts, per time step and channel, a mixture of ``K`` Gaussians over the amplitude and
    turns it into the probability of each code from the density at the code's amplitude
    times its bin's width (:func:`ephys_tokenizers.mulaw.bin_edges`), normalised over the
    codes: a discretised mixture, in the spirit of PixelCNN++'s for pixel values. Its output
    is normalised log-probabilities ``(..., V)``, used wherever logits are (the cross-entropy
    loss, sampling, evaluation).

Both assume the codes are mu-law codes with ``mu = V - 1`` (what ``mulaw_next_step`` and
``tokens_next_step`` serve); the model configurations check that the data says so.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ephys_tokenizers import mulaw

__all__ = ["AmplitudeEmbedding", "MixtureHead", "Prior", "code_features"]

#: a Gaussian predictive per code position: mean and log-sd in the amplitude domain, each
#: ``(...)`` (what :class:`~ephys_models.highway.LinearHighway` gives)
Prior = tuple[torch.Tensor, torch.Tensor]


def code_features(vocab_size: int) -> torch.Tensor:
    """``(V, 2)``: each code's amplitude (mu-law decoded) and companded value, in [-1, 1]."""
    codes = torch.arange(vocab_size)
    amplitude = mulaw.decode(codes, vocab_size - 1)
    companded = codes.float() / (vocab_size - 1) * 2 - 1
    return torch.stack([amplitude, companded], dim=-1)


class AmplitudeEmbedding(nn.Module):
    """A learned linear map of each code's amplitude and companded value, ``(...) -> (..., D)``.

    Added to a model's own code vectors, it tells the first layer how loud each past sample
    was, so that linear functions of the past amplitudes are available from the start.

    Parameters
    ----------
    vocab_size
        Codes ``V`` (mu-law with ``mu = V - 1``).
    dim
        Embedding width ``D``.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(2, dim, bias=False)
        self.register_buffer("features", code_features(vocab_size), persistent=False)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features[codes])


class MixtureHead(nn.Module):
    """Discretised Gaussian mixture over code bins: hidden ``(..., D)`` -> log-probs ``(..., V)``.

    Component ``j`` (weight ``w_j``, mean ``m_j``, scale ``s_j``, in the amplitude domain
    ``[-1, 1]``) gives code ``k`` the probability ``w_j N(c_k; m_j, s_j) d_k``, with ``c_k``
    the code's amplitude and ``d_k`` its bin's width (the midpoint rule), summed over the
    components and normalised over the codes. In log space each component's term is a
    quadratic in ``c_k``, so the whole head is a small matrix product per component: about
    as cheap as a softmax layer, where evaluating cumulative distributions at every bin edge
    costs an order of magnitude more on a CPU.

    Parameters
    ----------
    dim
        Hidden width ``D``; ``None`` when the model computes the ``3 K`` mixture parameters
        itself and calls :meth:`log_probs` (WaveNet's convolutional head does).
    vocab_size
        Codes ``V`` (mu-law, ``mu = V - 1``).
    components
        Gaussian components ``K``.
    """

    def __init__(self, dim: int | None, vocab_size: int, components: int = 1) -> None:
        super().__init__()
        self.vocab_size, self.components = vocab_size, components
        self.proj = nn.Linear(dim, 3 * components) if dim is not None else None
        mu = vocab_size - 1
        centres = torch.as_tensor(mulaw.decode(torch.arange(vocab_size), mu), dtype=torch.float32)
        edges = torch.as_tensor(mulaw.bin_edges(mu), dtype=torch.float32).clamp(-1.0, 1.0)
        widths = torch.diff(edges).clamp_min(1e-7)  # the outer bins: up to +/-1 (clipping)
        self.register_buffer(
            "basis", torch.stack([centres**2, centres, torch.ones(vocab_size)], -1), False
        )
        self.register_buffer("log_widths", torch.log(widths), persistent=False)
        if self.proj is not None:
            self.init_(self.proj)

    def init_(self, layer: nn.Module, prior: bool = False) -> None:
        """Start wide and centred (small weights, scales about a tenth of the range), or,
        over a ``prior``, at the prior itself: tiny weights and no offsets."""
        k = self.components
        with torch.no_grad():
            layer.weight.mul_(0.01 if prior else 0.1)
            if layer.bias is not None:
                bias = layer.bias.view(-1, 3 * k)
                bias.zero_()
                if not prior:
                    bias[:, 2 * k :].fill_(math.log(0.1))

    def params(
        self, raw: torch.Tensor, prior: Prior | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture log-weights, means and scales from ``(..., 3 K)`` raw values.

        With a ``prior`` (mean and log-sd, each ``(...)``), the raw means and log-scales are
        offsets from it: every component starts at the prior and moves from there.
        """
        weights, means, log_scales = raw.float().chunk(3, dim=-1)
        if prior is not None:
            means = means + prior[0].unsqueeze(-1)
            log_scales = log_scales + prior[1].unsqueeze(-1)
        return F.log_softmax(weights, dim=-1), means, torch.exp(log_scales.clamp(-12.0, 3.0))

    def log_probs(self, raw: torch.Tensor, prior: Prior | None = None) -> torch.Tensor:
        """Normalised log-probabilities of the codes ``(..., V)`` from raw parameters (offsets
        from ``prior``, when given: see :meth:`params`)."""
        log_w, means, scales = self.params(raw, prior)
        precision = scales.pow(-2)
        # log(w N(c; m, s)) = -c^2/(2 s^2) + c m/s^2 + (log w - m^2/(2 s^2) - log s) + const
        coefficients = torch.stack(
            [
                -0.5 * precision,
                means * precision,
                log_w - 0.5 * means**2 * precision - scales.log(),
            ],
            dim=-1,
        )  # (..., K, 3)
        per_component = coefficients @ self.basis.T  # (..., K, V)
        log_density = torch.logsumexp(per_component, dim=-2)
        return F.log_softmax(log_density + self.log_widths, dim=-1)

    def forward(self, hidden: torch.Tensor, prior: Prior | None = None) -> torch.Tensor:
        """Normalised log-probabilities of the codes, ``(..., V)`` (float32)."""
        assert self.proj is not None, "built without a projection: call log_probs"
        return self.log_probs(self.proj(hidden), prior)

    def prior_log_probs(self, prior: Prior) -> torch.Tensor:
        """The discretised Gaussian of ``prior`` alone, ``(..., V)`` log-probabilities."""
        mean, log_scale = prior
        zeros = torch.zeros_like(mean).unsqueeze(-1).expand(*mean.shape, 3)  # one component
        return self.log_probs(zeros, prior)
