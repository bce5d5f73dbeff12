"""Run configurations: structure, overrides, component parameters, error paths."""

from __future__ import annotations

import pytest
from fake_plugins import BROKEN_IMPORT, GOOD_MODEL

from ephys_core.config import RunConfig, load_config
from ephys_core.errors import ComponentSpecError, ConfigError

MODELS = "ephys.models"


@pytest.fixture
def fake_net(fake_dist):
    fake_dist.add(
        "ephys-fake",
        entry_points={MODELS: {"net": "cfg_pkg.m:Net"}},
        files={"cfg_pkg/__init__.py": "", "cfg_pkg/m.py": GOOD_MODEL},
    )
    return fake_dist


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_a_full_file_validates(tmp_path, fake_net):
    path = write(
        tmp_path,
        """
name: demo
model: {name: net, params: {width: 4}}
trainer: {max_steps: 100, precision: bf16-mixed, early_stopping: {patience: 3}}
optim: {lr: 1.0e-3, warmup_steps: 10, scheduler: {name: cosine}}
""",
    )
    config = load_config(path).resolve()
    assert isinstance(config, RunConfig)
    assert config.params("model").width == 4
    assert config.trainer.early_stopping.patience == 3
    # the stored form spells out every parameter, defaults included
    assert config.to_data()["model"]["params"] == {"width": 4, "depth": 2}


def test_structure_errors_name_the_full_path(tmp_path):
    path = write(tmp_path, "trainer: {max_steps: lots, bogus: 1}\noptim: {lr: -1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = err.value.problems
    assert any(p.startswith("trainer.max_steps: Input should be a valid integer") for p in problems)
    assert "trainer.bogus: unknown key (not a field of this section)" in problems
    assert any(p.startswith("optim.lr: Input should be greater than 0") for p in problems)
    assert str(path) in str(err.value)


def test_component_params_are_validated_by_the_component(fake_net):
    config = load_config({"model": {"name": "net", "params": {"width": "wide", "colour": 1}}})
    with pytest.raises(ComponentSpecError) as err:
        config.resolve()
    assert (
        "model.params.width: Input should be a valid integer, unable to parse string as "
        "an integer (got 'wide')" in err.value.problems
    )
    assert "model.params.colour: unknown key (not a field of this section)" in err.value.problems


def test_unknown_component_is_reported_at_its_path(fake_net):
    with pytest.raises(
        ComponentSpecError, match=r"model\.name: unknown model 'nett'; did you mean 'net'"
    ):
        load_config({"model": "nett"}).resolve()


def test_overrides_are_typed_and_dotted(fake_net):
    config = load_config(
        {"model": "net", "evaluation": {"evaluators": [{"name": "a"}, {"name": "b"}]}},
        [
            "model.params.width=16",
            "trainer.precision=bf16-mixed",
            "optim.betas=[0.8, 0.9]",
            "evaluation.evaluators[1].params.k=3",
            "trainer.gradient_clip_val=null",
        ],
    )
    assert config.model.params == {"width": 16}
    assert config.trainer.precision == "bf16-mixed"
    assert config.optim.betas == (0.8, 0.9)
    assert config.evaluation.evaluators[1].params == {"k": 3}
    assert config.trainer.gradient_clip_val is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.params.width", "expected KEY=VALUE"),
        ("evaluation.evaluators[5].name=x", "not an existing list item"),
        ("name.sub=1", "inside a non-mapping value"),
    ],
)
def test_bad_overrides_are_clear(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"name": "x", "evaluation": {"evaluators": []}}, [override])


def test_an_override_cannot_sneak_in_unknown_keys():
    with pytest.raises(ConfigError, match="trainer.max_stpes: unknown key"):
        load_config({}, ["trainer.max_stpes=3"])


def test_broken_unrelated_plugin_does_not_block_validation(fake_net):
    fake_net.add(
        "ephys-broken",
        entry_points={"ephys.losses": {"bad": "broken_loss:L"}},
        files={"broken_loss.py": BROKEN_IMPORT},
    )
    config = load_config({"model": "net", "loss": "bad"})
    config.resolve(["model"])  # the command needs only the model: fine
    assert config.params("model").width == 8
    with pytest.raises(ComponentSpecError, match=r"loss\.name: .*libfoo"):
        config.resolve(["loss"])


def test_yaml_syntax_errors_give_the_line(tmp_path):
    path = write(tmp_path, "name: x\nmodel: {name: net\n")
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_config(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping of sections, got list"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_commands_say_which_sections_they_need():
    with pytest.raises(ConfigError, match="model: `ephys train` needs this section"):
        load_config({}).require("model", "data", command="train")


def test_trainer_defaults_to_ten_epochs_only_without_a_step_limit():
    assert load_config({}).trainer.max_epochs == 10
    config = load_config({"trainer": {"max_steps": 5}})
    assert (config.trainer.max_epochs, config.trainer.max_steps) == (None, 5)
