"""Figures of an evaluation (PNG, written with matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ephys_eval.metrics import (
    _correlation,
    band_powers,
    bands_for,
    divergence_curve,
    mean_psd,
    time_to_divergence,
)
from ephys_eval.stats import CurveEstimate

__all__ = [
    "plot_band_powers",
    "plot_covariance",
    "plot_divergence",
    "plot_examples",
    "plot_psd",
]

COLORS = {
    "real": "black",
    "model": "tab:blue",
    "ar": "tab:orange",
    "var": "tab:red",
    "persistence": "tab:brown",
    "token_frequency": "tab:green",
    "real_other": "tab:gray",
}


#: Short labels of the canonical bands, drawn on the figures.
BAND_SYMBOLS = {"delta": "δ", "theta": "θ", "alpha": "α", "beta": "β", "gamma": "γ"}


def _color(name: str, index: int) -> str:
    return COLORS.get(name, f"C{index % 10}")


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(*args, **kwargs)


def _shade_bands(ax, bands: Mapping[str, tuple[float, float]]) -> None:
    """Shade each band and label it just above the axes."""
    for i, (name, (low, high)) in enumerate(bands.items()):
        ax.axvspan(low, high, color="tab:purple" if i % 2 else "tab:olive", alpha=0.1, lw=0)
        ax.text(
            (low + high) / 2,
            1.01,
            BAND_SYMBOLS.get(name, name),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=10,
            color="dimgrey",
            clip_on=False,
        )


def plot_psd(
    signals: Mapping[str, np.ndarray],
    sfreq: float,
    path: Path,
    bands: Mapping[str, tuple[float, float]] | None = None,
    title: str = "Power spectral density of rollouts",
    ylabel: str = "power (normalised units$^2$/Hz)",
) -> Path:
    """Welch PSD of the real continuation, the model and the baselines.

    Parameters
    ----------
    signals : mapping of str to ndarray, shape (N, C, T)
        Name -> signals; each is drawn as its PSD averaged over segments and channels.
    sfreq : float
        Sampling frequency in Hz.
    path : Path
        PNG to write.
    bands : mapping of str to (float, float), optional
        Frequency bands in Hz to shade and label (e.g. :data:`ephys_eval.metrics.BANDS`; bands
        above Nyquist are dropped).
    title, ylabel : str
        Axis title and y label.

    Returns
    -------
    Path
        ``path``.
    """
    plt, fig, ax = _figure(figsize=(6, 4))
    lowest = None
    for i, (name, x) in enumerate(signals.items()):
        freqs, psd = mean_psd(x, sfreq)
        if name == "real" and np.any(psd[1:] > 0):
            lowest = float(psd[1:][psd[1:] > 0].min())
        if not np.any(psd[1:] > 0):
            continue  # a constant forecast has no power to draw
        ax.semilogy(
            freqs[1:],
            np.where(psd[1:] > 0, psd[1:], np.nan),
            label=name,
            color=_color(name, i),
            lw=2 if name == "real" else 1.2,
        )
    if lowest is not None:  # near-constant forecasts would stretch the axis by decades
        ax.set_ylim(bottom=max(ax.get_ylim()[0], lowest / 100))
    if bands is not None:
        _shade_bands(ax, bands_for(sfreq, bands))
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, pad=18 if bands is not None else 6)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_covariance(signals: Mapping[str, np.ndarray], path: Path) -> Path:
    """Channel correlation matrices side by side."""
    plt, fig, axes = _figure(1, len(signals), figsize=(3.2 * len(signals), 3.2))
    for ax, (name, x) in zip(np.atleast_1d(axes), signals.items(), strict=True):
        image = ax.imshow(_correlation(x), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(np.atleast_1d(axes)), shrink=0.8, label="correlation")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_divergence(
    real: np.ndarray,
    generated: Mapping[str, np.ndarray],
    sfreq: float,
    path: Path,
    null: np.ndarray | CurveEstimate | None = None,
    null_band: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Normalised error against the true continuation over the forecast horizon.

    Parameters
    ----------
    real : ndarray, shape (N, C, H)
        True continuations.
    generated : mapping of str to ndarray, shape (N, C, H)
        Forecaster name -> its continuations of the same contexts.
    sfreq : float
        Sampling frequency in Hz.
    path : Path
        PNG to write.
    null : ndarray, shape (H,), or CurveEstimate, optional
        The real-versus-real null (:func:`ephys_eval.metrics.divergence_null`), drawn as a
        dashed line; a :class:`~ephys_eval.stats.CurveEstimate` (from ``bootstrap_curve``)
        also gives the band. Without it, the level 2 of an independent draw is drawn instead.
    null_band : (ndarray, ndarray), optional
        Lower and upper bounds ``(H,)`` of the null, drawn as a shaded band. Where a
        forecaster's curve first reaches the null (its lower bound when there is a band), a
        dot marks its time to divergence.

    Returns
    -------
    Path
        ``path``.
    """
    if isinstance(null, CurveEstimate):
        null_band = (null.low, null.high) if null_band is None else null_band
        null = null.value
    plt, fig, ax = _figure(figsize=(6, 4))
    smooth = max(1, int(sfreq // 20))
    for i, (name, x) in enumerate(generated.items()):
        curve = divergence_curve(x, real, smooth=smooth)
        times = np.arange(1, len(curve) + 1) / sfreq
        color = _color(name, i)
        ax.plot(times, curve, label=name, color=color)
        if null is not None:
            lower = None if null_band is None else np.asarray(null_band[0])
            when = time_to_divergence(curve, np.asarray(null), times, lower, if_never="inf")
            if np.isfinite(when):
                ax.plot(when, curve[np.searchsorted(times, when)], "o", color=color, ms=5)
    times = np.arange(1, real.shape[-1] + 1) / sfreq
    if null is None:
        ax.axhline(2.0, color="grey", ls=":", lw=1, label="independent draw")
    else:
        ax.plot(times, null, color="grey", ls="--", lw=1.2, label="real vs real (null)")
    if null_band is not None:
        ax.fill_between(
            times,
            null_band[0],
            null_band[1],
            color="grey",
            alpha=0.25,
            lw=0,
            label="null interval",
        )
    ax.set_xlabel("horizon (s)")
    ax.set_ylabel("MSE / variance of the real signal")
    ax.set_title("Rollout divergence" + ("" if null is None else " (dots: time to divergence)"))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_band_powers(
    signals: Mapping[str, np.ndarray],
    sfreq: float,
    path: Path,
    bands: Mapping[str, tuple[float, float]] | None = None,
    relative: bool = False,
) -> Path:
    """Distribution of log10 band power of each signal, band by band, as box plots.

    Parameters
    ----------
    signals : mapping of str to ndarray, shape (N, C, T)
        Name -> signals (real data first, by convention); each box pools the segments and
        channels of one signal in one band.
    sfreq : float
        Sampling frequency in Hz.
    path : Path
        PNG to write.
    bands : mapping of str to (float, float), optional
        Bands in Hz; ``bands_for(sfreq)`` by default.
    relative : bool
        Plot relative band power (see :func:`ephys_eval.metrics.band_powers`).

    Returns
    -------
    Path
        ``path``. Signals without any power (constant forecasts) are left out.
    """
    from matplotlib.patches import Patch

    bands = bands_for(sfreq) if bands is None else bands_for(sfreq, bands)
    drawn = {name: x for name, x in signals.items() if np.any(np.ptp(x, axis=-1) > 0)}
    plt, fig, ax = _figure(figsize=(max(6.0, 1.3 * len(bands) * max(1, len(drawn)) / 2), 4))
    width = 0.8 / max(1, len(drawn))
    handles = []
    for i, (name, x) in enumerate(drawn.items()):
        power = band_powers(x, sfreq, bands, relative=relative)
        color = _color(name, list(signals).index(name))
        positions = np.arange(len(bands)) - 0.4 + width * (i + 0.5)
        ax.boxplot(
            [power[..., b].ravel() for b in range(len(bands))],
            positions=positions,
            widths=width * 0.85,
            patch_artist=True,
            showfliers=False,
            boxprops={"facecolor": color, "alpha": 0.6},
            medianprops={"color": "black"},
        )
        handles.append(Patch(facecolor=color, alpha=0.6, label=name))
    ax.set_xticks(
        np.arange(len(bands)),
        [f"{name}\n{low:g}-{high:g} Hz" for name, (low, high) in bands.items()],
    )
    ax.set_xlim(-0.5, len(bands) - 0.5)
    ax.set_ylabel(
        f"log10 power relative to 1-{min(45.0, sfreq / 2):g} Hz"
        if relative
        else "log10 band power (normalised units$^2$)"
    )
    ax.set_title("Band power over segments and channels")
    if handles:
        ax.legend(handles=handles)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_examples(
    context: np.ndarray,
    signals: Mapping[str, np.ndarray],
    sfreq: float,
    path: Path,
    channels: int = 3,
) -> Path:
    """A few channels of one example: context, then the real and generated continuations."""
    n = min(channels, context.shape[0])
    plt, fig, axes = _figure(n, 1, figsize=(8, 1.8 * n), sharex=True)
    t_ctx = np.arange(-context.shape[-1], 0) / sfreq
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.plot(t_ctx, context[i], color="grey", lw=1)
        for name, x in signals.items():
            ax.plot(
                np.arange(x.shape[-1]) / sfreq,
                x[i],
                color=COLORS.get(name),
                lw=1,
                label=name if i == 0 else None,
            )
        ax.axvline(0, color="k", lw=0.8)
        ax.set_ylabel(f"ch {i}")
    np.atleast_1d(axes)[-1].set_xlabel("time from the end of the context (s)")
    fig.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reconstruction(
    real: np.ndarray,
    decoded: np.ndarray,
    sfreq: float,
    path: Path,
    ch_names: list[str] | None = None,
    channels: int = 3,
    seconds: float = 2.0,
) -> Path:
    """A few channels of one segment, real and decoded, over the first ``seconds``."""
    n = min(channels, real.shape[0])
    stop = min(real.shape[-1], int(seconds * sfreq))
    plt, fig, axes = _figure(n, 1, figsize=(8, 1.8 * n), sharex=True)
    t = np.arange(stop) / sfreq
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.plot(
            t,
            real[i, :stop],
            color=COLORS.get("real", "k"),
            lw=1.4,
            label="real" if i == 0 else None,
        )
        ax.plot(t, decoded[i, :stop], color="tab:orange", lw=1, label="decoded" if i == 0 else None)
        ax.set_ylabel(ch_names[i] if ch_names else f"ch {i}")
    np.atleast_1d(axes)[-1].set_xlabel("time (s)")
    fig.legend(loc="upper right", fontsize="small")
    fig.suptitle("Real and decoded signal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_divergence_with_null(
    real: np.ndarray,
    forecasts: Mapping[str, np.ndarray],
    sfreq: float,
    path: Path,
    divergence: Mapping[str, Any],
) -> Path:
    """:func:`plot_divergence` with the null curve and band of a scored rollout's
    ``divergence`` (:func:`ephys_eval.generative.score_rollouts`)."""
    null = divergence["null"]
    return plot_divergence(
        real,
        forecasts,
        sfreq,
        path,
        null=np.asarray(null["value"], dtype=float),
        null_band=(np.asarray(null["low"], dtype=float), np.asarray(null["high"], dtype=float)),
    )
