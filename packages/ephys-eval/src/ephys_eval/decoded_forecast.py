"""Evaluation of a token forecaster on any tokenizer's codes, in signal space.

Cross-entropy is in nats per code of one tokenizer, so it compares forecasters of the same
codes only. To compare tokenizers (mu-law, quantile, a learned brainomni) the forecasts have to
be judged where they all meet: the recording. This evaluator takes a model trained on a code
dataset (``ephys tokenizer encode``, read by ``tokens_next_step``) and:

1. rolls the model out from real code contexts and decodes context and rollout through the
   dataset's tokenizer;
2. compares the decoded rollouts with the true continuations taken from the **source
   recordings** (the prepared signals the codes were made from, at their own rate), in
   physical units (tesla, volt) unless ``physical_units: false``;
3. does the same for the AR and VAR baselines, fitted on the source recordings' training split
   and simulated from the same real contexts, and for ``decoded_real``: the true continuation's
   own codes, decoded (what a perfect forecaster of these codes would give, so the gap between
   it and the real data is what the tokenizer loses);
4. scores everything with the generative metrics beside the real-versus-real null
   (:func:`ephys_eval.generative.score_rollouts`), and reports the model's teacher-forced
   cross-entropy in its own codes beside token frequency.

Result keys: ``tokenizer`` (name, identity, stride), ``units``, ``teacher_forced`` (model and
token frequency, nats/code), ``baselines``, ``rollout`` (as ``token_forecast``'s) and ``figures``.
"""

from __future__ import annotations

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
from ephys_eval.baselines import TokenStatistics
from ephys_eval.configs import DecodedForecastConfig
from ephys_eval.generative import NULL, rollout_steps, rollout_table, sampler_of, score_rollouts
from ephys_eval.linear import fit_ar, fit_var
from ephys_eval.metrics import BANDS
from ephys_eval.stats import bootstrap, format_estimate

__all__ = ["DECODED_REAL", "DecodedForecast"]

logger = get_logger(__name__)

MODEL = "model"
#: the true continuation's own codes, decoded: the best any forecaster of these codes can do
DECODED_REAL = "decoded_real"


class _Sources:
    """The source recordings behind a code dataset: for each code session, its source
    session, the rows of the tokenizer's montage in it, and the way back to physical units."""

    def __init__(self, builder: Any) -> None:
        from ephys_data.encoding import tokenizer_entry
        from ephys_data.format import Session

        self.stride: int | None = None
        self._by_key: dict[str, tuple[Any, list[int], list[dict[str, Any]]]] = {}
        for entry in builder.catalog.entries:
            meta = entry.session.meta
            record = tokenizer_entry(dict(meta))
            source_path = (meta.get("provenance") or {}).get("encoded_from")
            if record is None or not source_path:
                raise ConfigError(
                    "decoded_forecast needs a code dataset written by `ephys tokenizer encode` "
                    f"(session {entry.key} records no source recording)"
                )
            try:
                source = Session.open(source_path)
            except Exception as err:
                raise ConfigError(
                    f"decoded_forecast: the source recording of {entry.key} ({source_path}) "
                    f"cannot be opened: {err}"
                ) from None
            if source.digest != record.get("source_meta_sha256"):
                raise ConfigError(
                    f"decoded_forecast: the source recording of {entry.key} changed after it "
                    "was encoded; encode it again"
                )
            names = list(source.meta["ch_names"])
            wanted = record["source_ch_names"] if builder.rows is None else builder.ch_names
            rows = [names.index(n) for n in wanted]
            transforms = [
                t for t in source.meta.get("transforms", []) if t.get("kind") != "tokenizer"
            ]
            self._by_key[entry.key] = (source, rows, transforms)
            stride = int(record.get("time_stride", 1))
            if self.stride not in (None, stride):
                raise ConfigError("decoded_forecast: the sessions' codes have different strides")
            self.stride = stride
        first = next(iter(self._by_key.values()))
        self.sfreq = float(first[0].sfreq)
        self.ch_names = [first[0].meta["ch_names"][i] for i in first[1]]
        units = first[0].meta.get("units") or [""] * len(first[0].meta["ch_names"])
        self.units = [units[i] for i in first[1]]

    def signal(self, segment: Segment, start: int, stop: int, physical: bool) -> np.ndarray:
        """Source samples ``[start, stop)`` of the code steps' span (in code steps from the
        segment's start), for the montage's rows."""
        source, rows, transforms = self._by_key[segment.session]
        a = (segment.start + start) * self.stride
        b = (segment.start + stop) * self.stride
        x = np.asarray(source.data[rows, a:b], dtype=np.float64)
        return self.physical(x, transforms, rows) if physical else x

    def physical(
        self, x: np.ndarray, transforms: list[dict[str, Any]], rows: list[int]
    ) -> np.ndarray:
        """Undo the source's normalisation for the montage's rows."""
        for transform in reversed(transforms):
            if transform.get("kind") == "normalize":
                center = np.asarray(transform["center"], dtype=np.float64)[rows, None]
                scale = np.asarray(transform["scale"], dtype=np.float64)[rows, None]
                x = x * scale + center
        return x

    def to_physical(self, x: np.ndarray, segment: Segment, physical: bool) -> np.ndarray:
        """Decoded signal of ``segment`` (in the source's prepared units) -> physical units."""
        if not physical:
            return x
        _, rows, transforms = self._by_key[segment.session]
        return self.physical(x, transforms, rows)


class DecodedForecast(Component):
    """Rollouts of a token forecaster decoded through its tokenizer and scored against the
    source recordings, beside AR/VAR fitted on them (see the module documentation)."""

    Config: ClassVar[type[DecodedForecastConfig]] = DecodedForecastConfig
    outputs: ClassVar[tuple[str, ...]] = ("teacher_forced", "baselines", "rollout", "figures")

    def __init__(self, config: DecodedForecastConfig) -> None:
        self.config = config

    # -- pieces ---------------------------------------------------------------------------------
    @staticmethod
    def _check(context: EvaluationContext) -> Any:
        builder = context.builder
        artifact = getattr(builder, "artifact", None)
        if artifact is None:
            raise ConfigError(
                "decoded_forecast evaluates a model trained on a code dataset (`ephys tokenizer "
                "encode`, dataset tokens_next_step); this data carries no tokenizer"
            )
        tokenizer = artifact.tokenizer
        per_channel = callable(getattr(tokenizer, "channels", None)) or getattr(
            tokenizer, "samplewise", False
        )
        if builder.rows is not None and not per_channel:
            raise ConfigError(
                f"decoded_forecast: {artifact.name} decodes every code channel together; train "
                "on all of them (no `channels` subset)"
            )
        if not hasattr(context.model, "forecast"):
            raise ConfigError("decoded_forecast: the model has no forecast() method")
        return artifact

    def _teacher_forced(self, context: EvaluationContext, split: str) -> dict[str, Any]:
        """The model's cross-entropy in its own codes, beside token frequency."""
        import torch

        builder, cfg = context.builder, self.config
        window = int(context.data_spec["n_times"])
        vocab = int(context.data_spec["vocab_size"])
        length = min(window + 1, builder.longest_segment(split))
        segments = builder.segments(split, length, 128, seed=cfg.seed)
        codes = np.stack([np.asarray(s.x, dtype=np.int64) for s in segments])
        train = builder.segments("train", length, 256, seed=cfg.seed + 1)
        stats = TokenStatistics.from_batches(
            [np.stack([np.asarray(s.x, dtype=np.int64) for s in train])], vocab, codes.shape[1]
        )
        probs = stats.probabilities  # (C, V)
        channel = np.arange(codes.shape[1])[None, :, None]
        freq_nll = -np.log(probs[channel, codes[..., 1:]])
        nll = []
        with torch.no_grad():
            for start in range(0, len(codes), 32):
                batch = torch.as_tensor(codes[start : start + 32], device=context.device)
                out = context.model(batch[..., :-1])
                logits = out[0] if isinstance(out, tuple | list) else out
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                nll.append(-log_probs.gather(-1, batch[..., 1:, None])[..., 0].cpu().numpy())
        model_nll = np.concatenate(nll)

        def mean(values: np.ndarray) -> float:
            return float(values.mean())

        return {
            "split": split,
            "n_windows": len(segments),
            "forecasters": {
                name: {
                    "cross_entropy": bootstrap(
                        mean, values.mean(axis=(1, 2)), n_boot=cfg.n_boot, seed=cfg.seed
                    ).to_dict()
                }
                for name, values in ((MODEL, model_nll), ("token_frequency", freq_nll))
            },
        }

    def _baselines(self, sources: _Sources, context: EvaluationContext) -> dict[str, Any]:
        """AR/VAR fitted on the source recordings of the training split."""
        builder, cfg = context.builder, self.config
        steps = min(
            int(cfg.fit_seconds * sources.sfreq) // sources.stride,
            builder.longest_segment("train"),
        )
        fit = builder.segments("train", steps, cfg.fit_segments, seed=cfg.seed + 1)
        signal = np.stack([sources.signal(s, 0, steps, physical=False) for s in fit])
        window = int(context.data_spec["n_times"]) * sources.stride
        longest = max(1, min(signal.shape[-1] // 4, window))
        fitted: dict[str, Any] = {}
        for name in cfg.baselines:
            if name == "ar":
                fitted[name] = fit_ar(signal, max_order=max(1, min(cfg.ar_max_order, longest)))
            else:
                orders = [q for q in cfg.var_orders if q <= longest] or [1]
                fitted[name] = fit_var(signal, orders=orders)
        return fitted

    def _rollouts(
        self,
        sources: _Sources,
        artifact: Any,
        baselines: dict[str, Any],
        context: EvaluationContext,
        split: str,
        out_dir: Path,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        import torch

        builder, model, cfg = context.builder, context.model, self.config
        physical = cfg.physical_units
        stride, sfreq = sources.stride, sources.sfreq
        code_rate = sfreq / stride
        n_ctx, n_hor = rollout_steps(
            cfg.context_seconds or context.data_spec["n_times"] / code_rate,
            cfg.horizon_seconds,
            code_rate,
            builder.longest_segment(split),
            split,
            "decoded_forecast",
        )
        segments = builder.segments(split, n_ctx + n_hor, cfg.n_contexts, seed=cfg.seed + 2)
        unrelated = builder.segments(split, n_hor, cfg.n_contexts, seed=cfg.seed + 3)
        codes = np.stack([np.asarray(s.x, dtype=np.int64) for s in segments])
        sampler = sampler_of(cfg)
        started = time.perf_counter()
        with torch.no_grad():
            generated = (
                model.forecast(
                    torch.as_tensor(codes[..., :n_ctx], device=context.device),
                    n_hor,
                    sampler=sampler,
                    use_cache=cfg.use_cache,
                )
                .cpu()
                .numpy()
            )
        wall = time.perf_counter() - started
        tokenizer = builder.codec if builder.codec is not None else artifact.tokenizer

        def decode(batch: np.ndarray) -> np.ndarray:
            """Codes ``(N, rows, n_ctx + n_hor)`` -> the continuation's samples, physical."""
            signal = np.asarray(tokenizer.decode(batch), dtype=np.float64)[..., n_ctx * stride :]
            return np.stack(
                [sources.to_physical(x, s, physical) for x, s in zip(signal, segments, strict=True)]
            )

        real = np.stack([sources.signal(s, n_ctx, n_ctx + n_hor, physical) for s in segments])
        forecasts = {
            MODEL: decode(np.concatenate([codes[..., :n_ctx], generated], axis=-1)),
            DECODED_REAL: decode(codes),
        }
        rng = np.random.default_rng(cfg.seed)
        prepared_context = np.stack([sources.signal(s, 0, n_ctx, physical=False) for s in segments])
        for name, baseline in baselines.items():
            out = baseline.simulate(prepared_context, n_hor * stride, rng)
            forecasts[name] = np.stack(
                [sources.to_physical(x, s, physical) for x, s in zip(out, segments, strict=True)]
            )
        others = np.stack([sources.signal(s, 0, n_hor, physical) for s in unrelated])
        scored = score_rollouts(forecasts, real, others, sfreq, n_boot=cfg.n_boot, seed=cfg.seed)
        result: dict[str, Any] = {
            "n_contexts": len(segments),
            "context_seconds": n_ctx / code_rate,
            "horizon_seconds": n_hor / code_rate,
            "sfreq": sfreq,
            "sampling": sampler.model_dump(),
            "generation": {
                "seconds": wall,
                "codes_per_s": generated.size / wall,
                "signal_seconds_per_s": len(segments) * n_hor / code_rate / wall,
            },
            **scored,
        }
        shown = {"real": real, **forecasts}
        context_signal = sources.signal(segments[0], 0, n_ctx, physical)
        figures = {
            "psd": plots.plot_psd(
                shown,
                sfreq,
                out_dir / "decoded_psd.png",
                bands=BANDS,
                title=f"PSD of rollouts decoded through {artifact.name}",
                ylabel="power (physical units$^2$/Hz)" if physical else "power (units$^2$/Hz)",
            ).name,
            "divergence": plots.plot_divergence_with_null(
                real, forecasts, sfreq, out_dir / "decoded_divergence.png", scored["divergence"]
            ).name,
            "examples": plots.plot_examples(
                context_signal,
                {"real": real[0], MODEL: forecasts[MODEL][0]},
                sfreq,
                out_dir / "decoded_examples.png",
            ).name,
        }
        return result, figures

    # -- the evaluator contract -------------------------------------------------------------------
    def evaluate(self, context: EvaluationContext) -> dict[str, Any]:
        """Score the model's decoded rollouts and the baselines against the source recordings."""
        artifact = self._check(context)
        sources = _Sources(context.builder)
        split = "test" if len(context.datasets.get("test", [])) else "val"
        if getattr(context.config, "evaluation", None) is not None:
            split = context.config.evaluation.split
        out_dir = Path(context.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        context.model.eval()
        teacher = self._teacher_forced(context, split)
        baselines = self._baselines(sources, context)
        rollout, figures = self._rollouts(sources, artifact, baselines, context, split, out_dir)
        return {
            "tokenizer": {**artifact.describe(), "time_stride": sources.stride},
            "units": sorted(set(sources.units)) if self.config.physical_units else ["prepared"],
            "teacher_forced": teacher,
            "baselines": {name: b.to_dict() for name, b in baselines.items()},
            "rollout": rollout,
            "figures": figures,
        }

    @staticmethod
    def summary_tables(result: dict[str, Any]) -> list[SummaryTable]:
        """The rollout table, in signal space, and the teacher-forced one, in codes."""
        ro, tf = result["rollout"], result["teacher_forced"]
        tok = result["tokenizer"]
        return [
            rollout_table(
                ro,
                f"decoded_forecast: rollouts decoded through {tok['name']} {tok['identity']}, "
                f"{ro['n_contexts']} contexts, {ro['horizon_seconds']:.3g} s ahead, scored against "
                f"the source recordings in {', '.join(result['units']) or 'their units'} "
                f"({NULL} = unrelated real data: the null)",
            ),
            SummaryTable(
                f"decoded_forecast: teacher-forced on the {tf['split']} split, in {tok['name']} "
                "codes (nats/code: compares forecasters of these codes only)",
                ["forecaster", "cross-entropy (nats/code)"],
                [(n, format_estimate(v["cross_entropy"])) for n, v in tf["forecasters"].items()],
            ),
        ]

    @staticmethod
    def report_section(result: dict[str, Any]) -> ReportSection:
        tables = DecodedForecast.summary_tables(result)
        tok = result["tokenizer"]
        lines = [
            f"The model forecasts {tok['name']} codes (identity `{tok['identity']}`, "
            f"{tok['time_stride']} sample(s) per code step). Its rollouts are decoded through "
            "that tokenizer and compared with the true continuations of the source recordings, "
            f"in {', '.join(result['units'])}, beside AR and VAR fitted on the source recordings' "
            f"training split and `{DECODED_REAL}` (the true continuation's own codes, decoded: "
            "the tokenizer's loss alone).",
            "",
            *tables[0].to_markdown(),
            "",
            *tables[1].to_markdown(),
            "",
            "Baselines: "
            + "; ".join(
                f"{n}: {b['kind']} order {b['order']}" for n, b in result["baselines"].items()
            ),
        ]
        return ReportSection(
            "decoded_forecast", body="\n".join(lines), figures=list(result["figures"].values())
        )

    @classmethod
    def example_context(cls, workdir: Path) -> EvaluationContext:
        """A tiny untrained gpt2meg on a quantile code dataset of a small synthetic one."""
        from ephys_core.plugins import get_registry
        from ephys_data.encoding import encode_dataset, fit_tokenizer
        from ephys_data.synthetic import write_example_dataset

        workdir = Path(workdir)
        root = write_example_dataset(workdir / "prepared", seconds=8)
        split = {"val": 0.2, "test": 0.2}
        artifact = fit_tokenizer("quantile", {"n_codes": 32}, [root], workdir / "tok", split=split)
        encode_dataset(artifact, [root], workdir / "codes")
        builder = get_registry("datasets").create(
            "tokens_next_step",
            {"roots": [str(workdir / "codes")], "window_seconds": 0.3, "split": split},
        )
        spec = builder.data_spec()
        model = get_registry("models").create(
            "gpt2meg",
            {
                "n_channels": spec["n_channels"],
                "vocab_size": spec["vocab_size"],
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "context_length": 64,
            },
        )
        return EvaluationContext(
            model=model.eval(),
            datasets={s: builder.build(s) for s in ("train", "val", "test")},
            out_dir=workdir / "report",
            data_spec=spec,
            builder=builder,
        )

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> DecodedForecastConfig:
        return DecodedForecastConfig(
            n_contexts=4,
            horizon_seconds=0.5,
            fit_segments=4,
            fit_seconds=2.0,
            ar_max_order=4,
            var_orders=[1, 2],
            n_boot=20,
        )
