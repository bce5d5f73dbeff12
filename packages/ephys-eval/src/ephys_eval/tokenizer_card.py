"""Tokenizer cards: what a tokenizer keeps of real signals, what its codes cost, how fast it is.

A card encodes and decodes segments of a split the tokenizer was not fitted on (the test split
of the split it records, by default) and reports:

- reconstruction: Pearson correlation (PCC) per channel, the percentage of variance explained
  and the relative L2 error;
- the PSD error per band (mean absolute log-ratio of decoded to real band power, in dB, and
  its signed mean: negative when the tokenizer loses power);
- the bit rate: codes per second and bits per second (``log2(vocab)`` bits a code), per
  recording and per input channel;
- codebook usage (the share of codes used) and perplexity (``exp`` of the code entropy);
- encode and decode throughput (input samples per second, all channels counted).

It is written as ``card.md``, ``card.json``, ``reconstruction.png`` and ``psd.png``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_eval.metrics import BANDS, band_powers, bands_for

__all__ = ["CARD_SCHEMA", "TokenizerCard", "tokenizer_card"]

logger = get_logger(__name__)

CARD_SCHEMA = "ephys-tokenizer-card/1"


@dataclass
class TokenizerCard:
    """A written card."""

    summary: dict[str, Any]
    folder: Path

    @property
    def markdown(self) -> Path:
        return self.folder / "card.md"


def _segments(
    roots: list[Path],
    split_config: dict[str, Any] | None,
    split: str,
    count: int,
    seconds: float,
    seed: int,
) -> tuple[np.ndarray, float, list[str], str]:
    """``(N, C, L)`` segments of ``split`` (every channel, in the sessions' order)."""
    from ephys_data.datasets.catalog import Catalog
    from ephys_data.datasets.splits import SplitConfig, split_sessions

    catalog = Catalog(roots)
    if catalog.is_codes:
        raise ConfigError("data: the sessions hold codes; a card needs signals")
    splits = split_sessions(catalog.entries, SplitConfig(**(split_config or {})))
    used = split
    if not splits[split]:
        used = next(s for s in ("test", "val", "train") if splits[s])
        logger.warning("the %s split is empty; the card uses the %s split", split, used)
    entries = splits[used]
    names = {tuple(e.session.meta["ch_names"]) for e in entries}
    if len(names) != 1:
        raise ConfigError("data: the sessions of the split have different channels")
    length = min(int(seconds * catalog.sfreq), min(e.span[1] - e.span[0] for e in entries))
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        entry = entries[i % len(entries)]
        low, high = entry.span
        start = int(rng.integers(low, high - length + 1))
        out.append(np.asarray(entry.session.data[:, start : start + length], dtype=np.float32))
    return np.stack(out), catalog.sfreq, list(names.pop()), used


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def _pcc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation over time of every segment and channel ``(N, C)``."""
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    return np.divide(
        (xc * yc).sum(-1),
        denominator,
        out=np.full(denominator.shape, np.nan),
        where=denominator > 0,
    )


def _code_stats(codes: np.ndarray, vocab: int, pad: int | None = None) -> dict[str, float]:
    counts = np.bincount(codes.ravel().astype(np.int64), minlength=vocab)
    if pad is not None:  # padding of a grid layout (bpe) is not a code
        counts[pad] = 0
    p = counts[counts > 0] / counts.sum()
    return {
        "usage": float((counts > 0).sum() / vocab),
        "perplexity": float(np.exp(-(p * np.log(p)).sum())),
    }


def tokenizer_card(
    artifact: Any,
    roots: list[str | Path],
    out_dir: str | Path,
    *,
    split: str = "test",
    segments: int = 16,
    seconds: float = 10.0,
    seed: int = 0,
    channels: list[str] | None = None,
) -> TokenizerCard:
    """Write the card of a tokenizer on prepared data (see the module docstring).

    Parameters
    ----------
    artifact
        A :class:`~ephys_tokenizers.artifact.TokenizerArtifact`.
    roots
        Prepared datasets of signals, in the units the tokenizer takes.
    split
        Split whose sessions are used: the split the tokenizer was fitted with (its
        ``fitted_on``) or the datasets' default.
    segments, seconds
        How many segments, of what length, are encoded.
    channels
        Score only these channels (a per-channel tokenizer, such as mu-law or quantile, on a
        subset, e.g. the montage of a learned tokenizer it is compared with).
    """
    from ephys_data.encoding import montage_rows
    from ephys_eval.plots import plot_psd, plot_reconstruction

    tokenizer = artifact.tokenizer
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    split_config = artifact.fitted_on.get("split")
    x, sfreq, ch_names, used = _segments(
        [Path(r) for r in roots], split_config, split, segments, seconds, seed
    )
    rows = montage_rows(tokenizer, ch_names, "the data")
    if rows is not None:  # a tokenizer of a montage: its channels, by name
        x, ch_names = x[:, rows], [ch_names[i] for i in rows]
    if channels:  # a per-channel tokenizer scored on some of its channels
        select = getattr(tokenizer, "channels", None)
        missing = [c for c in channels if c not in ch_names]
        per_channel = callable(select) or getattr(tokenizer, "samplewise", False)
        if missing or (not per_channel and list(channels) != ch_names):
            raise ConfigError(
                f"channels: {missing[:3] or list(channels)[:3]} cannot be scored on their own "
                f"with {artifact.name}"
            )
        picked = [ch_names.index(c) for c in channels]
        if callable(select):
            tokenizer = select(picked)
        x, ch_names = x[:, picked], list(channels)
    stride = int(getattr(tokenizer, "time_stride", 1))
    whole = x.shape[-1] // stride * stride  # whole code steps only
    if whole == 0:
        raise ConfigError(
            f"--seconds: segments of {x.shape[-1]} samples hold no whole code step of "
            f"{stride} samples; score longer segments"
        )
    x = x[..., :whole]
    fitted = getattr(tokenizer, "n_channels", None) if getattr(tokenizer, "fitted", True) else None
    if fitted is not None and fitted != x.shape[1]:
        raise ConfigError(f"data: {x.shape[1]} channels; the tokenizer was fitted on {fitted}")
    tokenizer.encode(x[:1, :, : min(64, x.shape[-1])])  # warm up (lazy set-up, caches)
    codes, encode_s = _timed(tokenizer.encode, x)
    decoded, decode_s = _timed(tokenizer.decode, codes)
    codes, y = np.asarray(codes), np.asarray(decoded, dtype=np.float64)
    x64 = x.astype(np.float64)
    if y.shape != x.shape:
        raise ConfigError(f"the tokenizer decoded {x.shape} to {y.shape}")
    error = y - x64
    variance = ((x64 - x64.mean(-1, keepdims=True)) ** 2).sum()
    pcc = _pcc(x64, y)
    bands = bands_for(sfreq, BANDS)
    real_bp, decoded_bp = band_powers(x64, sfreq, bands), band_powers(y, sfreq, bands)
    log_ratio = 10 * (decoded_bp - real_bp)  # dB
    vocab = int(tokenizer.vocab_size)
    code_rate = sfreq / stride
    pad = getattr(tokenizer, "pad_id", None)
    if pad is None:
        codes_per_step = int(np.prod(codes.shape[1:-1]))  # code channels (x levels)
        codes_per_s = codes_per_step * code_rate
    else:  # a padded grid (bpe): only the tokens count
        codes_per_s = float((codes != pad).sum()) / (x.shape[0] * x.shape[-1] / sfreq)
    samples = x.shape[0] * x.shape[1] * x.shape[2]
    summary: dict[str, Any] = {
        "schema": CARD_SCHEMA,
        "tokenizer": artifact.describe(),
        "fitted_on": artifact.fitted_on,
        "data": {
            "roots": [str(r) for r in roots],
            "split": used,
            "segments": int(x.shape[0]),
            "seconds_each": x.shape[-1] / sfreq,
            "n_channels": int(x.shape[1]),
            "sfreq": sfreq,
        },
        "codes": {
            "layout": list(codes.shape[1:]),
            "vocab_size": vocab,
            "time_stride": stride,
            "codes_per_second": codes_per_s,
            "bits_per_second": codes_per_s * math.log2(vocab),
            "bits_per_channel_second": codes_per_s * math.log2(vocab) / x.shape[1],
            **_code_stats(codes, vocab, pad),
        },
        "reconstruction": {
            "pcc": float(np.nanmean(pcc)),
            "pcc_min_channel": float(np.nanmin(np.nanmean(pcc, axis=0))),
            "variance_explained_percent": float(100 * (1 - (error**2).sum() / variance)),
            "relative_l2": float(np.linalg.norm(error) / np.linalg.norm(x64)),
        },
        "psd_error_db": {
            band: {
                "mean_abs": float(np.abs(log_ratio[..., b]).mean()),
                "mean": float(log_ratio[..., b].mean()),
            }
            for b, band in enumerate(bands)
        },
        "throughput": {
            "encode_samples_per_s": samples / encode_s if encode_s else None,
            "decode_samples_per_s": samples / decode_s if decode_s else None,
            "encode_seconds_per_s": x.shape[0] * x.shape[-1] / sfreq / encode_s
            if encode_s
            else None,
        },
    }
    (folder / "card.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_reconstruction(x[0], y[0], sfreq, folder / "reconstruction.png", ch_names)
    plot_psd(
        {"real": x64, "decoded": y},
        sfreq,
        folder / "psd.png",
        bands=BANDS,
        title=f"PSD of real and decoded signals ({artifact.name})",
        ylabel="power (data units$^2$/Hz)",
    )
    (folder / "card.md").write_text(_markdown(summary))
    logger.info("tokenizer card of %s written to %s", artifact.name, folder)
    return TokenizerCard(summary, folder)


def _short(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters for a sentence: long lists (a montage's positions) by their length."""
    return {
        k: f"<{len(v)} values>" if isinstance(v, list) and len(json.dumps(v)) > 120 else v
        for k, v in params.items()
    }


def _fitted_line(fitted: dict[str, Any]) -> str:
    if not fitted:
        return "Nothing fitted (a fixed tokenizer)."
    how = (
        f"trained ({fitted['model']}, run `{fitted['run']}`, checkpoint `{fitted['checkpoint']}`)"
        if fitted.get("checkpoint")
        else f"fitted on {fitted['samples']} samples"
    )
    return (
        f"{how[0].upper()}{how[1:]} of {fitted['train_sessions']} training session(s) "
        f"({fitted['train_seconds']:.0f} s; data `{fitted['train_sha256']}`)."
    )


def _markdown(card: dict[str, Any]) -> str:
    tok, data, codes, rec = card["tokenizer"], card["data"], card["codes"], card["reconstruction"]
    fitted = card["fitted_on"]
    lines = [
        f"# Tokenizer card: {tok['name']} `{tok['identity']}`",
        "",
        f"Parameters: `{json.dumps(_short(tok['params']))}`.",
        _fitted_line(fitted),
        f"Scored on {data['segments']} segments of {data['seconds_each']:.1f} s of the "
        f"{data['split']} split ({data['n_channels']} channels at {data['sfreq']:g} Hz).",
        "",
        "| reconstruction | value |",
        "|---|---|",
        f"| PCC (mean over channels) | {rec['pcc']:.4f} |",
        f"| PCC (worst channel) | {rec['pcc_min_channel']:.4f} |",
        f"| variance explained | {rec['variance_explained_percent']:.2f} % |",
        f"| relative L2 error | {rec['relative_l2']:.4f} |",
        "",
        "| band | PSD error, mean abs (dB) | mean (dB) |",
        "|---|---|---|",
        *(
            f"| {band} | {v['mean_abs']:.3f} | {v['mean']:+.3f} |"
            for band, v in card["psd_error_db"].items()
        ),
        "",
        "| codes | value |",
        "|---|---|",
        f"| layout per example | {' x '.join(map(str, codes['layout']))} |",
        f"| vocabulary | {codes['vocab_size']} |",
        f"| codes per second | {codes['codes_per_second']:,.0f} |",
        f"| bits per second | {codes['bits_per_second']:,.0f} "
        f"({codes['bits_per_channel_second']:,.0f} per channel) |",
        f"| codebook usage | {100 * codes['usage']:.1f} % |",
        f"| perplexity | {codes['perplexity']:.1f} |",
        "",
        "| throughput | samples/s |",
        "|---|---|",
        f"| encode | {card['throughput']['encode_samples_per_s'] or float('nan'):,.0f} |",
        f"| decode | {card['throughput']['decode_samples_per_s'] or float('nan'):,.0f} |",
        "",
        "![reconstruction](reconstruction.png)",
        "",
        "![PSD](psd.png)",
        "",
    ]
    return "\n".join(lines)
