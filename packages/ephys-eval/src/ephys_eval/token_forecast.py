"""Evaluation of token forecasters: teacher-forced scores and free-running rollouts.

Everything the model is scored on, the naive baselines (:mod:`ephys_eval.baselines`) are scored
on too, on the same windows and the same contexts.

Result keys (also the ``summary.json`` entry of this evaluator):

``teacher_forced``
    ``n_windows``; ``model``, ``token_frequency`` and ``repeat_last`` each with
    ``cross_entropy`` (nats per token) and ``accuracy``; ``model`` also has ``loss`` (the
    training loss's own value, e.g. with label smoothing).
``rollout``
    ``n_contexts``, ``context_seconds``, ``horizon_seconds``, ``sfreq``, ``sampling``;
    ``psd_log_distance``, ``correlation_distance`` and ``divergence_seconds`` (horizon until
    the normalised error first exceeds 1) for ``model``, ``repeat_last`` and
    ``token_frequency``; ``divergence`` with the curves (``horizon_seconds`` and one list per
    forecaster).
``figures``
    File names of ``psd.png``, ``covariance.png``, ``divergence.png`` and ``examples.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ephys_core.components import Component
from ephys_core.errors import ConfigError
from ephys_core.logging import get_logger
from ephys_core.protocols import EvaluationContext
from ephys_core.reporting import ReportSection, SummaryTable
from ephys_eval import plots
from ephys_eval.baselines import TokenStatistics
from ephys_eval.configs import TokenForecastConfig
from ephys_eval.metrics import correlation_distance, divergence_curve, psd_log_distance

__all__ = ["TokenForecast"]

logger = get_logger(__name__)
FORECASTERS = ("model", "repeat_last", "token_frequency")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _primary(value: Any) -> Any:
    return value["x"] if isinstance(value, dict) else value


def _target_tokens(targets: Any) -> Any:
    return targets["y"] if isinstance(targets, dict) else targets


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value.to(device) if hasattr(value, "to") else value


class TokenForecast(Component):
    """Teacher-forced and free-running evaluation of a token forecaster against baselines."""

    Config: ClassVar[type[TokenForecastConfig]] = TokenForecastConfig
    outputs: ClassVar[tuple[str, ...]] = ("teacher_forced", "rollout", "figures")

    def __init__(self, config: TokenForecastConfig) -> None:
        self.config = config

    # -- teacher forcing --------------------------------------------------------------------
    def _loader(self, dataset: Any) -> Any:
        from torch.utils.data import DataLoader

        return DataLoader(dataset, batch_size=self.config.batch_size, shuffle=False)

    def _statistics(
        self, context: EvaluationContext, vocab: int, n_channels: int
    ) -> TokenStatistics:
        stats = TokenStatistics(vocab, n_channels)
        for i, (inputs, _) in enumerate(self._loader(context.datasets["train"])):
            if i >= self.config.stats_batches:
                break
            stats.update(_primary(inputs).numpy())
        return stats

    def _teacher_forced(
        self, context: EvaluationContext, split: str, stats: TokenStatistics
    ) -> dict[str, Any]:
        import torch

        sums = {name: np.zeros(2) for name in FORECASTERS}
        own_loss, n = 0.0, 0
        with torch.no_grad():
            for i, (inputs, targets) in enumerate(self._loader(context.datasets[split])):
                if i >= self.config.max_batches:
                    break
                outputs = context.model(_to_device(inputs, context.device))
                logits = outputs[0] if isinstance(outputs, tuple | list) else outputs
                y = _target_tokens(targets).to(context.device)
                if y.is_floating_point():
                    raise ConfigError("token_forecast needs integer token targets")
                ce = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1)
                )
                accuracy = (logits.argmax(-1) == y).float().mean()
                sums["model"] += [float(ce), float(accuracy)]
                if context.loss is not None:
                    own_loss += float(
                        context.loss(outputs, _to_device(targets, context.device))["loss"]
                    )
                x_np, y_np = _primary(inputs).numpy(), _target_tokens(targets).numpy()
                sums["token_frequency"] += stats.frequency_scores(x_np, y_np)
                sums["repeat_last"] += stats.persistence_scores(x_np, y_np)
                n += 1
        if n == 0:
            raise ConfigError(f"the {split} split has no windows to evaluate")
        result: dict[str, Any] = {"n_windows": len(context.datasets[split])}
        for name in FORECASTERS:
            ce, acc = sums[name] / n
            result[name] = {"cross_entropy": ce, "accuracy": acc}
        if context.loss is not None:
            result["model"]["loss"] = own_loss / n
        return result

    # -- rollouts ---------------------------------------------------------------------------
    def _rollouts(
        self, context: EvaluationContext, split: str, stats: TokenStatistics, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, str]]:
        import torch

        from ephys_models.generation import Sampler

        builder, model, cfg = context.builder, context.model, self.config
        if builder is None or not hasattr(builder, "to_signal"):
            raise ConfigError(
                "token_forecast: the dataset offers no segments and token codec to roll out on"
            )
        if not hasattr(model, "forecast"):
            raise ConfigError("token_forecast: the model has no forecast() method")
        sfreq = float(context.data_spec["sfreq"])
        n_ctx = int(round((cfg.context_seconds or context.data_spec["n_times"] / sfreq) * sfreq))
        n_hor = int(round(cfg.horizon_seconds * sfreq))
        longest = builder.longest_segment(split)
        if n_ctx + n_hor > longest:  # short recordings: shorten the rollout to fit
            n_ctx = min(n_ctx, max(longest // 2, 1))
            n_hor = longest - n_ctx
            if n_hor < 1:
                raise ConfigError(f"token_forecast: the {split} split is too short to roll out")
            logger.warning(
                "the %s split's sessions are short: rolling out %.2f s after %.2f s contexts",
                split,
                n_hor / sfreq,
                n_ctx / sfreq,
            )
        segments = builder.segments(split, n_ctx + n_hor, cfg.n_contexts, seed=cfg.seed)
        tokens = np.stack([builder.to_tokens(s.x, s) for s in segments])
        ctx = torch.as_tensor(tokens[..., :n_ctx], device=context.device)
        side = {
            k: torch.as_tensor(v, device=context.device)
            for k, v in builder.side_inputs(segments, 0, n_ctx).items()
        }
        inputs: Any = {"x": ctx, **side} if side else ctx
        future = builder.side_inputs(segments, n_ctx, n_ctx + n_hor).get("condition")
        if future is not None:
            future = torch.as_tensor(future, device=context.device)
        sampler = Sampler(
            strategy=cfg.strategy,
            temperature=cfg.temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            seed=cfg.seed,
        )
        with torch.no_grad():
            generated = (
                model.forecast(
                    inputs, n_hor, sampler=sampler, use_cache=cfg.use_cache, future_condition=future
                )
                .cpu()
                .numpy()
            )
        rng = np.random.default_rng(cfg.seed)
        codes = {
            "model": generated,
            "repeat_last": np.repeat(tokens[..., n_ctx - 1 : n_ctx], n_hor, axis=-1),
            "token_frequency": stats.sample((len(segments), tokens.shape[1], n_hor), rng),
        }

        def signal(batch: np.ndarray) -> np.ndarray:
            return np.stack([builder.to_signal(b, s) for b, s in zip(batch, segments, strict=True)])

        real = signal(tokens[..., n_ctx:])
        signals = {name: signal(value) for name, value in codes.items()}
        horizon = np.arange(1, n_hor + 1) / sfreq
        result: dict[str, Any] = {
            "n_contexts": len(segments),
            "context_seconds": n_ctx / sfreq,
            "horizon_seconds": n_hor / sfreq,
            "sfreq": sfreq,
            "sampling": sampler.model_dump(),
            "psd_log_distance": {},
            "correlation_distance": {},
            "divergence_seconds": {},
            "divergence": {"horizon_seconds": horizon.tolist()},
        }
        for name, x in signals.items():
            curve = divergence_curve(x, real, smooth=max(1, int(sfreq // 20)))
            above = np.flatnonzero(curve > 1.0)
            result["psd_log_distance"][name] = psd_log_distance(x, real, sfreq)
            result["correlation_distance"][name] = correlation_distance(x, real)
            result["divergence_seconds"][name] = (
                float(horizon[above[0]]) if len(above) else float(horizon[-1])
            )
            result["divergence"][name] = curve.tolist()
        figures = {
            "psd": plots.plot_psd({"real": real, **signals}, sfreq, out_dir / "psd.png").name,
            "covariance": plots.plot_covariance(
                {"real": real, **signals}, out_dir / "covariance.png"
            ).name,
            "divergence": plots.plot_divergence(
                real, signals, sfreq, out_dir / "divergence.png"
            ).name,
            "examples": plots.plot_examples(
                signal(tokens[..., :n_ctx])[0],
                {"real": real[0], "model": signals["model"][0]},
                sfreq,
                out_dir / "examples.png",
            ).name,
        }
        return result, figures

    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        """Score the model and the baselines; write figures into ``context.out_dir``."""
        spec = context.data_spec
        if "vocab_size" not in spec:
            raise ConfigError(
                "token_forecast evaluates token models; the dataset has no "
                "vocabulary (use tokens_next_step or mulaw_next_step)"
            )
        split = "test" if len(context.datasets.get("test", [])) else "val"
        if getattr(context.config, "evaluation", None) is not None:
            split = context.config.evaluation.split
        out_dir = Path(context.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        context.model.eval()
        stats = self._statistics(context, int(spec["vocab_size"]), int(spec["n_channels"]))
        teacher = self._teacher_forced(context, split, stats)
        teacher["split"] = split
        rollout, figures = self._rollouts(context, split, stats, out_dir)
        logger.info(
            "%s: cross-entropy model %.3f, repeat-last %.3f, token-frequency %.3f nats/token",
            split,
            teacher["model"]["cross_entropy"],
            teacher["repeat_last"]["cross_entropy"],
            teacher["token_frequency"]["cross_entropy"],
        )
        return {"teacher_forced": teacher, "rollout": rollout, "figures": figures}

    # -- rendering (the report and the command line call these; they parse nothing) ---------
    @staticmethod
    def summary_tables(result: dict[str, Any]) -> list[SummaryTable]:
        """One table: each forecaster's teacher-forced and rollout scores."""
        tf, ro = result["teacher_forced"], result["rollout"]
        rows = [
            (
                name,
                _fmt(tf[name]["cross_entropy"]),
                _fmt(tf[name]["accuracy"]),
                _fmt(ro["psd_log_distance"][name]),
                _fmt(ro["divergence_seconds"][name]),
            )
            for name in FORECASTERS
        ]
        return [
            SummaryTable(
                f"token_forecast on the {tf['split']} split",
                [
                    "forecaster",
                    "cross-entropy",
                    "accuracy",
                    "PSD log-distance",
                    "diverges after (s)",
                ],
                rows,
            )
        ]

    @staticmethod
    def report_section(result: dict[str, Any]) -> ReportSection:
        """The teacher-forced and rollout tables and the four figures."""
        tf, ro = result["teacher_forced"], result["rollout"]
        teacher = SummaryTable(
            "",
            ["forecaster", "cross-entropy (nats/token)", "accuracy"],
            [(n, _fmt(tf[n]["cross_entropy"]), _fmt(tf[n]["accuracy"])) for n in FORECASTERS],
        )
        rollout = SummaryTable(
            "",
            ["forecaster", "PSD log-distance", "correlation distance", "diverges after (s)"],
            [
                (
                    n,
                    _fmt(ro["psd_log_distance"][n]),
                    _fmt(ro["correlation_distance"][n]),
                    _fmt(ro["divergence_seconds"][n]),
                )
                for n in FORECASTERS
            ],
        )
        lines = [
            f"### Teacher-forced ({tf['split']} split, {tf['n_windows']} windows)",
            "",
            *teacher.to_markdown(),
            "",
            f"### Rollouts ({ro['n_contexts']} contexts of {_fmt(ro['context_seconds'])} s, "
            f"{_fmt(ro['horizon_seconds'])} s ahead, {ro['sampling']['strategy']} sampling)",
            "",
            *rollout.to_markdown(),
        ]
        return ReportSection(
            "token_forecast", body="\n".join(lines), figures=list(result["figures"].values())
        )

    @staticmethod
    def verdict(result: dict[str, Any]) -> tuple[bool, str]:
        """Whether the model's teacher-forced cross-entropy beats every baseline, in words."""
        tf = result["teacher_forced"]
        model = tf["model"]["cross_entropy"]
        baselines = {n: tf[n]["cross_entropy"] for n in FORECASTERS if n != "model"}
        beats = all(model < value for value in baselines.values())
        shown = " and ".join(f"{n.replace('_', '-')} {v:.3f}" for n, v in baselines.items())
        split = {"val": "validation", "train": "training"}.get(tf["split"], tf["split"])
        return beats, (
            f"{split} cross-entropy: model {model:.3f} vs {shown} nats/token: the model "
            f"{'beats' if beats else 'does not beat'} "
            f"{'both baselines' if len(baselines) == 2 else 'every baseline'}"
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
        model_cls = models.load("gpt2meg")
        params = model_cls.example_config().model_dump()
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
        return cls.Config(max_batches=2, stats_batches=2, n_contexts=2, horizon_seconds=0.3)
