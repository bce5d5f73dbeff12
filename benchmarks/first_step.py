"""Time from ``ephys train`` to its first training step, and where that time goes.

A small gpt2meg (quickstart-sized: 16 channels, 1 s windows at 100 Hz) is trained on a
prepared synthetic dataset for one step, in a fresh process each time:

* ``ephys train`` as a user runs it, with a local plugin (``-p``) whose training callback
  notes the time when the first optimiser step ends and stops the run;
* the baseline: a hand-written Lightning module around the same Hugging Face GPT-2 backbone,
  trained for one step on random tokens of the same shape by a bare ``lightning.Trainer``
  (what any Lightning + transformers script pays: imports, first forward, backward and
  optimiser step), measured in the same way in this run;
* the phases inside one ``ephys train``: the checks before any work (``plan_training``:
  configuration, run folder, data, model/data fit), importing Lightning, building the module
  and trainer and loading the first batch up to the end of the first step.

The difference between the first two lines is what ephys itself costs. Medians of
``--repeats`` runs. Bytecode is compiled first (a set ``PYTHONDONTWRITEBYTECODE`` would
otherwise make every run recompile every module).

Run: ``.venv/bin/python benchmarks/first_step.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EPHYS = str(Path(sys.executable).parent / "ephys")

STOPPER = textwrap.dedent(
    """
    import json, os, time
    import lightning.pytorch as pl
    from ephys_core.hookspecs import hookimpl

    class FirstStep(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            with open(os.environ["FIRST_STEP_FILE"], "w") as handle:
                json.dump({"first_step": time.time()}, handle)
            trainer.should_stop = True

    @hookimpl
    def ephys_training_callbacks(config):
        return [FirstStep()]
    """
)

PHASES = textwrap.dedent(
    """
    import json, sys, time
    marks = {"start": time.time()}
    from ephys_core.config import load_config
    from ephys_models.training import plan_training
    plan = plan_training(load_config(sys.argv[1]), overwrite=True)
    marks["checked"] = time.time()
    from ephys_models.training import execute, quiet_lightning
    quiet_lightning()
    import ephys_models.training.runner  # noqa: F401 - Lightning and the engine
    marks["imported"] = time.time()
    from ephys_core.plugins import load_local_plugin
    load_local_plugin(sys.argv[2])
    execute(plan)
    marks["first_step"] = json.load(open(sys.argv[3]))["first_step"]
    print(json.dumps({k: v for k, v in marks.items()}))
    """
)

BASELINE = textwrap.dedent(
    """
    import json, os, time
    import lightning.pytorch as pl
    import torch
    from transformers import GPT2Config, GPT2Model

    class Plain(pl.LightningModule):
        def __init__(self):
            super().__init__()
            config = GPT2Config(vocab_size=256, n_positions=128, n_embd=64, n_layer=2, n_head=4)
            self.gpt = GPT2Model(config)

        def training_step(self, batch, batch_idx):
            x = batch[0].reshape(-1, 100)
            hidden = self.gpt(input_ids=x).last_hidden_state
            logits = hidden @ self.gpt.wte.weight.T
            return torch.nn.functional.cross_entropy(logits.reshape(-1, 256), x.reshape(-1))

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    class FirstStep(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            json.dump({"first_step": time.time()}, open(os.environ["FIRST_STEP_FILE"], "w"))
            trainer.should_stop = True

    data = torch.utils.data.TensorDataset(torch.randint(0, 256, (64, 16, 100)))
    pl.Trainer(
        max_steps=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[FirstStep()],
    ).fit(Plain(), torch.utils.data.DataLoader(data, batch_size=8))
    """
)


def _config(folder: Path, prepared: Path) -> Path:
    config = {
        "name": "first-step",
        "out_dir": str(folder / "runs"),
        "data": {
            "dataset": {
                "name": "mulaw_next_step",
                "params": {"roots": [str(prepared)], "window_seconds": 1.0},
            },
            "batch_size": 8,
        },
        "model": {
            "name": "gpt2meg",
            "params": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context_length": 128},
        },
        "loss": "cross_entropy",
        "trainer": {"max_steps": 1, "progress_bar": False, "accelerator": "cpu", "devices": 1},
    }
    path = folder / "run.yaml"
    path.write_text(json.dumps(config))
    return path


def _wall(command: list[str], marker: Path) -> float:
    """Seconds from starting ``command`` to the time it wrote into ``marker``."""
    env = {**os.environ, "FIRST_STEP_FILE": str(marker), "HF_HUB_OFFLINE": "1"}
    start = time.time()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return json.loads(marker.read_text())["first_step"] - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ephys_core

    compileall.compile_path(quiet=2)  # site-packages and the workspace (editable) sources
    compileall.compile_dir(Path(ephys_core.__file__).parents[3], quiet=2)

    from ephys_data.synthetic import write_example_dataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepared = write_example_dataset(folder / "prepared", seconds=60, n_channels=16)
        config = _config(folder, prepared)
        stopper = folder / "stopper.py"
        stopper.write_text(STOPPER)
        phases_script = folder / "phases.py"
        phases_script.write_text(PHASES)
        marker = folder / "first_step.json"
        train = [EPHYS, "-q", "-p", str(stopper), "train", str(config), "--overwrite"]
        baseline = folder / "baseline.py"
        baseline.write_text(BASELINE)
        runs = {
            "baseline: plain Lightning + GPT-2, one step": [sys.executable, str(baseline)],
            "ephys train -> first step": train,
        }
        results = {
            name: statistics.median(_wall(cmd, marker) for _ in range(args.repeats))
            for name, cmd in runs.items()
        }
        phases = []
        for _ in range(args.repeats):
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            out = subprocess.run(
                [sys.executable, str(phases_script), str(config), str(stopper), str(marker)],
                check=True,
                capture_output=True,
                text=True,
                env={**env, "FIRST_STEP_FILE": str(marker)},
            ).stdout
            marks = json.loads(out.strip().splitlines()[-1])
            phases.append(marks)
    base = results["baseline: plain Lightning + GPT-2, one step"]
    print(f"{'':<46}{'median s':>10}{'ratio':>8}")
    for name, seconds in results.items():
        print(f"{name:<46}{seconds:>10.2f}{seconds / base:>8.2f}")
    print(f"{'ephys itself (difference)':<46}{results['ephys train -> first step'] - base:>10.2f}")
    print("phases inside ephys train (median s):")
    for label, start, stop in (
        ("checks before any work (plan_training)", "start", "checked"),
        ("import Lightning and the engine", "checked", "imported"),
        ("module, trainer, first batch, first step", "imported", "first_step"),
    ):
        seconds = statistics.median(m[stop] - m[start] for m in phases)
        print(f"  {label:<44}{seconds:>10.2f}")


if __name__ == "__main__":
    main()
