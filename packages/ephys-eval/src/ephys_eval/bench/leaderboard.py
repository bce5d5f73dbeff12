"""The benchmark's leaderboard: one row per forecaster, scored relative to the best baseline.

Written as ``leaderboard.json`` (everything, including the protocol, its hash, the data hash
and the machine), ``leaderboard.md`` (the table a reader wants) and ``leaderboard.png`` (the
cross-entropies with their intervals, the best baseline marked). Each model's full evaluation
report is in ``reports/<model>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ephys_eval.decoded_forecast import DECODED_REAL
from ephys_eval.generative import NULL
from ephys_eval.stats import format_estimate
from ephys_eval.token_forecast import MODEL

__all__ = ["leaderboard_rows", "tokenizer_rows", "write_leaderboard"]


def _rollout_row(rollout: dict[str, Any], name: str) -> dict[str, Any]:
    metrics = rollout["metrics"]
    return {
        "psd_log_distance": metrics["psd_log_distance"][name],
        "band_power_divergence": metrics["band_power_divergence"][name]["mean"],
        "coherence_distance": metrics["coherence_distance"][name],
        "aperiodic_exponent": metrics["aperiodic_exponent"][name],
        "peak_alpha_frequency": metrics["peak_alpha_frequency"][name],
        "time_to_divergence": rollout["divergence"]["time_to_divergence"].get(name),
    }


def leaderboard_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for every model, every baseline (scored on the same windows as every model) and
    the null (unrelated real data), best cross-entropy first."""
    first = entries[0]["evaluation"]
    tf = first["teacher_forced"]
    best = tf.get("best_baseline")
    best_ce = tf["forecasters"][best]["cross_entropy"]["value"] if best else None
    rows = []
    for name, scores in tf["forecasters"].items():
        if name == MODEL:
            continue
        ce = scores["cross_entropy"]
        rows.append(
            {
                "forecaster": name,
                "kind": "baseline",
                "cross_entropy": ce,
                "minus_best_baseline": {"value": ce["value"] - best_ce} if best else None,
                **_rollout_row(first["rollout"], name),
            }
        )
    for entry in entries:
        evaluation = entry["evaluation"]
        tf_model = evaluation["teacher_forced"]
        rows.append(
            {
                "forecaster": entry["name"],
                "kind": "model",
                "cross_entropy": tf_model["forecasters"][MODEL]["cross_entropy"],
                "minus_best_baseline": tf_model.get("model_minus_best"),
                **_rollout_row(evaluation["rollout"], MODEL),
                "params": entry["params"],
                "steps": entry["steps"],
                "train_seconds": entry["train_seconds"],
                "train_tokens_per_s": entry["train_tokens_per_s"],
                "matmul_peak_fraction": entry["matmul_peak_fraction"],
                "generation": evaluation["rollout"]["generation"],
            }
        )
    rows.sort(key=lambda r: r["cross_entropy"]["value"])
    rows.append(
        {
            "forecaster": NULL,
            "kind": "null (unrelated real data)",
            "cross_entropy": None,
            "minus_best_baseline": None,
            **_rollout_row(first["rollout"], NULL),
        }
    )
    return rows


def tokenizer_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per tokenizer: the code forecaster's cross-entropy in its own codes (beside
    token frequency) and, in signal space, its decoded rollouts, the tokenizer's own loss
    (``decoded_real``) and the AR, VAR and null on the same contexts."""
    rows = []
    for entry in entries:
        evaluation = entry["evaluation"]
        forecasters = evaluation["teacher_forced"]["forecasters"]
        rollout = evaluation["rollout"]
        signal = {
            name: _rollout_row(rollout, name)
            for name in (MODEL, DECODED_REAL, *evaluation["baselines"], NULL)
        }
        rows.append(
            {
                "tokenizer": entry["tokenizer"],
                "name": entry["name"],
                "identity": entry["identity"],
                "codes": f"{entry['code_rows']} rows x {entry['vocab_size']} codes, "
                f"{entry['time_stride']} sample(s) a step",
                "cross_entropy": forecasters[MODEL]["cross_entropy"],
                "token_frequency": forecasters["token_frequency"]["cross_entropy"],
                "signal": signal,
                "generation": rollout["generation"],
                "tokenizer_train_seconds": entry["tokenizer_train_seconds"],
                "forecaster": entry["forecaster"],
                "forecaster_train_seconds": entry["forecaster_train_seconds"],
                "report": entry["report"],
                "report_link": f"reports/{Path(entry['report']).parent.name}/report.md",
            }
        )
    return rows


def _tokenizer_markdown(board: dict[str, Any]) -> list[str]:
    rows = board.get("tokenizer_rows") or []
    if not rows:
        return []
    budget = board["budget"]
    forecaster = budget["code_forecaster"]
    lines = [
        "## Forecasting on each tokenizer's codes, in signal space",
        "",
        f"One `{forecaster['name']}` (plain layers: `embedding: table`, `head: softmax`, no "
        f"highway) trained {forecaster['steps']} steps on each tokenizer's codes, windows of "
        f"{forecaster['window_steps']} code steps, and beside it the models made for one "
        "tokenizer's codes (RVQ levels, latent images; the budget's `code_models`), on the "
        "same windows; `decoded_forecast` decodes their rollouts "
        "through the tokenizer and scores them against the source recordings in tesla. "
        "Cross-entropies are in each tokenizer's own codes: compare each with its token "
        f"frequency, not across tokenizers. `{DECODED_REAL}` is the true continuation's own "
        "codes decoded (the tokenizer's loss alone); AR, VAR and the null are scored on the "
        "same contexts. Lower is better in every signal column.",
        "",
        "| tokenizer | forecaster | codes | model CE | token frequency CE | model PSD "
        "log-dist. | model band-power div. | model coherence dist. | model diverges after (s) "
        f"| {DECODED_REAL} PSD | VAR PSD | AR PSD | null PSD | tokenizer train (s) | "
        "forecaster train (s) | generation codes/s |",
        "|" + "---|" * 16,
    ]
    for row in rows:
        signal = row["signal"]
        model = signal[MODEL]

        def psd(name: str, signal: dict[str, Any] = signal) -> str:
            return format_estimate(signal[name]["psd_log_distance"], 2) if name in signal else "-"

        diverges = model["time_to_divergence"]
        lines.append(
            "| "
            + " | ".join(
                [
                    row["tokenizer"],
                    row["forecaster"],
                    row["codes"],
                    format_estimate(row["cross_entropy"]),
                    format_estimate(row["token_frequency"]),
                    format_estimate(model["psd_log_distance"], 2),
                    format_estimate(model["band_power_divergence"], 2),
                    format_estimate(model["coherence_distance"], 2),
                    "-" if diverges is None else f"{diverges:.2f}",
                    psd(DECODED_REAL),
                    psd("var"),
                    psd("ar"),
                    psd(NULL),
                    f"{row['tokenizer_train_seconds']:.0f}",
                    f"{row['forecaster_train_seconds']:.0f}",
                    f"{row['generation']['codes_per_s']:,.0f}" if row.get("generation") else "-",
                ]
            )
            + " |"
        )
    lines += [
        "",
        "Reports: "
        + ", ".join(f"[{r['tokenizer']} {r['forecaster']}]({r['report_link']})" for r in rows),
        "",
    ]
    return lines


def _signed(estimate: dict[str, Any] | None) -> str:
    return format_estimate(estimate, signed=True)


def _markdown(board: dict[str, Any]) -> str:
    budget, data, machine = board["budget"], board["data"], board["machine"]
    rows = board["rows"]
    best = next((r for r in rows if r["kind"] == "baseline"), None)
    lines = [
        f"# Forecasting benchmark {board['protocol']} ({budget['name']} budget)",
        "",
        f"Protocol hash `{board['protocol_hash']}`; data `{data['source']}`, hash "
        f"`{data['hash']}` ({data['sessions']} sessions, {data['hours']:.2f} h); "
        f"{machine['cpus']} CPUs, torch {machine['torch']}, float32 matmul peak "
        f"{machine['matmul_peak_gflops_float32']:.0f} GFLOP/s.",
        "",
        "Teacher-forced cross-entropy on the test split in nats per code (lower is better), "
        "each forecaster on the same windows; 95 % bootstrap intervals over windows. "
        "`vs best baseline` is the model minus the best baseline "
        f"({best['forecaster'] if best else '-'}), paired over windows: negative means the "
        "model wins. Rollout columns compare continuations with the true ones (lower is "
        f"better); `{NULL}` is unrelated real data, the null: a forecaster matches real data "
        "on a metric when it scores within the null's interval.",
        "",
        "| forecaster | kind | cross-entropy | vs best baseline | PSD log-dist. | "
        "band-power div. | coherence dist. | diverges after (s) | params | train (s) | "
        "train tokens/s | of matmul peak | generation tokens/s | signal s / wall s |",
        "|" + "---|" * 14,
    ]
    for row in rows:
        generation = row.get("generation") or {}
        fraction = row.get("matmul_peak_fraction")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["forecaster"],
                    row["kind"],
                    format_estimate(row["cross_entropy"]),
                    _signed(row["minus_best_baseline"]),
                    format_estimate(row["psd_log_distance"], 2),
                    format_estimate(row["band_power_divergence"], 2),
                    format_estimate(row["coherence_distance"], 2),
                    "-"
                    if row["time_to_divergence"] is None
                    else f"{row['time_to_divergence']:.2f}",
                    f"{row['params']:,}" if "params" in row else "-",
                    f"{row['train_seconds']:.0f}" if "train_seconds" in row else "-",
                    f"{row['train_tokens_per_s']:,.0f}" if row.get("train_tokens_per_s") else "-",
                    f"{100 * fraction:.1f} %" if fraction else "-",
                    f"{generation['tokens_per_s']:,.0f}" if generation else "-",
                    f"{generation['signal_seconds_per_s']:.2f}" if generation else "-",
                ]
            )
            + " |"
        )
    lines += [
        "",
        "Per-model reports: "
        + ", ".join(f"[{name}](reports/{name}/report.md)" for name in board["models"]),
        "",
        *_tokenizer_markdown(board),
    ]
    return "\n".join(lines)


def _plot(board: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [r for r in board["rows"] if r["cross_entropy"] is not None][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    values = [r["cross_entropy"]["value"] for r in rows]
    lows = [
        r["cross_entropy"]["value"] - (r["cross_entropy"].get("low") or r["cross_entropy"]["value"])
        for r in rows
    ]
    highs = [
        (r["cross_entropy"].get("high") or r["cross_entropy"]["value"])
        - r["cross_entropy"]["value"]
        for r in rows
    ]
    colours = ["tab:blue" if r["kind"] == "model" else "tab:gray" for r in rows]
    ax.barh([r["forecaster"] for r in rows], values, xerr=[lows, highs], color=colours, capsize=3)
    best = [r for r in board["rows"] if r["kind"] == "baseline"]
    if best:
        ax.axvline(
            best[0]["cross_entropy"]["value"],
            color="tab:red",
            ls="--",
            lw=1,
            label=f"best baseline ({best[0]['forecaster']})",
        )
        ax.legend(loc="lower right", fontsize="small")
    ax.set_xlabel("teacher-forced cross-entropy on the test split (nats/code)")
    ax.set_xlim(left=min(values) * 0.9)
    ax.set_title(f"{board['protocol']} ({board['budget']['name']}): models in blue")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_leaderboard(out: Path, board: dict[str, Any]) -> list[Path]:
    """Write ``leaderboard.json``, ``leaderboard.md`` and ``leaderboard.png`` into ``out``."""
    from ephys_core.files import atomic_write_bytes

    paths = [out / "leaderboard.json", out / "leaderboard.md"]
    atomic_write_bytes(paths[0], (json.dumps(board, indent=1, default=str) + "\n").encode())
    atomic_write_bytes(paths[1], _markdown(board).encode())
    paths.append(_plot(board, out / "leaderboard.png"))
    return paths
