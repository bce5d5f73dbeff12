import torch

from ephys_core import get_registry


def test_tiny_tcn_is_found_and_forecasts_one_step_ahead():
    model = get_registry("models").create("tiny_tcn", n_channels=3)
    x = torch.randn(2, 3, 20)
    assert model(x).shape == (2, 3, 20)


def test_report_section_hook_contributes(tmp_path):
    from ephys_core import get_hooks

    sections = get_hooks().report_sections({"a": 1, "b": 2}, tmp_path)
    mine = [s for s in sections if s.title == "ephys-plugin-example"]
    assert mine and mine[0].data == {"summary_keys": 2}
