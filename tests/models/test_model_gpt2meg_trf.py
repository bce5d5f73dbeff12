"""ephys's own decoder transformer and the GPT2MEG models on it: masks, sinks, the condition
bias, mixture-of-experts routing and its load-balancing loss through training."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from reach_helpers import embedding_gradients

from ephys_models.configs.decoder import DecoderConfig
from ephys_models.configs.gpt2meg import GPT2MEGMixConfig, GPT2MEGTrfConfig, VQGPT2MEGConfig
from ephys_models.gpt2meg_trf import GPT2MEGCond, GPT2MEGMix, GPT2MEGTrf
from ephys_models.transformer import Decoder, MixtureOfExperts, load_balancing_loss
from ephys_models.vqgpt2meg import VQGPT2MEG

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def decoder(seed: int = 0, **overrides) -> Decoder:
    params = {"d_model": 16, "n_layers": 2, "n_heads": 2, "context_length": 32, **overrides}
    sinks = params.pop("learned_sinks", False)
    torch.manual_seed(seed)
    return Decoder(DecoderConfig(**params), "test", sinks).eval()


def reach(model: Decoder, steps: int, query_step: int, tokens_per_step: int = 1) -> torch.Tensor:
    """Per input step, whether the outputs of ``query_step`` have a gradient from it."""
    h = torch.randn(1, steps * tokens_per_step, 16, requires_grad=True)
    out, _ = model(h, tokens_per_step=tokens_per_step)
    start = query_step * tokens_per_step
    out[:, start : start + tokens_per_step].sum().backward()
    grad = h.grad.abs().sum(-1)[0].reshape(steps, tokens_per_step).sum(-1)
    return grad > 0


def test_the_decoder_is_causal_and_sees_every_token_of_its_step():
    seen = reach(decoder(), steps=6, query_step=3, tokens_per_step=3)
    assert seen.tolist() == [True, True, True, True, False, False]


def test_a_sliding_window_forgets_old_steps_but_sinks_stay_visible():
    seen = reach(decoder(sliding_window=2, n_layers=1), steps=8, query_step=6)
    assert seen.tolist() == [False] * 5 + [True, True, False]
    seen = reach(decoder(sliding_window=2, attention_sinks=1, n_layers=1), steps=8, query_step=6)
    assert seen.tolist() == [True] + [False] * 4 + [True, True, False]
    # each layer looks one window back: two layers reach two windows
    seen = reach(decoder(sliding_window=2, n_layers=2), steps=8, query_step=6)
    assert seen.tolist() == [False] * 4 + [True, True, True, False]


def test_learned_sinks_keep_the_decoder_causal_and_absorb_attention():
    model = decoder(learned_sinks=True)
    assert reach(model, steps=5, query_step=2).tolist() == [True, True, True, False, False]
    h = torch.randn(1, 5, 16)
    with torch.no_grad():
        before, _ = model(h)
        for block in model.blocks:
            block.attn.sinks.fill_(30.0)  # every head attends to the sink: no update
        after, _ = model(h)
        for block in model.blocks:
            block.attn.sinks.fill_(-30.0)
        ignored, _ = model(h)
    assert not torch.allclose(before, after)
    # a sink logit far below every other leaves attention as without sinks
    plain = decoder()
    plain.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.endswith("sinks")}, strict=False
    )
    torch.testing.assert_close(ignored, plain(h)[0], atol=1e-5, rtol=1e-5)


def test_the_query_key_extras_add_exactly_their_dot_product_to_the_logits():
    """``qk_extra`` (u, w) must act as the additive logit bias ``u_i . w_j``."""
    torch.manual_seed(0)
    model = decoder(n_layers=1)
    attention = model.blocks[0].attn
    h = torch.randn(2, 5, 16)
    u, w = torch.randn(2, 5, 2, 3), torch.randn(2, 5, 2, 3)
    angles = torch.zeros(5, 4)
    rope = (angles.cos(), angles.sin())  # no rotation: compare against plain attention
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    with torch.no_grad():
        out, _ = attention(h, rope, causal[None, None], None, (u, w))
        q = attention.q(h).reshape(2, 5, 2, 8).transpose(1, 2)
        k, v = (t.reshape(2, 5, 2, 8).transpose(1, 2) for t in attention.kv(h).chunk(2, -1))
        bias = torch.einsum("bihr,bjhr->bhij", u, w).masked_fill(~causal, float("-inf"))
        weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5 + bias, dim=-1)
        expected = attention.proj((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_experts_route_each_token_to_its_top_k():
    torch.manual_seed(0)
    layer = MixtureOfExperts(8, 16, n_experts=4, top_k=1)
    x = torch.randn(3, 5, 8)
    out = layer(x)
    chosen = layer.router_logits.argmax(-1)
    for i, expert in enumerate(chosen.tolist()):
        row = x.reshape(-1, 8)[i]
        gate, up = (row @ layer.gate_up[expert]).chunk(2, -1)
        expected = (torch.nn.functional.silu(gate) * up) @ layer.down[expert]
        torch.testing.assert_close(out.reshape(-1, 8)[i], expected, atol=1e-6, rtol=1e-5)


def test_the_load_balancing_loss_punishes_collapsed_routing():
    balanced = torch.eye(4).repeat(8, 1) * 5  # 32 tokens, spread over 4 experts
    collapsed = torch.zeros(32, 4)
    collapsed[:, 0] = 5  # every token to expert 0
    low = load_balancing_loss([balanced], top_k=1)
    high = load_balancing_loss([collapsed], top_k=1)
    assert float(low) == pytest.approx(1.0, abs=0.05)  # the minimum: top_k
    assert float(high) > 3 * float(low)


def test_the_moe_loss_reaches_the_router_and_is_absent_without_experts():
    dense = GPT2MEGTrf(GPT2MEGTrfConfig(**{**_trf_params(), "mlp": "dense"}))
    dense(dense.example_input())
    assert dense.auxiliary_loss() is None
    model = GPT2MEGTrf(GPT2MEGTrf.example_config())
    model(model.example_input())
    aux = model.auxiliary_loss()
    assert aux is not None and aux.ndim == 0 and aux.item() > 0
    aux.backward()
    routers = [b.mlp.router.weight.grad for b in model.decoder.blocks]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in routers)


def _trf_params() -> dict:
    return GPT2MEGTrf.example_config().model_dump()


def test_training_adds_the_experts_loss_and_logs_it(signal_root, tmp_path):
    from engine_helpers import tiny_run

    from ephys_core.config import load_config
    from ephys_models.training import train

    params = {"d_model": 16, "n_layers": 1, "n_heads": 2, "context_length": 64}
    params |= {"mlp": "moe", "n_experts": 4, "experts_per_token": 2}
    config = tiny_run(signal_root, tmp_path, model={"name": "gpt2meg_trf", "params": params})
    assert train(load_config(config)).global_step == 6
    lines = (tmp_path / "run/logs/version_0/metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert "train/aux_loss" in header
    column = header.index("train/aux_loss")
    values = [float(row.split(",")[column]) for row in lines[1:] if row.split(",")[column]]
    # weight 0.01 times the loss, which is at least top_k = 2
    assert values and all(0.0199 < v < 0.08 for v in values)


def test_experts_cannot_outnumber_their_layer():
    with pytest.raises(ValidationError, match="experts_per_token"):
        GPT2MEGTrfConfig(**{**_trf_params(), "n_experts": 2, "experts_per_token": 3})


def test_condition_film_and_bias_start_at_zero_and_learn_to_move_the_outputs():
    cond = GPT2MEGCond(GPT2MEGCond.example_config()).eval()
    inputs = cond.example_input()
    with torch.no_grad():
        start = cond(inputs)
        plain = GPT2MEGTrf(GPT2MEGTrfConfig(**cond.config.model_dump(exclude={"condition_rank"})))
        plain.load_state_dict(cond.state_dict(), strict=False)
        torch.testing.assert_close(start, plain.eval()(inputs))  # FiLM and bias start at 0
        cond.film.bias.normal_()
        cond.bias_key.weight.normal_()
        assert not torch.allclose(cond(inputs), start)


def test_the_condition_bias_reads_the_keys_conditions():
    """Changing the label of an early step changes later outputs through the bias alone."""
    torch.manual_seed(0)
    cond = GPT2MEGCond(GPT2MEGCond.example_config()).eval()
    with torch.no_grad():
        cond.film.weight.zero_()
        cond.film.bias.zero_()
        cond.context.condition.weight.zero_()  # no condition embedding: only the bias
        cond.bias_key.weight.normal_()
        x = torch.randint(0, 16, (1, 3, 6))
        a = cond({"x": x, "condition": torch.tensor([[1, 1, 1, 1, 1, 1]])})
        b = cond({"x": x, "condition": torch.tensor([[2, 1, 1, 1, 1, 1]])})
    assert not torch.allclose(a[..., 3, :], b[..., 3, :])


def test_gpt2meg_cond_explains_missing_conditions():
    with pytest.raises(ValidationError, match="labels: true"):
        GPT2MEGCond.Config(**{**GPT2MEGCond.example_config().model_dump(), "n_conditions": 0})


def test_channel_dropout_acts_in_training_only():
    model = GPT2MEGMix(GPT2MEGMix.example_config())
    x = model.example_input()
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    b = model(x)
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_gpt2meg_mix_heads_are_tied_to_each_channels_codes():
    config = GPT2MEGMixConfig(**{**GPT2MEGMix.example_config().model_dump(), "channel_dropout": 0})
    model = GPT2MEGMix(config).eval()
    x = model.example_input()
    with torch.no_grad():
        before = model(x)
        v = config.vocab_size
        model.codes.weight[v : 2 * v] *= 2  # channel 1's table: its embeddings and its head
        after = model(x)
    assert not torch.allclose(before[:, 1], after[:, 1])


def test_vqgpt2meg_reads_every_cell_of_its_step_and_nothing_later():
    model = VQGPT2MEG(VQGPT2MEG.example_config()).eval()
    x = model.example_input(batch_size=1)["x"]  # (1, 4 cells, T)
    logits, grad_of = embedding_gradients(model, model.wte, x)
    for step in (0, 3, x.shape[-1] - 1):
        touched = grad_of(logits[0, 2, step].sum()).abs().sum(-1)[0] > 0  # (cells, T)
        assert bool(touched[:, : step + 1].all()) and not bool(touched[:, step + 1 :].any())


def test_vqgpt2meg_places_the_cells_on_the_tokenizers_grid():
    base = VQGPT2MEG.example_config().model_dump()
    model = VQGPT2MEG(VQGPT2MEGConfig(**{**base, "n_channels": 6, "grid_width": 3}))
    assert model.cell_row.tolist() == [0, 0, 0, 1, 1, 1]
    assert model.cell_col.tolist() == [0, 1, 2, 0, 1, 2]
    assert VQGPT2MEGConfig(**{**base, "n_channels": 9}).grid == (3, 3)
    with pytest.raises(ValidationError, match="not a square grid"):
        VQGPT2MEGConfig(**{**base, "n_channels": 6})
    with pytest.raises(ValidationError, match="must divide"):
        VQGPT2MEGConfig(**{**base, "n_channels": 6, "grid_width": 4})
