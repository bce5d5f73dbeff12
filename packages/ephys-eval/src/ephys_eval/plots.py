"""Figures of an evaluation (PNG, written with matplotlib's non-interactive Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ephys_eval.metrics import _correlation, divergence_curve, mean_psd

__all__ = ["plot_covariance", "plot_divergence", "plot_examples", "plot_psd"]

COLORS = {
    "real": "black",
    "model": "tab:blue",
    "repeat_last": "tab:orange",
    "token_frequency": "tab:green",
}


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(*args, **kwargs)


def plot_psd(signals: Mapping[str, np.ndarray], sfreq: float, path: Path) -> Path:
    """Welch PSD of the real continuation, the model and the baselines."""
    plt, fig, ax = _figure(figsize=(6, 4))
    for name, x in signals.items():
        freqs, psd = mean_psd(x, sfreq)
        if not np.any(psd[1:] > 0):
            continue  # a constant forecast has no power to draw
        ax.semilogy(
            freqs[1:],
            np.where(psd[1:] > 0, psd[1:], np.nan),
            label=name,
            color=COLORS.get(name),
            lw=2 if name == "real" else 1.2,
        )
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power (normalised units$^2$/Hz)")
    ax.set_title("Power spectral density of rollouts")
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
    real: np.ndarray, generated: Mapping[str, np.ndarray], sfreq: float, path: Path
) -> Path:
    """Normalised error against the true continuation over the forecast horizon."""
    plt, fig, ax = _figure(figsize=(6, 4))
    for name, x in generated.items():
        curve = divergence_curve(x, real, smooth=max(1, int(sfreq // 20)))
        ax.plot(np.arange(1, len(curve) + 1) / sfreq, curve, label=name, color=COLORS.get(name))
    ax.axhline(2.0, color="grey", ls=":", lw=1, label="independent draw")
    ax.set_xlabel("horizon (s)")
    ax.set_ylabel("MSE / variance of the real signal")
    ax.set_title("Rollout divergence")
    ax.legend()
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
