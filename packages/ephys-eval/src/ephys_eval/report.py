"""``summary.json`` and ``report.md`` of an evaluation run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ephys_core.hookspecs import ReportSection

__all__ = ["write_report"]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _token_forecast_markdown(result: Mapping[str, Any]) -> list[str]:
    tf, ro = result["teacher_forced"], result["rollout"]
    lines = [
        f"### Teacher-forced ({tf['split']} split, {tf['n_windows']} windows)",
        "",
        "| forecaster | cross-entropy (nats/token) | accuracy |",
        "|---|---|---|",
    ]
    for name in ("model", "repeat_last", "token_frequency"):
        lines.append(
            f"| {name} | {_fmt(tf[name]['cross_entropy'])} | {_fmt(tf[name]['accuracy'])} |"
        )
    lines += [
        "",
        f"### Rollouts ({ro['n_contexts']} contexts of {_fmt(ro['context_seconds'])} s, "
        f"{_fmt(ro['horizon_seconds'])} s ahead, {ro['sampling']['strategy']} sampling)",
        "",
        "| forecaster | PSD log-distance | correlation distance | diverges after (s) |",
        "|---|---|---|---|",
    ]
    for name in ("model", "repeat_last", "token_frequency"):
        lines.append(
            f"| {name} | {_fmt(ro['psd_log_distance'][name])} | "
            f"{_fmt(ro['correlation_distance'][name])} | "
            f"{_fmt(ro['divergence_seconds'][name])} |"
        )
    lines.append("")
    lines += [f"![{key}]({name})" for key, name in result["figures"].items()]
    return lines


def write_report(out_dir: Path, summary: dict[str, Any], sections: Sequence[ReportSection]) -> None:
    """Write ``summary.json`` (with plugin sections under ``sections``) and ``report.md``."""
    summary["sections"] = {s.title: dict(s.data) for s in sections}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    lines = [
        f"# Evaluation of {summary['run']} ({summary['model']})",
        "",
        f"Checkpoint: `{summary['checkpoint']}`",
        "",
    ]
    for name, result in summary["evaluators"].items():
        lines += [f"## {name}", ""]
        if {"teacher_forced", "rollout", "figures"} <= set(result):
            lines += _token_forecast_markdown(result)
        else:
            lines += ["```json", json.dumps(result, indent=1), "```"]
        lines.append("")
    for section in sections:
        lines += [f"## {section.title}", "", section.body, ""]
        lines += [f"![{Path(f).stem}]({f})" for f in section.figures]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
