"""Evaluation of token forecasters beside classical baselines, and of their rollouts against
real data calibrated by a real-versus-real null.

Everything the model is scored on, the baselines (:mod:`ephys_eval.baselines`: AR, VAR,
persistence, token frequency) are scored on too: the same windows, the same contexts. The
classical ones are fitted on the training split, on the codes decoded back to signal (what
the model sees), and scored in the model's currency.

Result keys (the ``summary.json`` entry of this evaluator):

``teacher_forced``
    ``split``, ``n_windows``, ``window``; ``forecasters``: each forecaster's
    ``cross_entropy`` (nats per code) and ``accuracy``, each ``{value, low, high, n, level}``
    (a bootstrap interval over windows), and the model's training ``loss``;
    ``best_baseline`` (lowest cross-entropy) and ``model_minus_best`` (paired bootstrap of
    the difference: negative means the model is better).
``baselines``
    What each fitted baseline is (AR/VAR order and how it was chosen, spreads).
``rollout``
    ``n_contexts``, ``context_seconds``, ``horizon_seconds``, ``sfreq``, ``sampling``,
    ``generation`` (the model's rollout cost: ``seconds``, ``tokens_per_s`` and
    ``signal_seconds_per_s``, seconds of signal generated per wall second), and
    :func:`ephys_eval.generative.score_rollouts`'s ``metrics``, ``real`` and ``divergence``
    for the model and every baseline, beside ``real_other`` (the null).
``figures``
    ``psd.png``, ``band_powers.png``, ``covariance.png``, ``divergence.png``, ``examples.png``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ephys_core.components import Component
from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_core.protocols import EvaluationContext, Segment
from ephys_core.reporting import ReportSection, SummaryTable
from ephys_eval import plots
from ephys_eval.baselines import (
    GaussianBaseline,
    Persistence,
    Scores,
    TokenFrequency,
    TokenStatistics,
)
from ephys_eval.configs import TokenForecastConfig
from ephys_eval.generative import NULL, rollout_steps, rollout_table, sampler_of, score_rollouts
from ephys_eval.linear import fit_ar, fit_var
from ephys_eval.metrics import BANDS
from ephys_eval.stats import bootstrap, format_estimate

__all__ = ["TokenForecast"]

logger = get_logger(__name__)
MODEL = "model"


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _share(value: float | None) -> str:
    """A fraction as a percentage, '-' when unknown (a summary from an older version)."""
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.0f} %"


def _to_device(value: Any, device: str) -> Any:
    import torch

    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return torch.as_tensor(value).to(device)


class TokenForecast(Component):
    """Teacher-forced scores and rollouts of a token forecaster beside classical baselines."""

    Config: ClassVar[type[TokenForecastConfig]] = TokenForecastConfig
    outputs: ClassVar[tuple[str, ...]] = ("teacher_forced", "baselines", "rollout", "figures")

    def __init__(self, config: TokenForecastConfig) -> None:
        self.config = config

    # -- data ---------------------------------------------------------------------------------
    @staticmethod
    def _codes(builder: Any, segments: list[Segment]) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, decoded signal)`` of segments, each ``(N, C, L)``."""
        codes = np.stack([builder.to_tokens(s.x, s) for s in segments]).astype(np.int64)
        signal = np.stack([builder.to_signal(c, s) for c, s in zip(codes, segments, strict=True)])
        return codes, signal.astype(np.float64)

    def _fit_baselines(self, context: EvaluationContext, vocab: int) -> list[Any]:
        """The configured baselines, fitted on decoded codes of the training split."""
        builder, cfg = context.builder, self.config
        sfreq = float(context.data_spec["sfreq"])
        length = min(int(cfg.fit_seconds * sfreq), builder.longest_segment("train"))
        # a forecast inside a scoring window sees at most the window's samples
        longest = min(length // 4, int(context.data_spec["n_times"]))
        fit = builder.segments("train", length, cfg.fit_segments, seed=cfg.seed + 1)
        codes, signal = self._codes(builder, fit)
        fitted: dict[str, Any] = {}
        for name in cfg.baselines:
            if name == "ar":
                order = max(1, min(cfg.ar_max_order, longest))
                fitted[name] = GaussianBaseline(name, fit_ar(signal, max_order=order))
            elif name == "var":
                orders = [q for q in cfg.var_orders if q <= longest] or [1]
                fitted[name] = GaussianBaseline(name, fit_var(signal, orders=orders))
            elif name == "persistence":
                fitted[name] = GaussianBaseline(name, Persistence(signal))
            else:
                fitted[name] = TokenFrequency(
                    TokenStatistics.from_batches([codes], vocab, codes.shape[1])
                )
        logger.info(
            "baselines fitted on %d training segments of %.1f s: %s",
            len(fit),
            length / sfreq,
            ", ".join(
                f"{n} (order {f.model.order})" if hasattr(getattr(f, "model", None), "order") else n
                for n, f in fitted.items()
            ),
        )
        return list(fitted.values())

    # -- teacher forcing ------------------------------------------------------------------------
    def _model_scores(
        self, context: EvaluationContext, codes: np.ndarray, segments: list[Segment]
    ) -> tuple[Scores, float | None]:
        import torch

        builder, cfg = context.builder, self.config
        nll, correct, own = [], [], []
        with torch.no_grad():
            for start in range(0, len(codes), cfg.batch_size):
                batch = codes[start : start + cfg.batch_size]
                parts = segments[start : start + cfg.batch_size]
                side = builder.side_inputs(parts, 0, batch.shape[-1] - 1)
                inputs = {"x": batch[..., :-1], **side} if side else batch[..., :-1]
                outputs = context.model(_to_device(inputs, context.device))
                logits = outputs[0] if isinstance(outputs, tuple | list) else outputs
                target = torch.as_tensor(batch[..., 1:], device=context.device)
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                nll.append(-log_probs.gather(-1, target[..., None])[..., 0].cpu().numpy())
                correct.append((logits.argmax(-1) == target).cpu().numpy())
                if context.loss is not None:
                    own.append(float(context.loss(outputs, target)["loss"]))
        return Scores(np.concatenate(nll), np.concatenate(correct)), (
            float(np.mean(own)) if own else None
        )

    def _teacher_forced(
        self, context: EvaluationContext, split: str, baselines: list[Any]
    ) -> dict[str, Any]:
        builder, cfg = context.builder, self.config
        window = int(context.data_spec["n_times"])
        length = min(window + 1, builder.longest_segment(split))
        segments = builder.segments(split, length, cfg.max_windows, seed=cfg.seed)
        codes, signal = self._codes(builder, segments)
        edges = np.stack([builder.bin_edges(s) for s in segments])
        scores = {MODEL: None}
        model_scores, own_loss = self._model_scores(context, codes, segments)
        scores[MODEL] = model_scores
        for baseline in baselines:
            scores[baseline.name] = baseline.teacher_forced(codes, signal, edges)
        per_window = {n: s.nll.mean(axis=(1, 2)) for n, s in scores.items()}
        hits = {n: s.correct.mean(axis=(1, 2)) for n, s in scores.items()}

        def mean(values: np.ndarray) -> float:
            return float(values.mean())

        forecasters = {
            name: {
                "cross_entropy": bootstrap(
                    mean, per_window[name], n_boot=cfg.n_boot, seed=cfg.seed
                ).to_dict(),
                "accuracy": bootstrap(mean, hits[name], n_boot=cfg.n_boot, seed=cfg.seed).to_dict(),
            }
            for name in scores
        }
        if own_loss is not None:
            forecasters[MODEL]["loss"] = own_loss
        result: dict[str, Any] = {
            "split": split,
            "n_windows": len(segments),
            "window": length - 1,
            "forecasters": forecasters,
        }
        names = [b.name for b in baselines]
        if names:
            best = min(names, key=lambda n: forecasters[n]["cross_entropy"]["value"])
            result["best_baseline"] = best
            result["model_minus_best"] = bootstrap(
                lambda a, b: float((a - b).mean()),
                per_window[MODEL],
                per_window[best],
                n_boot=cfg.n_boot,
                seed=cfg.seed,
            ).to_dict()
        return result

    # -- rollouts ---------------------------------------------------------------------------
    def _lengths(self, context: EvaluationContext, split: str) -> tuple[int, int]:
        sfreq = float(context.data_spec["sfreq"])
        cfg = self.config
        return rollout_steps(
            cfg.context_seconds or context.data_spec["n_times"] / sfreq,
            cfg.horizon_seconds,
            sfreq,
            context.builder.longest_segment(split),
            split,
            "token_forecast",
        )

    def _rollouts(
        self, context: EvaluationContext, split: str, baselines: list[Any], out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, str]]:
        import torch

        builder, model, cfg = context.builder, context.model, self.config
        sfreq = float(context.data_spec["sfreq"])
        n_ctx, n_hor = self._lengths(context, split)
        segments = builder.segments(split, n_ctx + n_hor, cfg.n_contexts, seed=cfg.seed + 2)
        unrelated = builder.segments(split, n_hor, cfg.n_contexts, seed=cfg.seed + 3)
        codes, signal = self._codes(builder, segments)
        side = {
            k: torch.as_tensor(v, device=context.device)
            for k, v in builder.side_inputs(segments, 0, n_ctx).items()
        }
        ctx = torch.as_tensor(codes[..., :n_ctx], device=context.device)
        future = builder.side_inputs(segments, n_ctx, n_ctx + n_hor).get("condition")
        sampler = sampler_of(cfg)
        started = time.perf_counter()
        with torch.no_grad():
            generated = model.forecast(
                {"x": ctx, **side} if side else ctx,
                n_hor,
                sampler=sampler,
                use_cache=cfg.use_cache,
                future_condition=None if future is None else torch.as_tensor(future),
            )
        continuation_codes = {MODEL: generated.cpu().numpy()}
        wall = time.perf_counter() - started
        generation = {
            "seconds": wall,
            "tokens_per_s": generated.numel() / wall,
            "signal_seconds_per_s": len(segments) * n_hor / sfreq / wall,
            "use_cache": cfg.use_cache,
            "device": context.device,
        }
        rng = np.random.default_rng(cfg.seed)
        for baseline in baselines:
            out = baseline.rollout(codes[..., :n_ctx], signal[..., :n_ctx], n_hor, rng)
            if not getattr(baseline, "draws_codes", False):  # quantised like the data
                out = np.stack(
                    [builder.encode_signal(o, s) for o, s in zip(out, segments, strict=True)]
                )
            continuation_codes[baseline.name] = out

        def decoded(batch: np.ndarray, parts: list[Segment]) -> np.ndarray:
            return np.stack([builder.to_signal(b, s) for b, s in zip(batch, parts, strict=True)])

        real = signal[..., n_ctx:]
        forecasts = {name: decoded(c, segments) for name, c in continuation_codes.items()}
        others = self._codes(builder, unrelated)[1]
        scored = score_rollouts(forecasts, real, others, sfreq, n_boot=cfg.n_boot, seed=cfg.seed)
        result: dict[str, Any] = {
            "n_contexts": len(segments),
            "context_seconds": n_ctx / sfreq,
            "horizon_seconds": n_hor / sfreq,
            "sfreq": sfreq,
            "sampling": sampler.model_dump(),
            "generation": generation,
            **scored,
        }
        shown = {"real": real, **forecasts}
        figures = {
            "psd": plots.plot_psd(shown, sfreq, out_dir / "psd.png", bands=BANDS).name,
            "band_powers": plots.plot_band_powers(
                {"real": real, NULL: others, **forecasts}, sfreq, out_dir / "band_powers.png"
            ).name,
            "covariance": plots.plot_covariance(shown, out_dir / "covariance.png").name,
            "divergence": plots.plot_divergence_with_null(
                real, forecasts, sfreq, out_dir / "divergence.png", scored["divergence"]
            ).name,
            "examples": plots.plot_examples(
                signal[0, :, :n_ctx],
                {"real": real[0], MODEL: forecasts[MODEL][0]},
                sfreq,
                out_dir / "examples.png",
            ).name,
        }
        return result, figures

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        """Score the model and the baselines; write figures into ``context.out_dir``."""
        spec = context.data_spec
        builder = context.builder
        if "vocab_size" not in spec:
            raise ConfigError(
                "token_forecast evaluates token models; the dataset has no "
                "vocabulary (use tokens_next_step or mulaw_next_step)"
            )
        if builder is None or not all(
            hasattr(builder, name) for name in ("segments", "to_signal", "bin_edges")
        ):
            raise ConfigError(
                "token_forecast: the dataset offers no segments and token codec "
                "(ephys_core.protocols.SegmentSource and TokenCodec)"
            )
        if not hasattr(context.model, "forecast"):
            raise ConfigError("token_forecast: the model has no forecast() method")
        split = "test" if len(context.datasets.get("test", [])) else "val"
        if getattr(context.config, "evaluation", None) is not None:
            split = context.config.evaluation.split
        out_dir = Path(context.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        context.model.eval()
        baselines = self._fit_baselines(context, int(spec["vocab_size"]))
        teacher = self._teacher_forced(context, split, baselines)
        rollout, figures = self._rollouts(context, split, baselines, out_dir)
        ce = teacher["forecasters"]
        logger.info(
            "%s cross-entropy (nats/code): %s",
            split,
            ", ".join(f"{n} {v['cross_entropy']['value']:.3f}" for n, v in ce.items()),
        )
        return {
            "teacher_forced": teacher,
            "baselines": {b.name: b.describe() for b in baselines},
            "rollout": rollout,
            "figures": figures,
        }

    # -- rendering (the report and the command line call these; they parse nothing) ---------
    @staticmethod
    def summary_tables(result: dict[str, Any]) -> list[SummaryTable]:
        """The teacher-forced table (with the best baseline) and the rollout table."""
        tf, ro = result["teacher_forced"], result["rollout"]
        rows = [
            (name, format_estimate(scores["cross_entropy"]), format_estimate(scores["accuracy"]))
            for name, scores in tf["forecasters"].items()
        ]
        tables = [
            SummaryTable(
                f"token_forecast on the {tf['split']} split: teacher-forced, {tf['n_windows']} "
                "windows (95 % intervals)",
                ["forecaster", "cross-entropy (nats/code)", "accuracy"],
                rows,
            )
        ]
        if "best_baseline" in tf:
            tables[0] = SummaryTable(
                tables[0].title,
                tables[0].columns,
                [
                    *rows,
                    (
                        f"model - {tf['best_baseline']}",
                        format_estimate(tf["model_minus_best"]),
                        "",
                    ),
                ],
            )
        tables.append(
            rollout_table(
                ro,
                f"rollouts: {ro['n_contexts']} contexts, {_fmt(ro['horizon_seconds'])} s ahead "
                f"({NULL} = unrelated real data: the null)",
            )
        )
        return tables

    @staticmethod
    def report_section(result: dict[str, Any]) -> ReportSection:
        """The tables, the baselines, the spectral features and the figures."""
        tf, ro = result["teacher_forced"], result["rollout"]
        tables = TokenForecast.summary_tables(result)
        lines = [
            f"### Teacher-forced ({tf['split']} split, {tf['n_windows']} windows of "
            f"{tf['window']} steps)",
            "",
            "Every forecaster is scored on the same windows, in nats per code (lower is "
            "better); intervals are 95 % bootstrap intervals over windows.",
            "",
            *tables[0].to_markdown(),
            "",
        ]
        if "best_baseline" in tf:
            diff = tf["model_minus_best"]
            verdict = "beats" if diff["value"] < 0 else "does not beat"
            lines += [
                f"The model {verdict} the best baseline ({tf['best_baseline']}): "
                f"{format_estimate(diff)} nats/code.",
                "",
            ]
        lines += [
            "Baselines: "
            + "; ".join(
                f"{name}: {info.get('kind')}"
                + (f" order {info['order']}" if "order" in info else "")
                for name, info in result["baselines"].items()
            ),
            "",
            f"### Rollouts ({ro['n_contexts']} contexts of {_fmt(ro['context_seconds'])} s, "
            f"{_fmt(ro['horizon_seconds'])} s ahead, {ro['sampling']['strategy']} sampling)",
            "",
            "Distances to the true continuations (0 = identical). The row "
            f"`{NULL}` compares unrelated real segments with them: the null. A forecaster "
            "generates realistic activity on a metric when it scores within the null's "
            "interval; it diverges when its error reaches what unrelated real data gives.",
            "",
            *tables[1].to_markdown(),
            "",
        ]
        spectral = ro["metrics"]
        real = ro["real"]
        low, high = real.get("fit_range_hz", (2.0, 40.0))
        lines += [
            f"Spectral shape of each channel's spectrum averaged over the contexts (mean over "
            f"channels): the 1/f exponent of a power law fitted over {low:g}-{high:g} Hz "
            "without 7-14 Hz (the range ends at the data's low-pass edge where it has one), "
            "and the alpha peak above it, over the channels that have one ('-': none has; "
            "a '-' exponent: the signal is constant).",
            "",
            "| forecaster | 1/f exponent | alpha peak (Hz) | channels with an alpha peak |",
            "|---|---|---|---|",
            f"| real | {format_estimate(real['aperiodic_exponent'], 2)} | "
            f"{format_estimate(real['peak_alpha_frequency'], 2)} | "
            f"{_share(real.get('alpha_channels'))} |",
        ]
        for name in spectral["aperiodic_exponent"]:
            lines.append(
                f"| {name} | {format_estimate(spectral['aperiodic_exponent'][name], 2)} | "
                f"{format_estimate(spectral['peak_alpha_frequency'][name], 2)} | "
                f"{_share(spectral.get('alpha_channels', {}).get(name))} |"
            )
        return ReportSection(
            "token_forecast", body="\n".join(lines), figures=list(result["figures"].values())
        )

    @staticmethod
    def verdict(result: dict[str, Any]) -> tuple[bool, str]:
        """Whether the model's cross-entropy beats the best baseline's, in words."""
        tf = result["teacher_forced"]
        split = {"val": "validation", "train": "training"}.get(tf["split"], tf["split"])
        ce = tf["forecasters"]
        model = ce[MODEL]["cross_entropy"]["value"]
        if "best_baseline" not in tf:
            return False, f"{split} cross-entropy: model {model:.3f} nats/code (no baseline)"
        best = tf["best_baseline"]
        diff = tf["model_minus_best"]  # model - best: negative when the model is better
        beats = diff["value"] < 0
        others = ", ".join(
            f"{n} {v['cross_entropy']['value']:.3f}" for n, v in ce.items() if n != MODEL
        )
        margin = f"{diff['value']:+.3f} nats/code"
        if diff.get("low") is not None and diff.get("high") is not None:
            margin += f" [95 % interval {diff['low']:+.3f}, {diff['high']:+.3f}]"
        return beats, (
            f"{split} cross-entropy: model {model:.3f} vs {others} nats/code; model minus the "
            f"best baseline ({best}): {margin}: the model "
            f"{'beats' if beats else 'does not beat'} it"
        )

    @classmethod
    def example_context(cls, workdir: Path) -> EvaluationContext:
        """A tiny untrained gpt2meg on a small synthetic dataset."""
        from ephys_core.plugins import get_registry
        from ephys_data.synthetic import write_example_dataset

        root = write_example_dataset(Path(workdir) / "prepared", seconds=6)
        builder = get_registry("datasets").create(
            "mulaw_next_step",
            {"roots": [str(root)], "window_seconds": 0.3, "split": {"val": 0.2, "test": 0.2}},
        )
        spec = builder.data_spec()
        models = get_registry("models")
        params = models.load("gpt2meg").example_config().model_dump()
        params.update(n_channels=spec["n_channels"], vocab_size=spec["vocab_size"])
        return EvaluationContext(
            model=models.create("gpt2meg", params).eval(),
            datasets={s: builder.build(s) for s in ("train", "val", "test")},
            out_dir=Path(workdir) / "eval",
            data_spec=spec,
            builder=builder,
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> TokenForecastConfig:
        """Small enough to run in seconds."""
        return cls.Config(
            max_windows=8,
            fit_segments=4,
            fit_seconds=2.0,
            ar_max_order=4,
            var_orders=[1, 2],
            n_contexts=4,
            horizon_seconds=0.3,
            n_boot=20,
        )
