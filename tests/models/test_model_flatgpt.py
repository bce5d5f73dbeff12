"""FlatGPT specifics: one block-causal sequence over all channels, on every backbone family."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from reach_helpers import backbone_lengths, embedding_gradients

from ephys_models.configs.flatgpt import BACKBONES, FlatGPTConfig
from ephys_models.flatgpt import FlatGPT
from ephys_models.generation import Sampler
from ephys_models.transformer import block_causal_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


#: every backbone, and qwen3 with mixture-of-experts MLPs (Qwen3-MoE)
VARIANTS = (*BACKBONES, "qwen3_moe")


def build(backbone: str, seed: int = 0, **overrides) -> FlatGPT:
    if backbone == "qwen3_moe":
        backbone, overrides = "qwen3", {"mlp": "moe", "n_experts": 4, **overrides}
    params = {**FlatGPT.example_config().model_dump(), "backbone": backbone, **overrides}
    if backbone == "gpt2":
        params["n_kv_heads"] = None
    torch.manual_seed(seed)
    return FlatGPT(FlatGPTConfig(**params)).eval()


def ids(model: FlatGPT, batch: int = 2, steps: int = 6, seed: int = 0) -> torch.Tensor:
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (batch, cfg.n_channels, steps), generator=gen)


def test_the_mask_is_block_causal():
    mask = block_causal_mask(1, 2, 3)[0, 0]  # 3 steps of 2 channels
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)
    after_two = block_causal_mask(1, 2, 1, past_steps=2)[0, 0]
    assert torch.equal(after_two, torch.ones(2, 6, dtype=torch.bool))


@pytest.mark.parametrize("backbone", VARIANTS)
def test_each_output_reads_every_channel_up_to_its_step_and_nothing_later(backbone):
    model = build(backbone)
    x = ids(model, batch=1)
    logits, grad_of = embedding_gradients(model, model.wte, x)  # (1, C, T, V)
    c, t = x.shape[1], x.shape[2]
    for step in range(t):
        for channel in range(c):
            touched = grad_of(logits[0, channel, step].sum()).abs().sum(-1)[0] > 0  # (C, T)
            assert bool(touched[:, : step + 1].all()), (backbone, channel, step)
            assert not bool(touched[:, step + 1 :].any()), (backbone, channel, step)


@pytest.mark.parametrize("backbone", VARIANTS)
def test_cached_generation_equals_recomputing_the_window(backbone):
    model = build(backbone)
    context = ids(model, batch=2, steps=5, seed=1)
    greedy = Sampler(strategy="argmax")
    cached = model.forecast(context, 7, sampler=greedy, use_cache=True)
    fresh = model.forecast(context, 7, sampler=greedy, use_cache=False)
    assert torch.equal(cached, fresh)
    # and every generated step is the argmax of the full forward on its past
    full = torch.cat([context, cached], dim=-1)
    logits = model(full[..., :-1])
    assert torch.equal(logits[..., 4:, :].argmax(-1), cached)


def test_the_backbones_differ_and_positions_are_time_steps():
    x = ids(build("qwen2"), batch=1)
    outputs = {b: build(b)(x) for b in BACKBONES}
    assert all(o.shape == (1, 3, 6, 16) for o in outputs.values())
    # channels of one step share a position: swapping two channels' codes and their channel
    # embeddings permutes the outputs (no position tells them apart)
    model = build("llama")
    with torch.no_grad():
        swapped = model.context.channel.weight[[1, 0, 2]].clone()
        a = model(x)
        model.context.channel.weight.copy_(swapped)
        b = model(x[:, [1, 0, 2]])
    torch.testing.assert_close(b, a[:, [1, 0, 2]], atol=1e-5, rtol=1e-4)


def test_qwen3_moe_routes_to_experts_and_its_balancing_loss_reaches_the_routers():
    dense, moe = build("qwen3"), build("qwen3_moe")
    x = ids(moe)
    dense(x)
    assert dense.auxiliary_loss() is None
    moe(x)
    aux = moe.auxiliary_loss()
    assert aux is not None and aux.item() >= 0.01 * moe.config.experts_per_token * 0.99
    aux.backward()
    gates = [layer.mlp.gate.weight.grad for layer in moe.backbone.layers]
    assert all(g is not None and g.abs().sum().item() > 0 for g in gates)
    with pytest.raises(ValidationError, match="mixture-of-experts"):
        FlatGPTConfig(**{**FlatGPT.example_config().model_dump(), "mlp": "moe"})  # qwen2


def test_grouped_query_attention_shrinks_the_key_value_projections():
    full, grouped = build("qwen3", n_kv_heads=2), build("qwen3", n_kv_heads=1)
    attention = grouped.backbone.layers[0].self_attn
    assert attention.k_proj.out_features == grouped.config.d_model // 2
    params = [sum(p.numel() for p in m.parameters()) for m in (full, grouped)]
    assert params[1] < params[0]


def test_the_configuration_is_checked():
    with pytest.raises(ValidationError, match="must divide n_heads"):
        FlatGPTConfig(n_heads=4, n_kv_heads=3)
    with pytest.raises(ValidationError, match="no grouped-query attention"):
        FlatGPTConfig(backbone="gpt2", n_kv_heads=2)
    model = build("gpt2")
    with pytest.raises(ValueError, match="exceed context_length=32"):
        model(ids(model, steps=33))


def test_a_run_trains_with_the_engine(signal_root, tmp_path):
    from engine_helpers import tiny_run

    from ephys_core.config import load_config
    from ephys_models.training import train

    config = tiny_run(
        signal_root,
        tmp_path,
        model={
            "name": "flatgpt",
            "params": {
                "backbone": "llama",
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "n_kv_heads": 1,
                "context_length": 64,
            },
        },
        trainer={"max_steps": 4},
    )
    assert train(load_config(config)).global_step == 4


@pytest.mark.parametrize("name", ["flatgpt_embeds", "flatgpt_mix", "flatgpt_embeds_rvq"])
def test_one_position_per_step_reads_every_channel(name):
    from ephys_core import get_registry

    cls = get_registry("models").load(name)
    torch.manual_seed(0)
    model = cls(cls.example_config()).eval()
    x = ids(model, batch=1, steps=6)
    base, lengths = backbone_lengths(model, x)
    assert lengths == [6]  # T positions, not C * T
    changed = x.clone()
    changed[0, 0, 3] = (changed[0, 0, 3] + 1) % model.config.vocab_size  # channel 0, step 3
    after = model(changed)
    assert torch.equal(after[..., :3, :], base[..., :3, :])
    rows = model.config.n_channels
    assert all(not torch.allclose(after[0, c, 3], base[0, c, 3]) for c in range(rows))


def test_qwen2_5_vl_positions_carry_the_channel():
    """Its 3-D rotary positions are (time step, channel, 0): the channels of one step get
    different rotary phases, where a 1-D backbone gives them one."""
    from ephys_models.flatgpt import mrope_section, positions

    assert mrope_section(8) == [2, 1, 1] and sum(mrope_section(64)) == 32
    phases = {}
    for backbone in ("qwen2_5_vl", "qwen2"):
        model = build(backbone)
        ids_ = positions(model.config, torch.arange(2, 4), 3, 1)
        hidden = torch.zeros(1, 6, model.config.d_model)
        cos, _ = model.backbone.rotary_emb(hidden, ids_)
        phases[backbone] = cos.reshape(-1, 6, cos.shape[-1])[-1]  # (tokens, head_dim)
    vl = phases["qwen2_5_vl"]
    assert not torch.allclose(vl[0], vl[1]) and not torch.allclose(vl[1], vl[2])
    assert torch.allclose(phases["qwen2"][0], phases["qwen2"][2])  # channels share a phase
    ids_ = positions(build("qwen2_5_vl").config, torch.arange(2, 4), 3, 1)
    assert ids_.shape == (3, 1, 6)
    assert ids_[0, 0].tolist() == [2, 2, 2, 3, 3, 3] and ids_[1, 0].tolist() == [0, 1, 2] * 2


def test_rvq_levels_fold_into_one_token_per_latent():
    from ephys_models.flatgpt import FlatGPTRVQ

    torch.manual_seed(0)
    model = FlatGPTRVQ(FlatGPTRVQ.example_config()).eval()  # 2 levels x 3 latents
    assert (model.levels, model.latents) == (2, 3)
    x = ids(model, batch=1, steps=5)
    base, lengths = backbone_lengths(model, x)
    assert lengths == [3 * 5] and base.shape == (1, 6, 5, 16)
    changed = x.clone()
    changed[0, 4, 2] = (changed[0, 4, 2] + 1) % 16  # level 1 of latent 1, step 2
    after = model(changed)
    assert torch.equal(after[..., :2, :], base[..., :2, :])
    assert all(not torch.allclose(after[0, r, 2], base[0, r, 2]) for r in range(6))
    with pytest.raises(ValidationError, match="must divide the code rows"):
        type(model.config)(n_channels=5, code_levels=2)
    (problem,) = type(model.config)(n_channels=6, code_levels=3, vocab_size=16).check_data(
        {"n_channels": 6, "vocab_size": 16, "code_levels": 2}
    )
    assert "code_levels is 3, but the data's codes have 2 levels" in problem


def test_the_flagship_path_in_miniature(signal_root, tmp_path):
    """brainomni trained and exported, the data encoded, flatgpt_rvq trained on the codes
    with its levels taken from the data, and its rollouts decoded to signal."""
    from engine_helpers import TINY_FLATGPT_RVQ, tiny_code_run, train_tokenizer_briefly

    from ephys_core.config import load_config
    from ephys_data.encoding import encode_dataset
    from ephys_models.brainomni import BrainOmni
    from ephys_models.tokenizer_export import export_tokenizer
    from ephys_models.training import train
    from ephys_tokenizers.artifact import load_tokenizer

    train_tokenizer_briefly(
        signal_root,
        tmp_path / "tok",
        "reconstruction",
        {},
        "brainomni",
        BrainOmni.example_config().model_dump(),
        ("train/l1",),
    )
    export_tokenizer(tmp_path / "tok/run/checkpoints/last.ckpt", tmp_path / "brainomni")
    artifact = load_tokenizer(tmp_path / "brainomni")
    encode_dataset(artifact, [signal_root], tmp_path / "codes")
    config = tiny_code_run(tmp_path / "codes", tmp_path, "flagship", TINY_FLATGPT_RVQ)
    result = train(load_config(config))
    stored = load_config(str(tmp_path / "flagship" / "config.yaml"))
    params = stored.params("model")
    assert params.code_levels == 2 and params.n_channels == 2 * 3  # levels x latents
    from ephys_eval.runner import evaluate

    evaluation = evaluate(result.last_checkpoint, None, tmp_path / "report")
    decoded = evaluation.summary["evaluators"]["decoded_forecast"]
    assert decoded["tokenizer"]["name"] == "brainomni"
    assert decoded["rollout"]["metrics"]["psd_log_distance"]["model"]["value"] >= 0


def test_a_sliding_window_with_sinks_hides_the_middle_of_the_past():
    mask = block_causal_mask(1, 1, 5, window=2, sinks=1)[0, 0].int()
    assert mask.tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 0, 1, 1, 0],
        [1, 0, 0, 1, 1],
    ]
    model = build("qwen3", sliding_window=2, attention_sinks=1)
    x = ids(model, batch=1, steps=6)
    logits, grad_of = embedding_gradients(model, model.wte, x)
    touched = (grad_of(logits[0, 0, 5].sum()).abs().sum(-1)[0] > 0).any(0)  # per step
    # two layers: step 5 reads steps 4, 5 and the sink 0 directly, and through them step 3
    assert touched.tolist() == [True, False, False, True, True, True]
    greedy = Sampler(strategy="argmax")
    context = ids(model, batch=2, steps=4, seed=2)
    assert torch.equal(
        model.forecast(context, 6, sampler=greedy, use_cache=True),
        model.forecast(context, 6, sampler=greedy, use_cache=False),
    )


def test_stretched_rotary_positions_allow_longer_windows():
    model = build("llama", rope_scaling="yarn", rope_factor=2.0, context_length=8)
    assert model.max_context == 16
    assert model(ids(model, steps=16)).shape[2] == 16
    with pytest.raises(ValueError, match="exceed context_length=8 x rope_factor=2.0"):
        model(ids(model, steps=17))
    with pytest.raises(ValidationError, match="learned positions"):
        FlatGPTConfig(backbone="gpt2", rope_scaling="linear", rope_factor=2.0)
    with pytest.raises(ValidationError, match="need a sliding_window"):
        FlatGPTConfig(attention_sinks=2)
