"""Quantiser layers for learned tokenizers: VQ with EMA codebooks, residual VQ, FSQ and LFQ.

Every quantiser takes channels-first latents ``z`` of shape ``(B, D, *rest)`` (for example
``(B, D, T)`` or ``(B, D, L, T)``), treats each position as one ``D``-dimensional vector and
returns a :class:`QuantizerOutput`: the quantised latents (same shape as ``z``, with a
straight-through gradient to ``z``), one int64 code per position (``(B, *rest)``; residual VQ
returns ``(B, levels, *rest)``), a scalar auxiliary loss to add to the training loss and a few
detached codebook statistics. ``encode`` returns only the codes and ``decode`` maps codes back to
quantised latents, so ``decode(encode(z))`` equals ``forward(z).quantized`` in eval mode.

All arithmetic runs in float32, also inside ``torch.autocast``; ``quantized`` comes back in the
dtype of ``z`` and ``decode`` returns float32.

* :class:`VectorQuantizer`: a codebook learned by exponential moving averages, initialised by
  k-means on the first training batch, with dead codes restarted from the data
  (van den Oord et al. 2017; Razavi et al. 2019).
* :class:`ResidualVectorQuantizer`: a stack of vector quantisers, each coding the residual the
  previous ones left (Zeghidour et al. 2021, SoundStream).
* :class:`FiniteScalarQuantizer`: each channel bounded and rounded to a few levels, no codebook
  to learn (Mentzer et al. 2023).
* :class:`LookupFreeQuantizer`: each channel quantised to its sign, with an entropy penalty that
  keeps codes confident and the batch diverse (Yu et al. 2023, MAGVIT-v2).

This module imports torch; ``import ephys_tokenizers`` does not import it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ephys_core.logging import get_logger

__all__ = [
    "FiniteScalarQuantizer",
    "LookupFreeQuantizer",
    "QuantizerOutput",
    "ResidualVectorQuantizer",
    "VectorQuantizer",
    "codebook_metrics",
]

logger = get_logger(__name__)

# the smallest probability whose log is taken, so that entropies keep finite gradients
_TINY_PROB = 1e-30


@dataclass
class QuantizerOutput:
    """What a quantiser's forward pass returns.

    Attributes
    ----------
    quantized
        Quantised latents, shape and dtype of the input ``z`` ``(B, D, *rest)``. Their value is
        the quantised vector; their gradient flows to ``z`` straight through the quantisation
        (Bengio et al. 2013; van den Oord et al. 2017).
    codes
        int64 codes, ``(B, *rest)`` (``(B, levels, *rest)`` for residual VQ), each in
        ``[0, codebook_size)``.
    loss
        0-dim float32 auxiliary loss to add to the training loss (a zero tensor when the
        quantiser has none).
    metrics
        Detached scalar tensors describing this batch; always ``"usage"`` (fraction of the codes
        used) and ``"perplexity"`` (exponential of the entropy of the code histogram).
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


def codebook_metrics(codes: torch.Tensor, codebook_size: int) -> dict[str, torch.Tensor]:
    """Usage and perplexity of the codes in one batch.

    Parameters
    ----------
    codes
        Integer codes of any shape, each in ``[0, codebook_size)``.
    codebook_size
        Number of codes the quantiser can emit (``K``).

    Returns
    -------
    dict
        Detached float32 scalars: ``"usage"``, the number of distinct codes used divided by
        ``K`` (in ``(0, 1]``), and ``"perplexity"``, ``exp`` of the entropy (in nats) of the
        code histogram: ``K`` when every code is used equally often, 1 when one code is used
        for everything. An empty batch gives usage 0 and perplexity 1.

    Raises
    ------
    ValueError
        ``codebook_size < 1``.
    """
    _check_int("codebook_size", codebook_size, 1)
    with torch.no_grad():
        flat = codes.detach().reshape(-1).long()
        if codebook_size > 4 * flat.numel():
            # a histogram over a huge codebook would be mostly zeros: count the codes seen
            counts = torch.unique(flat, return_counts=True)[1].float()
        else:
            counts = torch.zeros(codebook_size, dtype=torch.float32, device=flat.device)
            counts.index_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))
        probs = counts / counts.sum().clamp_min(1.0)
        entropy = torch.special.entr(probs).sum()
        return {
            "usage": (counts > 0).sum().float() / codebook_size,
            "perplexity": torch.exp(entropy),
        }


# ----------------------------------------------------------------------------------- helpers


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"Invalid value for {name!r}. Expected an integer {bound}; got {value!r}.")
    return value  # type: ignore[return-value]


def _check_float(name: str, value: object, allowed: str, ok: Callable[[float], bool]) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and ok(number)):
        raise ValueError(f"Invalid value for {name!r}. Expected a number {allowed}; got {value!r}.")
    return number


def _check_latents(owner: str, z: torch.Tensor, dim: int) -> None:
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"Invalid latents for {owner}: expected a torch.Tensor, got {type(z)}.")
    if z.ndim < 2:
        raise ValueError(
            f"Invalid latents for {owner}: expected z of shape (B, {dim}, ...), got shape "
            f"{tuple(z.shape)}."
        )
    if z.shape[1] != dim:
        raise ValueError(
            f"Invalid latents for {owner}: expected {dim} latent channels (dim 1), got "
            f"{z.shape[1]} (z of shape {tuple(z.shape)})."
        )


def _check_codes(owner: str, codes: torch.Tensor, codebook_size: int, min_ndim: int = 1) -> None:
    if not isinstance(codes, torch.Tensor):
        raise ValueError(
            f"Invalid codes for {owner}: expected an integer tensor, got {type(codes)}."
        )
    if codes.dtype.is_floating_point or codes.dtype.is_complex:
        raise ValueError(
            f"Invalid codes for {owner}: expected an integer tensor, got dtype {codes.dtype}."
        )
    if codes.ndim < min_ndim:
        raise ValueError(
            f"Invalid codes for {owner}: expected at least {min_ndim} dimension(s), got shape "
            f"{tuple(codes.shape)}."
        )
    if codes.numel():
        low, high = (int(v) for v in torch.aminmax(codes.long()))
        if low < 0 or high >= codebook_size:
            raise ValueError(
                f"Invalid codes for {owner}: expected codes in [0, {codebook_size}), got values "
                f"in [{low}, {high}]."
            )


def _to_rows(z: torch.Tensor) -> torch.Tensor:
    """``(B, D, *rest)`` -> ``(N, D)`` with ``N = B * prod(rest)``."""
    return rearrange(z, "b d ... -> (b ...) d")


def _from_rows(rows: torch.Tensor, like_shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """``(N, D)`` -> ``(B, D, *rest)``, the inverse of :func:`_to_rows`."""
    batch, dim, *rest = like_shape
    return rearrange(rows.reshape(batch, *rest, dim), "b ... d -> b d ...")


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed():
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


def _broadcast_from_rank0_(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed():
        torch.distributed.broadcast(tensor, src=0)
    return tensor


def _nearest(rows: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codeword (squared L2) for each row: ``(N, D), (K, D) -> (N,)``."""
    # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; the first term is the same for every code
    scores = torch.addmm(codebook.pow(2).sum(1), rows, codebook.t(), beta=1.0, alpha=-2.0)
    return scores.argmin(dim=1)


def _cluster_stats(
    rows: torch.Tensor, codes: torch.Tensor, codebook_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-code counts ``(K,)`` and sums of assigned rows ``(K, D)``, summed over all ranks."""
    stats = rows.new_zeros(codebook_size, rows.shape[1] + 1)
    stats.index_add_(0, codes, torch.cat([rows.new_ones(rows.shape[0], 1), rows], dim=1))
    _all_reduce_sum_(stats)  # one collective for both
    return stats[:, 0], stats[:, 1:]


def _sample_rows(rows: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` rows drawn without replacement when there are enough, else with replacement."""
    n = rows.shape[0]
    if n >= count:
        index = torch.randperm(n, device=rows.device)[:count]
    else:
        index = torch.randint(n, (count,), device=rows.device)
    return rows[index]


def _kmeans_plus_plus_seeds(rows: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` seeds drawn from ``rows`` by k-means++ (Arthur & Vassilvitskii 2007).

    Each new seed is a row drawn with probability proportional to its squared distance to the
    nearest seed so far, so separated clusters each receive a seed. Once every distinct row is a
    seed (fewer distinct rows than seeds) the remaining draws are uniform, with replacement.
    """
    n = rows.shape[0]
    seeds = rows.new_empty(count, rows.shape[1])
    seeds[0] = rows[torch.randint(n, (1,), device=rows.device)]
    nearest = (rows - seeds[0]).pow(2).sum(1)
    for j in range(1, count):
        # the tiny floor turns an all-zero distance vector into a uniform draw, without a sync
        pick = torch.multinomial(nearest + torch.finfo(rows.dtype).tiny, 1)
        seeds[j] = rows[pick[0]]
        nearest = torch.minimum(nearest, (rows - seeds[j]).pow(2).sum(1))
    return seeds


# ------------------------------------------------------------------------------ vector quantiser


class VectorQuantizer(nn.Module):
    """Vector quantiser with a codebook learned by exponential moving averages.

    Each ``D``-dimensional latent vector is replaced by its nearest codeword (squared L2
    distance). The codebook is not trained by gradients: in training mode every forward pass
    moves it towards the mean of the vectors assigned to each code through exponential moving
    averages of the cluster sizes and of the summed assigned vectors (van den Oord et al. 2017,
    "Neural Discrete Representation Learning", appendix A.1; Razavi et al. 2019, "Generating
    Diverse High-Fidelity Images with VQ-VAE-2"). The encoder is pulled towards its codewords by
    the commitment loss ``commitment * mse(z, sg(z_q))``.

    Parameters
    ----------
    dim
        Number of latent channels ``D``.
    codebook_size
        Number of codewords ``K`` (>= 2).
    decay
        EMA decay in ``[0, 1)``; higher is slower and smoother.
    commitment
        Weight of the commitment loss (>= 0).
    kmeans_init
        Initialise the codebook by k-means on the vectors of the first training batch. When
        false the codebook starts as standard-normal draws.
    kmeans_iters
        Lloyd iterations of that k-means (>= 0), after k-means++ seeding.
    dead_code_threshold
        A code is *dead*, and restarted, when its EMA cluster size falls below
        ``dead_code_threshold * N / K``, ``N`` being the number of vectors in the current batch
        (over all ranks) and so ``N / K`` the share of a code under uniform use. 0 turns restarts
        off.
    eps
        Laplace smoothing of the cluster sizes (> 0), which keeps the division finite.

    Notes
    -----
    **Shapes.** ``forward`` and ``encode`` take ``z`` of shape ``(B, D, *rest)`` and produce
    codes ``(B, *rest)``; ``decode`` maps codes ``(B, *rest)`` to ``(B, D, *rest)``.

    **Buffers** (all in the state dict): ``codebook`` ``(K, D)``, ``cluster_size`` ``(K,)``
    (EMA of how many vectors each code receives per batch), ``embed_sum`` ``(K, D)`` (EMA of
    their sum) and the flag ``initialized``. After every update
    ``codebook = embed_sum / smoothed(cluster_size)``; code that edits one of them should keep
    the three consistent. Buffers change only in training mode, under ``torch.no_grad``.

    **k-means initialisation** runs once, on the first training forward: k-means++ seeds from the
    batch (with replacement when the batch holds fewer vectors than codes), then
    ``kmeans_iters`` Lloyd iterations; the codebook becomes the centroids and the EMA statistics
    their cluster sizes. ``initialized`` is then set, so a model restored from a checkpoint is
    not initialised again (the flag is read on the first training forward and after every
    ``load_state_dict``; loading a state whose flag is false brings the initialisation back).

    **Dead-code restarts.** After each EMA update every code whose EMA cluster size is below
    ``dead_code_threshold * N / K`` is moved onto a vector of the current batch (distinct vectors
    when the batch has enough), and its statistics are reset to a cluster of that one vector
    (size 1). With the default ``1e-3`` and ``decay = 0.99`` a code that stops being used is
    restarted after about 700 steps; codes that k-means left empty are restarted on the first
    step. ``metrics["restarted"]`` counts the restarts of the step.

    **Distributed training.** When ``torch.distributed`` is initialised the batch statistics (of
    the EMA and of k-means) are summed over ranks, and the k-means seeds and restart vectors are
    broadcast from rank 0, so every rank keeps the same codebook. ``metrics`` describe the local
    batch.
    """

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    initialized: torch.Tensor

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        decay: float = 0.99,
        commitment: float = 0.25,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 1e-3,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.dim = _check_int("dim", dim, 1)
        self.codebook_size = _check_int("codebook_size", codebook_size, 2)
        self.decay = _check_float("decay", decay, "in [0, 1)", lambda v: 0 <= v < 1)
        self.commitment = _check_float("commitment", commitment, ">= 0", lambda v: v >= 0)
        self.kmeans_init = bool(kmeans_init)
        self.kmeans_iters = _check_int("kmeans_iters", kmeans_iters, 0)
        self.dead_code_threshold = _check_float(
            "dead_code_threshold", dead_code_threshold, ">= 0", lambda v: v >= 0
        )
        self.eps = _check_float("eps", eps, "> 0", lambda v: v > 0)
        codebook = torch.randn(codebook_size, dim)
        self.register_buffer("codebook", codebook)
        # a prior of one vector on each initial codeword: consistent with the codebook
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", codebook.clone())
        self.register_buffer("initialized", torch.tensor(not self.kmeans_init))
        # python-side copy of `initialized` once seen true, so training steps need no device sync
        self._initialized_seen = False

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, codebook_size={self.codebook_size}, decay={self.decay}, "
            f"commitment={self.commitment}, kmeans_init={self.kmeans_init}, "
            f"dead_code_threshold={self.dead_code_threshold}"
        )

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._initialized_seen = False  # read the loaded flag again

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantise ``z`` and, in training mode, update the codebook.

        Parameters
        ----------
        z
            Latents ``(B, D, *rest)``.

        Returns
        -------
        QuantizerOutput
            ``quantized`` ``(B, D, *rest)`` in ``z``'s dtype (the codewords chosen before this
            step's update), ``codes`` ``(B, *rest)``, ``loss`` the commitment loss and
            ``metrics`` ``"usage"``, ``"perplexity"`` and ``"restarted"``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            zf = z.float()
            rows = _to_rows(zf)
            if self.training and not self._initialized_seen:
                if not bool(self.initialized):
                    self._kmeans_init(rows.detach())
                self._initialized_seen = True
            codebook = self.codebook.float()
            codes = _nearest(rows.detach(), codebook)
            chosen = codebook[codes]  # (N, D)
            restarted = torch.zeros((), device=z.device)
            if self.training:
                restarted = self._ema_update(rows.detach(), codes)
            loss = self.commitment * F.mse_loss(rows, chosen.detach())
            # straight through: the value is exactly the codeword, the gradient is the identity
            quantized = _from_rows(chosen, zf.shape) + (zf - zf.detach())
        metrics = codebook_metrics(codes, self.codebook_size)
        metrics["restarted"] = restarted
        return QuantizerOutput(
            quantized=quantized.to(z.dtype),
            codes=codes.reshape(z.shape[0], *z.shape[2:]),
            loss=loss,
            metrics=metrics,
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes of the nearest codewords (squared L2), without changing any state.

        Parameters
        ----------
        z
            Latents ``(B, D, *rest)``.

        Returns
        -------
        torch.Tensor
            int64 codes ``(B, *rest)`` in ``[0, codebook_size)``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            codes = _nearest(_to_rows(z.float()), self.codebook.float())
        return codes.reshape(z.shape[0], *z.shape[2:])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codewords of ``codes``.

        Parameters
        ----------
        codes
            Integer codes ``(B, *rest)`` in ``[0, codebook_size)``.

        Returns
        -------
        torch.Tensor
            float32 quantised latents ``(B, D, *rest)``.
        """
        _check_codes(type(self).__name__, codes, self.codebook_size)
        vectors = self.codebook.float()[codes.long()]  # (B, *rest, D)
        return rearrange(vectors, "b ... d -> b d ...")

    @torch.no_grad()
    def _kmeans_init(self, rows: torch.Tensor) -> None:
        k = self.codebook_size
        centroids = _broadcast_from_rank0_(_kmeans_plus_plus_seeds(rows, k))
        for _ in range(self.kmeans_iters):
            counts, sums = _cluster_stats(rows, _nearest(rows, centroids), k)
            # an empty cluster keeps its centroid
            means = sums / counts.clamp_min(1.0).unsqueeze(1)
            centroids = torch.where(counts.unsqueeze(1) > 0, means, centroids)
        counts, _ = _cluster_stats(rows, _nearest(rows, centroids), k)
        self.codebook.copy_(centroids)
        self.cluster_size.copy_(counts)
        self.embed_sum.copy_(centroids * counts.unsqueeze(1))
        self.initialized.fill_(True)
        logger.debug(
            "k-means initialised %d codes from %d vectors (%d Lloyd iterations)",
            k,
            rows.shape[0],
            self.kmeans_iters,
        )

    @torch.no_grad()
    def _ema_update(self, rows: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """One EMA step on this batch, then dead-code restarts; returns the restart count."""
        counts, sums = _cluster_stats(rows, codes, self.codebook_size)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        size = self.cluster_size.float()
        total = size.sum()
        smoothed = (size + self.eps) / (total + self.codebook_size * self.eps) * total
        updated = self.embed_sum.float() / smoothed.unsqueeze(1)
        # a code that has never held a vector (size exactly 0) keeps its codeword
        self.codebook.copy_(torch.where(size.unsqueeze(1) > 0, updated, self.codebook.float()))
        return self._restart_dead_codes(rows, counts.sum())

    @torch.no_grad()
    def _restart_dead_codes(self, rows: torch.Tensor, n_vectors: torch.Tensor) -> torch.Tensor:
        if self.dead_code_threshold <= 0:
            return torch.zeros((), device=rows.device)
        k = self.codebook_size
        dead = self.cluster_size < self.dead_code_threshold * n_vectors / k  # (K,)
        # candidates for every code, used only where dead: no device sync needed
        candidates = _broadcast_from_rank0_(_sample_rows(rows, k))
        dead_rows = dead.unsqueeze(1)
        self.codebook.copy_(torch.where(dead_rows, candidates, self.codebook))
        self.embed_sum.copy_(torch.where(dead_rows, candidates, self.embed_sum))
        self.cluster_size.copy_(
            torch.where(dead, torch.ones_like(self.cluster_size), self.cluster_size)
        )
        restarted = dead.sum().float()
        if logger.isEnabledFor(logging.DEBUG) and bool(restarted > 0):
            logger.debug("restarted %d dead code(s) of %d", int(restarted), k)
        return restarted


# --------------------------------------------------------------------- residual vector quantiser


class ResidualVectorQuantizer(nn.Module):
    """Residual vector quantiser: ``levels`` vector quantisers, each coding what is left.

    Level 0 quantises ``z``, level ``l`` quantises the residual ``z - sum_{k<l} z_q^k`` left by
    the levels before it, and the quantised latents are the sum of all levels' codewords
    (Zeghidour et al. 2021, "SoundStream: An End-to-End Neural Audio Codec"). Decoding only the
    first levels gives a coarser reconstruction.

    Parameters
    ----------
    dim
        Number of latent channels ``D``.
    codebook_size
        Codewords per level ``K`` (>= 2).
    levels
        Number of levels (>= 1).
    **vq_kwargs
        Passed to every level's :class:`VectorQuantizer` (``decay``, ``commitment``,
        ``kmeans_init``, ...).

    Notes
    -----
    Shapes: ``z`` ``(B, D, *rest)``, codes ``(B, levels, *rest)``. The loss is the sum of the
    levels' commitment losses (each between a level's input residual and its codewords). The
    straight-through gradient of ``quantized`` to ``z`` is the identity, not ``levels`` times it.
    """

    def __init__(self, dim: int, codebook_size: int, levels: int, **vq_kwargs: object) -> None:
        super().__init__()
        self.levels = _check_int("levels", levels, 1)
        self.layers = nn.ModuleList(
            VectorQuantizer(dim, codebook_size, **vq_kwargs)  # type: ignore[arg-type]
            for _ in range(levels)
        )
        self.dim = self.layers[0].dim
        self.codebook_size = self.layers[0].codebook_size

    def extra_repr(self) -> str:
        return f"dim={self.dim}, codebook_size={self.codebook_size}, levels={self.levels}"

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantise ``z`` level by level and, in training mode, update every codebook.

        Parameters
        ----------
        z
            Latents ``(B, D, *rest)``.

        Returns
        -------
        QuantizerOutput
            ``quantized`` ``(B, D, *rest)`` in ``z``'s dtype, ``codes`` ``(B, levels, *rest)``,
            ``loss`` the sum of the levels' losses and ``metrics`` ``"usage/<l>"``,
            ``"perplexity/<l>"`` and ``"restarted/<l>"`` per level, the means ``"usage"`` and
            ``"perplexity"`` and the total ``"restarted"``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            zf = z.float()
            residual = zf
            total = torch.zeros_like(zf)
            loss = torch.zeros((), device=z.device)
            codes, metrics = [], {}
            for level, layer in enumerate(self.layers):
                out = layer(residual)
                chosen = out.quantized.detach()  # exactly the level's codewords
                total = total + chosen
                residual = residual - chosen
                loss = loss + out.loss
                codes.append(out.codes)
                for name, value in out.metrics.items():
                    metrics[f"{name}/{level}"] = value
            quantized = total + (zf - zf.detach())
        for name in ("usage", "perplexity"):
            metrics[name] = torch.stack([metrics[f"{name}/{i}"] for i in range(self.levels)]).mean()
        metrics["restarted"] = torch.stack(
            [metrics[f"restarted/{i}"] for i in range(self.levels)]
        ).sum()
        return QuantizerOutput(
            quantized=quantized.to(z.dtype),
            codes=torch.stack(codes, dim=1),
            loss=loss,
            metrics=metrics,
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes of every level, without changing any state.

        Parameters
        ----------
        z
            Latents ``(B, D, *rest)``.

        Returns
        -------
        torch.Tensor
            int64 codes ``(B, levels, *rest)``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            residual = z.float()
            codes = []
            for layer in self.layers:
                level_codes = layer.encode(residual)
                residual = residual - layer.decode(level_codes)
                codes.append(level_codes)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor, n_levels: int | None = None) -> torch.Tensor:
        """Sum of the codewords of the first ``n_levels`` levels.

        Parameters
        ----------
        codes
            Integer codes ``(B, L, *rest)`` of the first ``L <= levels`` levels.
        n_levels
            How many levels to sum, in ``[1, L]``; all ``L`` by default.

        Returns
        -------
        torch.Tensor
            float32 quantised latents ``(B, D, *rest)``.
        """
        name = type(self).__name__
        if not isinstance(codes, torch.Tensor) or codes.ndim < 2:
            raise ValueError(
                f"Invalid codes for {name}: expected a tensor of shape (B, levels, ...), got "
                f"{getattr(codes, 'shape', codes)!r}."
            )
        available = codes.shape[1]
        if not 1 <= available <= self.levels:
            raise ValueError(
                f"Invalid codes for {name}: expected between 1 and {self.levels} levels "
                f"(dim 1), got {available} (codes of shape {tuple(codes.shape)})."
            )
        n_levels = available if n_levels is None else _check_int("n_levels", n_levels, 1, available)
        total = self.layers[0].decode(codes[:, 0])
        for level in range(1, n_levels):
            total = total + self.layers[level].decode(codes[:, level])
        return total


# --------------------------------------------------------------------- finite scalar quantiser


class FiniteScalarQuantizer(nn.Module):
    """Finite scalar quantisation: every channel bounded, then rounded to a few levels.

    Channel ``i`` is squashed by ``tanh`` into an interval holding ``levels[i]`` integers,
    rounded (straight-through estimator) and scaled to ``[-1, 1]``; the implicit codebook is
    the grid of all combinations, ``prod(levels)`` codes, and there is nothing to learn and no
    auxiliary loss (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

    Parameters
    ----------
    levels
        Number of levels per channel, each >= 2; ``dim = len(levels)``.

    Notes
    -----
    The bound follows the paper: with ``h = (L - 1)(1 - 1e-3) / 2`` and an offset ``o`` of 0
    for odd ``L`` and 0.5 for even ``L``, ``bound(z) = tanh(z + tan(o / h)) * h - o``. Rounding
    gives the integers ``-(L // 2) .. (L - 1) // 2`` (an even count has one more negative
    level); they are divided by ``L // 2``, so odd counts span ``[-1, 1]`` and even counts
    ``[-1, 1 - 2 / L]``. The code is the mixed-radix number of the per-channel digits
    ``round(bound(z)) + L // 2``, channel 0 the least significant.

    Shapes: ``z`` ``(B, dim, *rest)``, codes ``(B, *rest)``.
    """

    _levels: torch.Tensor
    _basis: torch.Tensor

    def __init__(self, levels: Sequence[int]) -> None:
        super().__init__()
        if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels:
            raise ValueError(
                f"Invalid value for 'levels'. Expected a non-empty sequence of integers >= 2; "
                f"got {levels!r}."
            )
        for i, level in enumerate(levels):
            _check_int(f"levels[{i}]", level, 2)
        self.levels = tuple(int(level) for level in levels)
        self.dim = len(self.levels)
        self.codebook_size = math.prod(self.levels)
        if self.codebook_size >= 2**62:
            raise ValueError(
                f"Invalid value for 'levels'. Expected at most 2**62 codes in all; got "
                f"prod(levels) = {self.codebook_size}."
            )
        basis = [math.prod(self.levels[:i]) for i in range(self.dim)]
        self.register_buffer(
            "_levels", torch.tensor(self.levels, dtype=torch.int64), persistent=False
        )
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.int64), persistent=False)

    def extra_repr(self) -> str:
        return f"levels={list(self.levels)}"

    def _half_width(self) -> torch.Tensor:
        return (self._levels // 2).float()

    def _bound(self, rows: torch.Tensor) -> torch.Tensor:
        levels = self._levels.float()
        half = (levels - 1) * (1 - 1e-3) / 2
        offset = torch.where(self._levels % 2 == 1, 0.0, 0.5)
        shift = torch.tan(offset / half)
        return torch.tanh(rows + shift) * half - offset

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Bound, round (straight through) and scale every channel.

        Parameters
        ----------
        z
            Latents ``(B, dim, *rest)``.

        Returns
        -------
        QuantizerOutput
            ``quantized`` ``(B, dim, *rest)`` in ``z``'s dtype with values on the grid,
            ``codes`` ``(B, *rest)``, a zero ``loss`` and ``metrics`` ``"usage"`` and
            ``"perplexity"``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            zf = z.float()
            bounded = self._bound(_to_rows(zf))
            rounded = torch.round(bounded)
            # straight through: the value is exactly the rounded grid point
            steps = rounded.detach() + (bounded - bounded.detach())
            quantized = _from_rows(steps / self._half_width(), zf.shape)
            codes = self._digits_to_codes(rounded.detach().long() + self._levels // 2)
        return QuantizerOutput(
            quantized=quantized.to(z.dtype),
            codes=codes.reshape(z.shape[0], *z.shape[2:]),
            loss=torch.zeros((), device=z.device),
            metrics=codebook_metrics(codes, self.codebook_size),
        )

    def _digits_to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        return (digits * self._basis).sum(dim=-1)

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """One mixed-radix code per position.

        Parameters
        ----------
        z
            Latents ``(B, dim, *rest)``.

        Returns
        -------
        torch.Tensor
            int64 codes ``(B, *rest)`` in ``[0, prod(levels))``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            rounded = torch.round(self._bound(_to_rows(z.float())))
            codes = self._digits_to_codes(rounded.long() + self._levels // 2)
        return codes.reshape(z.shape[0], *z.shape[2:])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Grid points of ``codes``.

        Parameters
        ----------
        codes
            Integer codes ``(B, *rest)`` in ``[0, prod(levels))``.

        Returns
        -------
        torch.Tensor
            float32 quantised latents ``(B, dim, *rest)`` with values in ``[-1, 1]``.
        """
        _check_codes(type(self).__name__, codes, self.codebook_size)
        digits = (codes.long().unsqueeze(-1) // self._basis) % self._levels  # (B, *rest, dim)
        half = self._half_width()
        return rearrange((digits.float() - half) / half, "b ... d -> b d ...")

    @torch.no_grad()
    def codes_from_quantized(self, quantized: torch.Tensor) -> torch.Tensor:
        """Codes of quantised latents (grid points), the inverse of :meth:`decode`.

        ``encode`` expects unbounded latents; this takes points already on the grid, such as
        the output of ``decode`` or ``forward(z).quantized``, and snaps each channel to the
        nearest level.

        Parameters
        ----------
        quantized
            Quantised latents ``(B, dim, *rest)``.

        Returns
        -------
        torch.Tensor
            int64 codes ``(B, *rest)``.
        """
        _check_latents(type(self).__name__, quantized, self.dim)
        rows = _to_rows(quantized.float())
        half = self._half_width()
        digits = torch.round(rows * half + half).long()
        digits = torch.minimum(digits.clamp_min(0), self._levels - 1)
        codes = self._digits_to_codes(digits)
        return codes.reshape(quantized.shape[0], *quantized.shape[2:])


# ----------------------------------------------------------------------- lookup-free quantiser


def _half_codebook_log_probs(log_plus: torch.Tensor, log_minus: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of all ``2**k`` sign patterns of ``k`` independent bits.

    ``log_plus`` and ``log_minus`` are ``(N, k)`` log-probabilities of each bit being +1 or -1;
    returns ``(N, 2**k)``, pattern ``c`` having bit ``i`` set (+1) when ``(c >> i) & 1``.
    """
    k = log_plus.shape[1]
    patterns = torch.arange(2**k, device=log_plus.device)
    bits = ((patterns.unsqueeze(1) >> torch.arange(k, device=log_plus.device)) & 1).float()
    return log_plus @ bits.t() + log_minus @ (1 - bits).t()


class LookupFreeQuantizer(nn.Module):
    """Lookup-free quantisation: every channel quantised to its sign.

    Each channel of a latent vector becomes -1 or +1 and the code is the binary number of the
    signs (channel ``i`` is bit ``i``, set for +1), so the implicit codebook is ``{-1, 1}^dim``
    with ``2**dim`` codes and no lookup (Yu et al. 2023, "Language Model Beats Diffusion --
    Tokenizer is Key to Visual Generation", MAGVIT-v2).

    Parameters
    ----------
    dim
        Number of latent channels, 1 to 16 (``codebook_size = 2**dim``).
    entropy_weight
        Weight of the entropy penalty (>= 0).
    commitment
        Weight of the commitment loss ``mse(z, sg(sign(z)))`` (>= 0).
    diversity_gamma
        Weight of the codebook-entropy (diversity) term inside the entropy penalty (>= 0).

    Notes
    -----
    The loss is ``commitment * mse + entropy_weight * (E[H(q(.|z))] - diversity_gamma *
    H(E[q(.|z)]))``: the mean entropy of each vector's soft code distribution (low when codes are
    confident) minus the entropy of the batch-mean distribution (high when the batch uses many
    codes), in nats. The soft distribution is ``q(c|z) ∝ exp(-||z - c||^2)`` over the
    ``2**dim`` codes. It factorises over the channels (bit ``i`` is +1 with probability
    ``sigmoid(4 z_i)``), so the per-vector entropy is a sum over channels, and the batch-mean
    distribution is computed exactly as the product of two half-codebooks
    (``(2**(dim//2), N) @ (N, 2**(dim - dim//2))``), costing ``O(N 2**(dim/2))`` memory.

    Shapes: ``z`` ``(B, dim, *rest)``, codes ``(B, *rest)``.
    """

    _bit_values: torch.Tensor

    def __init__(
        self,
        dim: int,
        *,
        entropy_weight: float = 0.1,
        commitment: float = 0.25,
        diversity_gamma: float = 1.0,
    ) -> None:
        super().__init__()
        self.dim = _check_int("dim", dim, 1, 16)
        self.codebook_size = 2**dim
        self.entropy_weight = _check_float(
            "entropy_weight", entropy_weight, ">= 0", lambda v: v >= 0
        )
        self.commitment = _check_float("commitment", commitment, ">= 0", lambda v: v >= 0)
        self.diversity_gamma = _check_float(
            "diversity_gamma", diversity_gamma, ">= 0", lambda v: v >= 0
        )
        self.register_buffer(
            "_bit_values", 2 ** torch.arange(dim, dtype=torch.int64), persistent=False
        )

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, entropy_weight={self.entropy_weight}, "
            f"commitment={self.commitment}, diversity_gamma={self.diversity_gamma}"
        )

    def _entropy_terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean per-vector entropy and entropy of the batch-mean code distribution.

        Parameters
        ----------
        z
            Latents ``(B, dim, *rest)``.

        Returns
        -------
        tuple of torch.Tensor
            ``(per_sample_entropy, codebook_entropy)``, float32 scalars in nats, both in
            ``[0, dim * log 2]``, differentiable with respect to ``z``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            rows = _to_rows(z.float())
            # q(bit = +1 | z) ∝ exp(-(z - 1)^2) against exp(-(z + 1)^2): logit 4 z
            logits = 4.0 * rows
            log_plus, log_minus = F.logsigmoid(logits), F.logsigmoid(-logits)
            plus = log_plus.exp()
            per_sample = -(plus * log_plus + (1 - plus) * log_minus).sum(1).mean()
            low = self.dim // 2
            low_probs = _half_codebook_log_probs(log_plus[:, :low], log_minus[:, :low]).exp()
            high_probs = _half_codebook_log_probs(log_plus[:, low:], log_minus[:, low:]).exp()
            mean_probs = low_probs.t() @ high_probs / rows.shape[0]  # (2**low, 2**(dim-low))
            codebook = -(mean_probs * mean_probs.clamp_min(_TINY_PROB).log()).sum()
        return per_sample, codebook

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantise every channel to its sign (straight through) and compute the loss.

        Parameters
        ----------
        z
            Latents ``(B, dim, *rest)``.

        Returns
        -------
        QuantizerOutput
            ``quantized`` ``(B, dim, *rest)`` of -1 and +1 in ``z``'s dtype, ``codes``
            ``(B, *rest)``, the commitment-plus-entropy ``loss`` and ``metrics`` ``"usage"``,
            ``"perplexity"``, ``"per_sample_entropy"`` and ``"codebook_entropy"``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            zf = z.float()
            rows = _to_rows(zf)
            signs = torch.where(rows.detach() > 0, 1.0, -1.0)
            codes = self._bits_to_codes(rows.detach() > 0)
            quantized = _from_rows(signs, zf.shape) + (zf - zf.detach())
            loss = self.commitment * F.mse_loss(rows, signs)
            per_sample, codebook = self._entropy_terms(zf)
            if self.entropy_weight > 0:
                loss = loss + self.entropy_weight * (per_sample - self.diversity_gamma * codebook)
        metrics = codebook_metrics(codes, self.codebook_size)
        metrics["per_sample_entropy"] = per_sample.detach()
        metrics["codebook_entropy"] = codebook.detach()
        return QuantizerOutput(
            quantized=quantized.to(z.dtype),
            codes=codes.reshape(z.shape[0], *z.shape[2:]),
            loss=loss,
            metrics=metrics,
        )

    def _bits_to_codes(self, bits: torch.Tensor) -> torch.Tensor:
        return (bits.long() * self._bit_values).sum(dim=-1)

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """The binary number of the signs at each position (channel ``i`` is bit ``i``).

        Parameters
        ----------
        z
            Latents ``(B, dim, *rest)``.

        Returns
        -------
        torch.Tensor
            int64 codes ``(B, *rest)`` in ``[0, 2**dim)``.
        """
        _check_latents(type(self).__name__, z, self.dim)
        codes = self._bits_to_codes(_to_rows(z) > 0)
        return codes.reshape(z.shape[0], *z.shape[2:])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Sign vectors of ``codes``.

        Parameters
        ----------
        codes
            Integer codes ``(B, *rest)`` in ``[0, 2**dim)``.

        Returns
        -------
        torch.Tensor
            float32 latents ``(B, dim, *rest)`` of -1 and +1.
        """
        _check_codes(type(self).__name__, codes, self.codebook_size)
        bits = (codes.long().unsqueeze(-1) // self._bit_values) % 2  # (B, *rest, dim)
        return rearrange(bits.float() * 2 - 1, "b ... d -> b d ...")
