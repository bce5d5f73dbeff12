"""A least-squares autoregressive prior that the token models refine: the linear highway.

A brain signal's next sample is, to a first approximation, a linear function of its recent
past plus Gaussian noise: a vector autoregression fitted by least squares in a second is a
strong forecaster, and gradient descent finds it only slowly (the lagged covariance of a
band-limited signal is badly conditioned). So instead of asking the network to rediscover
it, :class:`LinearHighway` fits it once on the training data, before the first optimiser
step, and the network learns what is left: its head predicts corrections to the highway's
mean and log-scale (the ``mixture`` head) or logits added to the highway's discretised
Gaussian (the ``softmax`` head). A model built this way starts where the VAR is and is
trained to do better; whether it does is what the forecasting benchmark measures. The idea is
LSTNet's autoregressive highway (Lai et al. 2018, arXiv 1703.07015), fitted in closed form.

The highway reads the codes as mu-law amplitudes in ``[-1, 1]`` (what the classical
baselines of ``ephys_eval`` see). It is fitted with lower-order companions: at position ``t``
of a sequence only ``t + 1`` past samples exist, and the model of order ``min(t + 1, p)``
(fitted alongside) predicts there, rather than a model of order ``p`` fed zeros. Its
coefficients are buffers, saved with the model and not trained.

The fit also gives the correlation of the residuals across channels (``noise_factor``, its
Cholesky factor). MEG and EEG sensors see the same sources, so what is new at each time step
is strongly correlated across channels; a model that draws every channel's next code
independently, however good each channel's predictive, generates activity whose spectrum is
wrong (on the benchmark's simulated MEG, three to four times the power in every band and
thirty times in the stop band above the low-pass edge). Generation therefore draws the
channels of a step together, through a Gaussian copula with this correlation
(:class:`~ephys_models.generation.Sampler`, ``innovations``).

torch is imported at module level: ephys imports this module only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Literal

import torch
from torch import nn

from ephys_core.logging import get_logger
from ephys_models.codes import code_features

__all__ = ["HighwayState", "LinearHighway"]

log = get_logger(__name__)

Reduce = Callable[[torch.Tensor], torch.Tensor]

#: examples the fit asks for per coefficient of a row: orders the training data determine
#: less well than this are not fitted (longer pasts use the highest order that is)
EXAMPLES_PER_UNKNOWN = 10


@dataclass
class HighwayState:
    """What generation carries between steps: the last ``p - 1`` amplitudes and their count.

    Attributes
    ----------
    history
        ``(B, C, p - 1)`` amplitudes before the next step (zeros before the sequence began).
    seen
        Steps seen so far (only its cap at ``p - 1`` matters).
    """

    history: torch.Tensor
    seen: int


class LinearHighway(nn.Module):
    """AR(p) per channel or VAR(p) over mu-law amplitudes: codes ``(B, C, T)`` -> mean, log-sd.

    Output ``t`` is the Gaussian predictive of the amplitude at ``t + 1`` from the amplitudes
    ``<= t``: ``m = b + sum_k A_k a[t - k]``, with ``A_k`` ``(C, C)`` for ``var`` and diagonal
    for ``ar``, and one residual standard deviation per channel.

    Parameters
    ----------
    n_channels
        Channels ``C``.
    vocab_size
        Codes ``V`` (mu-law with ``mu = V - 1``).
    order
        Lags ``p``.
    kind
        ``var`` (every channel's past predicts every channel) or ``ar`` (each its own).
    ridge
        Ridge strength relative to the mean diagonal of the Gram matrix (bias unpenalised).
    """

    def __init__(
        self,
        n_channels: int,
        vocab_size: int,
        order: int,
        kind: Literal["ar", "var"] = "var",
        ridge: float = 1e-6,
    ) -> None:
        super().__init__()
        self.n_channels, self.order, self.kind, self.ridge = n_channels, order, kind, ridge
        features = order * n_channels
        amplitude = code_features(vocab_size)[:, 0].float()  # each code's mu-law amplitude
        self.register_buffer("amplitude", amplitude, persistent=False)
        # one model per order q = 1..p; row q - 1 uses the first q lags (features lag-major:
        # index k * C + c is channel c at lag k, lag 0 the newest sample)
        self.register_buffer("weight", torch.zeros(order, n_channels, features))
        self.register_buffer("bias", torch.zeros(order, n_channels))
        self.register_buffer("log_scale", torch.zeros(order, n_channels))
        # lower Cholesky factor of the residuals' correlation across channels (order p)
        self.register_buffer("noise_factor", torch.eye(n_channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # -- prediction -----------------------------------------------------------------------

    def initial_state(self, batch: int, device: torch.device) -> HighwayState:
        """Nothing seen yet: a history of zeros."""
        zeros = torch.zeros(batch, self.n_channels, self.order - 1, device=device)
        return HighwayState(zeros, 0)

    def forward(
        self, codes: torch.Tensor, state: HighwayState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, HighwayState]:
        """Mean and log-sd ``(B, C, T)`` of each next amplitude, and the state after ``codes``.

        Always computed in float32 (under autocast too): the mean must resolve mu-law bins
        about 2e-4 wide near zero, finer than bfloat16 can.
        """
        b, c, t = codes.shape
        state = state or self.initial_state(b, codes.device)
        with torch.autocast(codes.device.type, enabled=False):
            padded = torch.cat([state.history, self.amplitude[codes]], dim=-1)
            lagged = padded.unfold(-1, self.order, 1).flip(-1)  # (B, C, T, p): lag 0 first
            features = lagged.permute(0, 2, 3, 1).reshape(b, t, -1)  # (B, T, p * C)
            seen = torch.arange(state.seen, state.seen + t, device=codes.device)
            row = seen.clamp_max(self.order - 1)  # order min(t + 1, p)
            # one product with the order-p model, then the few short pasts with their own
            mean = features @ self.weight[-1].T  # (B, T, C)
            short = int((row < self.order - 1).sum())  # they come first
            if short:
                early = torch.einsum("btf,tcf->btc", features[:, :short], self.weight[row[:short]])
                mean = torch.cat([early, mean[:, short:]], dim=1)
            mean = mean.transpose(1, 2) + self.bias[row].T
            log_scale = self.log_scale[row].T.expand(b, c, t)
        history = padded[..., padded.shape[-1] - (self.order - 1) :]
        return mean, log_scale, HighwayState(history, state.seen + t)

    # -- fitting --------------------------------------------------------------------------

    def fit(
        self,
        batches: Iterable[torch.Tensor],
        max_batches: int,
        reduce: Reduce | None = None,
    ) -> None:
        """Least-squares coefficients and residual spreads from ``(B, C, T)`` training codes.

        Parameters
        ----------
        batches
            Training windows of codes; at most ``max_batches`` are read. Each window gives
            ``T - p`` examples (targets with ``p`` past samples inside the window).
        max_batches
            Batches to read.
        reduce
            Sums a tensor over processes (distributed training), so every process fits the
            same coefficients; ``None`` on one process.
        """
        p, c = self.order, self.n_channels
        gram = torch.zeros(p * c + 1, p * c + 1, dtype=torch.float64)
        cross = torch.zeros(p * c + 1, c, dtype=torch.float64)
        outer = torch.zeros(c, c, dtype=torch.float64)
        count = torch.zeros((), dtype=torch.float64)
        for codes in islice(batches, max_batches):
            x, y = self._examples(codes.detach().cpu())
            gram += x.T @ x
            cross += x.T @ y
            outer += y.T @ y
            count += y.shape[0]
        if reduce is not None:
            gram, cross, outer, count = (reduce(v) for v in (gram, cross, outer, count))
        n = int(count)
        order = self._supported_order(n)
        if order < p:
            log.warning(
                "linear highway: %d training examples determine orders up to %d, not %d; "
                "positions with longer pasts use order %d",
                n,
                order,
                p,
                order,
            )
        weight, bias, log_scale = self._solve(gram, cross, outer.diagonal(), n, order)
        # residual covariance of the full order: (Y - X W)'(Y - X W) / n from the statistics
        full = torch.cat([weight[-1].T, bias[-1][None]], dim=0)  # (p C + 1, C)
        covariance = (outer - full.T @ cross - cross.T @ full + full.T @ gram @ full) / n
        sd = covariance.diagonal().clamp_min(1e-24).sqrt()
        correlation = covariance / torch.outer(sd, sd)
        factor = torch.linalg.cholesky(correlation + 1e-6 * torch.eye(c, dtype=torch.float64))
        device = self.weight.device
        self.weight.copy_(weight.to(device, torch.float32))
        self.bias.copy_(bias.to(device, torch.float32))
        self.log_scale.copy_(log_scale.to(device, torch.float32))
        self.noise_factor.copy_(factor.to(device, torch.float32))
        self.fitted.fill_(True)
        log.info(
            "linear highway: %s(%d) fitted on %d examples; residual sd %.4g (order %d) .. "
            "%.4g (order 1), in amplitude units",
            self.kind.upper(),
            p,
            n,
            float(log_scale[-1].exp().mean()),
            p,
            float(log_scale[0].exp().mean()),
        )

    def _examples(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Design rows ``(N, p C + 1)`` (lags, then a constant) and targets ``(N, C)``."""
        p = self.order
        if codes.shape[-1] <= p:
            raise ValueError(
                f"windows of {codes.shape[-1]} samples are too short for the linear highway "
                f"of order {p}; use a lower highway_order"
            )
        a = self.amplitude.cpu()[codes].double()  # (B, C, T)
        windows = a.unfold(-1, p + 1, 1)  # (B, C, T - p, p + 1): oldest first
        lags = windows[..., :p].flip(-1)  # lag 0 first
        x = lags.permute(0, 2, 3, 1).reshape(-1, p * self.n_channels)
        y = windows[..., p].permute(0, 2, 1).reshape(-1, self.n_channels)
        return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1), y

    def _supported_order(self, n: int) -> int:
        """The largest order (up to ``p``) that ``n`` examples determine: at least
        :data:`EXAMPLES_PER_UNKNOWN` examples per coefficient of each fitted row."""
        per_lag = self.n_channels if self.kind == "var" else 1
        order = min(self.order, (n // EXAMPLES_PER_UNKNOWN - 1) // per_lag)
        if order < 1:
            raise ValueError(
                f"the linear highway needs at least {EXAMPLES_PER_UNKNOWN * (per_lag + 1)} "
                f"training examples for order 1, but the training windows give {n}; use "
                "more or longer windows (each gives its length minus highway_order), a "
                "lower highway_order, or highway: none"
            )
        return order

    def _solve(
        self, gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, n: int, order: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ridge solutions of orders ``1 .. order`` from the sufficient statistics; the rows
        of longer pasts repeat the order-``order`` model."""
        p, c = self.order, self.n_channels
        weight = torch.zeros(p, c, p * c, dtype=torch.float64)
        bias = torch.zeros(p, c, dtype=torch.float64)
        log_scale = torch.zeros(p, c, dtype=torch.float64)
        groups = [list(range(c))] if self.kind == "var" else [[ch] for ch in range(c)]
        for q in range(1, order + 1):
            for channels in groups:
                # the lags of order q that predict these channels, then the constant
                columns = [k * c + ch for k in range(q) for ch in range(c)]
                if self.kind == "ar":
                    columns = [k * c + channels[0] for k in range(q)]
                idx = torch.as_tensor([*columns, p * c])
                g = gram[idx][:, idx]
                r = cross[idx][:, channels]  # (F + 1, len(channels))
                penalty = self.ridge * g.diagonal()[:-1].mean()
                ridge = torch.cat([penalty.expand(len(columns)), g.new_zeros(1)])
                w = torch.linalg.solve(g + torch.diag(ridge), r)
                # residual sum of squares y'y - 2 w'X'y + w'X'X w, with the unpenalised Gram
                rss = energy[channels] - 2 * (w * r).sum(0) + (w * (g @ w)).sum(0)
                sd = torch.sqrt(torch.clamp(rss / n, min=1e-12))
                rows = torch.as_tensor(channels)
                weight[q - 1, rows[:, None], torch.as_tensor(columns)[None, :]] = w[:-1].T
                bias[q - 1, rows] = w[-1]
                log_scale[q - 1, rows] = torch.log(sd)
        weight[order:], bias[order:], log_scale[order:] = (
            weight[order - 1],
            bias[order - 1],
            log_scale[order - 1],
        )
        return weight, bias, log_scale
