"""Quantiser layers: shapes, round trips, straight-through gradients, EMA codebooks, FSQ, LFQ."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("einops")

from ephys_tokenizers.quantizers import (  # noqa: E402
    FiniteScalarQuantizer,
    LookupFreeQuantizer,
    QuantizerOutput,
    ResidualVectorQuantizer,
    VectorQuantizer,
    codebook_metrics,
)

DIM = 4

FACTORIES = {
    "vq": lambda: VectorQuantizer(DIM, 16),
    "rvq": lambda: ResidualVectorQuantizer(DIM, 16, levels=3),
    "fsq": lambda: FiniteScalarQuantizer([3, 4, 5, 2]),
    "lfq": lambda: LookupFreeQuantizer(DIM),
}
SHAPES = {"BDT": (2, DIM, 24), "BDLT": (2, DIM, 3, 8)}


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return FACTORIES[name]()


def expected_codes_shape(quantizer, shape) -> tuple[int, ...]:
    if isinstance(quantizer, ResidualVectorQuantizer):
        return (shape[0], quantizer.levels, *shape[2:])
    return (shape[0], *shape[2:])


def clusters(k: int, dim: int, n: int, *, spread: float = 6.0, noise: float = 0.1, seed: int = 1):
    """``n`` vectors ``(n, dim)`` from ``k`` well-separated Gaussian clusters, and the centres.

    The centres depend only on ``k`` and ``dim``; ``seed`` draws the noise.
    """
    centres = torch.randn(k, dim, generator=torch.Generator().manual_seed(1234)) * spread
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    return centres[labels] + noise * torch.randn(n, dim, generator=gen), centres


def as_latents(rows: torch.Tensor, batch: int) -> torch.Tensor:
    """``(N, D)`` -> ``(batch, D, N // batch)``."""
    return rows.reshape(batch, -1, rows.shape[1]).permute(0, 2, 1).contiguous()


# ------------------------------------------------------------------------------ all quantisers


@pytest.mark.parametrize("shape_name", SHAPES)
@pytest.mark.parametrize("name", FACTORIES)
def test_shapes_dtypes_and_code_range(name, shape_name):
    shape = SHAPES[shape_name]
    quantizer = make(name)
    z = torch.randn(*shape)
    out = quantizer(z)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == z.shape and out.quantized.dtype == z.dtype
    codes_shape = expected_codes_shape(quantizer, shape)
    for codes in (out.codes, quantizer.encode(z)):
        assert codes.shape == codes_shape and codes.dtype == torch.int64
        assert int(codes.min()) >= 0 and int(codes.max()) < quantizer.codebook_size
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    for key in ("usage", "perplexity"):
        value = out.metrics[key]
        assert value.ndim == 0 and not value.requires_grad
    assert 0 < float(out.metrics["usage"]) <= 1
    assert 1 <= float(out.metrics["perplexity"]) <= quantizer.codebook_size


@pytest.mark.parametrize("shape_name", SHAPES)
@pytest.mark.parametrize("name", FACTORIES)
def test_decode_of_encode_equals_forward_in_eval_mode(name, shape_name):
    quantizer = make(name)
    quantizer(torch.randn(8, DIM, 32))  # a training step: k-means initialisation for VQ/RVQ
    quantizer.eval()
    z = torch.randn(*SHAPES[shape_name])
    out = quantizer(z)
    codes = quantizer.encode(z)
    torch.testing.assert_close(codes, out.codes, rtol=0, atol=0)
    assert torch.equal(quantizer.decode(codes), out.quantized)


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_rvq_decode_of_encode_equals_forward_for_every_level_count(levels):
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(DIM, 8, levels=levels)
    rvq(torch.randn(4, DIM, 64))
    rvq.eval()
    z = torch.randn(3, DIM, 2, 10)
    out = rvq(z)
    assert out.codes.shape == (3, levels, 2, 10)
    assert torch.equal(rvq.encode(z), out.codes)
    assert torch.equal(rvq.decode(out.codes), out.quantized)
    assert torch.equal(rvq.decode(out.codes, n_levels=levels), out.quantized)
    # codes of only the first levels decode to the same partial sums
    partial = rvq.decode(out.codes, n_levels=1)
    assert torch.equal(rvq.decode(out.codes[:, :1]), partial)
    assert torch.equal(partial, rvq.layers[0].decode(out.codes[:, 0]))


@pytest.mark.parametrize("name", FACTORIES)
def test_gradients_flow_straight_through_to_z(name):
    quantizer = make(name)
    z = torch.randn(2, DIM, 12, requires_grad=True)
    weights = torch.randn(2, DIM, 12)
    (quantizer(z).quantized * weights).sum().backward()
    assert z.grad is not None and bool((z.grad != 0).any())
    if name != "fsq":  # the identity, for RVQ too (not `levels` times it)
        torch.testing.assert_close(z.grad, weights)


@pytest.mark.parametrize("name", ["vq", "rvq", "lfq"])
def test_auxiliary_loss_pulls_z_towards_its_codes(name):
    quantizer = make(name)
    if name == "lfq":  # the commitment part alone, which is positive
        quantizer = LookupFreeQuantizer(DIM, entropy_weight=0.0)
    z = torch.randn(2, DIM, 12, requires_grad=True)
    out = quantizer(z)
    assert float(out.loss.detach()) > 0
    out.loss.backward()
    assert z.grad is not None and bool((z.grad != 0).any())


@pytest.mark.parametrize("name", FACTORIES)
def test_eval_mode_changes_no_buffer(name):
    quantizer = make(name)
    quantizer.eval()
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    for _ in range(3):
        quantizer(torch.randn(4, DIM, 16))
    after = quantizer.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    if name in ("vq", "rvq"):  # no k-means initialisation outside training either
        assert any(key.endswith("initialized") for key in before)
        assert not any(bool(v) for k, v in after.items() if k.endswith("initialized"))


AUTOCAST_FACTORIES = {  # sizes where bfloat16 arithmetic would change some codes
    "vq": lambda: VectorQuantizer(32, 512),
    "rvq": lambda: ResidualVectorQuantizer(32, 128, levels=3),
    "fsq": lambda: FiniteScalarQuantizer([8] * 4 + [5] * 4),
    "lfq": lambda: LookupFreeQuantizer(12),
}


@pytest.mark.parametrize("name", AUTOCAST_FACTORIES)
def test_float32_inside_autocast(name):
    torch.manual_seed(0)
    quantizer = AUTOCAST_FACTORIES[name]()
    quantizer.eval()
    z = torch.randn(4, quantizer.dim, 4, 16) * 2
    reference = quantizer(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = quantizer(z)
        out_bf16 = quantizer(z.bfloat16())
        codes_bf16 = quantizer.encode(z.bfloat16())
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.codes, reference.codes)
    assert torch.equal(out.quantized, reference.quantized)
    assert out.loss.dtype == torch.float32 and torch.equal(out.loss, reference.loss)
    # bfloat16 latents: output in bfloat16, codes those of the same values in float32
    assert out_bf16.quantized.dtype == torch.bfloat16
    float_run = quantizer(z.bfloat16().float())
    assert torch.equal(out_bf16.codes, float_run.codes)
    assert torch.equal(codes_bf16, float_run.codes)
    assert torch.equal(out_bf16.quantized, float_run.quantized.bfloat16())


# -------------------------------------------------------------------------------- vector (EMA)


def test_ema_step_moves_codewords_to_the_smoothed_mean_of_their_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(3, 4, kmeans_init=False, decay=0.9, eps=1e-5, dead_code_threshold=0)
    size, sums = vq.cluster_size.clone(), vq.embed_sum.clone()
    z = torch.randn(2, 3, 50)
    out = vq(z)
    rows = z.permute(0, 2, 1).reshape(-1, 3)
    codes = out.codes.reshape(-1)
    counts = torch.bincount(codes, minlength=4).float()
    assigned = torch.zeros(4, 3).index_add_(0, codes, rows)
    new_size = 0.9 * size + 0.1 * counts
    new_sums = 0.9 * sums + 0.1 * assigned
    total = new_size.sum()
    smoothed = (new_size + 1e-5) / (total + 4e-5) * total
    torch.testing.assert_close(vq.cluster_size, new_size)
    torch.testing.assert_close(vq.embed_sum, new_sums)
    torch.testing.assert_close(vq.codebook, new_sums / smoothed[:, None])


def test_ema_training_drives_the_quantisation_error_down():
    k, dim = 8, 4
    torch.manual_seed(0)
    vq = VectorQuantizer(dim, k, kmeans_init=False)
    errors = []
    for step in range(40):
        rows, _ = clusters(k, dim, 512, seed=100 + step)
        z = as_latents(rows, 4)
        out = vq(z)
        errors.append(float(((out.quantized - z) ** 2).mean()))
    assert errors[-1] < 0.3 * errors[0]
    assert sum(errors[-5:]) < sum(errors[5:10])


def test_kmeans_init_finds_every_cluster():
    k, dim = 8, 4
    torch.manual_seed(0)
    vq = VectorQuantizer(dim, k)
    rows, centres = clusters(k, dim, 1024)
    z = as_latents(rows, 4)
    out = vq(z)
    assert bool(vq.initialized)
    assert float(out.metrics["perplexity"]) > 0.97 * k
    assert float(out.metrics["usage"]) == 1.0
    # each centre has a codeword on it, and the error is the noise's
    nearest = torch.cdist(centres, vq.codebook).min(dim=1).values
    assert float(nearest.max()) < 0.05
    assert float(((out.quantized - z) ** 2).mean()) < 2 * 0.1**2
    # further training steps on the same mixture keep it there
    for step in range(5):
        out = vq(as_latents(clusters(k, dim, 512, seed=10 + step)[0], 4))
    assert float(out.metrics["perplexity"]) > 0.97 * k


def test_kmeans_init_with_fewer_vectors_than_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 32)
    z = torch.randn(1, 2, 10)
    out = vq(z)
    assert bool(vq.initialized)
    assert torch.isfinite(vq.codebook).all()
    assert float(((out.quantized - z) ** 2).max()) < 1e-10  # every vector has its own code


def test_kmeans_init_runs_once_and_survives_a_checkpoint(monkeypatch):
    torch.manual_seed(0)
    vq = VectorQuantizer(DIM, 8)
    assert not bool(vq.initialized)
    calls = []
    original = VectorQuantizer._kmeans_init

    def counting(self, rows):
        calls.append(rows.shape)
        return original(self, rows)

    monkeypatch.setattr(VectorQuantizer, "_kmeans_init", counting)
    vq(torch.randn(4, DIM, 16))
    assert len(calls) == 1 and bool(vq.initialized)
    vq(torch.randn(4, DIM, 16))
    assert len(calls) == 1

    state = vq.state_dict()
    assert bool(state["initialized"])
    torch.manual_seed(1)
    restored = VectorQuantizer(DIM, 8)
    restored.load_state_dict(state)
    assert bool(restored.initialized)
    assert torch.equal(restored.codebook, vq.codebook)
    restored(torch.randn(4, DIM, 16))
    assert len(calls) == 1

    # loading a state that was never initialised brings the initialisation back
    restored.load_state_dict(VectorQuantizer(DIM, 8).state_dict())
    restored(torch.randn(4, DIM, 16))
    assert len(calls) == 2


@pytest.mark.parametrize("threshold", [1e-3, 0.0])
def test_dead_codes_far_from_the_data_are_restarted(threshold):
    k, dim = 8, 4
    torch.manual_seed(0)
    vq = VectorQuantizer(dim, k, dead_code_threshold=threshold)
    vq(as_latents(clusters(k, dim, 512)[0], 4))
    # move the codebook far from the data, as codes long unused (tiny EMA size), consistently
    far = -60.0 + 0.5 * torch.randn(k, dim)
    vq.codebook.copy_(far)
    vq.cluster_size.fill_(1e-3)
    vq.embed_sum.copy_(far * 1e-3)
    usage, restarted = [], []
    for step in range(4):
        out = vq(as_latents(clusters(k, dim, 512, seed=20 + step)[0], 4))
        usage.append(float(out.metrics["usage"]))
        restarted.append(float(out.metrics["restarted"]))
    assert usage[0] == 1 / k  # every vector went to the one nearest far code
    if threshold > 0:
        assert restarted[0] == k - 1
        assert usage[-1] >= 0.75 and sum(restarted[1:]) < k
    else:  # without restarts the far codes stay unused
        assert restarted == [0.0] * 4 and usage[-1] == 1 / k


# ------------------------------------------------------------------------------------ residual


def test_rvq_error_falls_with_every_level_decoded():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(DIM, 16, levels=4)
    for _ in range(5):
        rvq(torch.randn(8, DIM, 64))
    rvq.eval()
    z = torch.randn(8, DIM, 64)
    out = rvq(z)
    assert out.metrics.keys() >= {
        "usage",
        "perplexity",
        *(f"{m}/{i}" for m in ("usage", "perplexity") for i in range(4)),
    }
    mean_usage = sum(float(out.metrics[f"usage/{i}"]) for i in range(4)) / 4
    assert math.isclose(float(out.metrics["usage"]), mean_usage, rel_tol=1e-6)
    errors = [float(((rvq.decode(out.codes, n) - z) ** 2).mean()) for n in range(1, 5)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 0.5 * errors[0]
    # the training loss is the sum of the level losses
    z = torch.randn(2, DIM, 16)
    expected, residual = 0.0, z
    for layer in rvq.layers:
        level = layer(residual)
        expected += float(level.loss)
        residual = residual - level.quantized
    assert math.isclose(float(rvq(z).loss), expected, rel_tol=1e-5)


# ------------------------------------------------------------------------------- finite scalar


@pytest.mark.parametrize("levels", [[2], [3], [4, 5], [8, 5, 5, 5], [2, 3, 4]])
def test_fsq_grid_is_a_bijection_with_the_codes(levels):
    fsq = FiniteScalarQuantizer(levels)
    assert fsq.dim == len(levels) and fsq.codebook_size == math.prod(levels)
    codes = torch.arange(fsq.codebook_size).reshape(1, -1)
    points = fsq.decode(codes)  # (1, dim, size)
    assert points.shape == (1, len(levels), fsq.codebook_size)
    assert torch.unique(points[0].t(), dim=0).shape[0] == fsq.codebook_size
    assert float(points.min()) == -1.0 and float(points.max()) <= 1.0
    for i, level in enumerate(levels):
        values = torch.unique(points[0, i])
        assert values.numel() == level
        # odd counts reach +1, even counts stop a step short of it
        assert float(values.max()) == (1.0 if level % 2 else 1 - 2 / level)
    assert torch.equal(fsq.codes_from_quantized(points), codes)


@pytest.mark.parametrize("levels", [[2], [5], [4, 3], [6, 2, 3]])
def test_fsq_encode_reaches_every_code_and_matches_forward(levels):
    fsq = FiniteScalarQuantizer(levels)
    axis = torch.linspace(-8, 8, 81)
    grid = torch.cartesian_prod(*[axis] * len(levels)).reshape(-1, len(levels))
    z = grid.t().reshape(1, len(levels), -1)
    codes = fsq.encode(z)
    assert torch.equal(torch.unique(codes), torch.arange(fsq.codebook_size))
    out = fsq(z)
    assert torch.equal(out.codes, codes)
    assert torch.equal(fsq.decode(codes), out.quantized)
    assert torch.equal(fsq.codes_from_quantized(out.quantized), codes)
    assert float(out.loss) == 0.0
    # the code is monotone in each channel: a larger latent never gives a lower level
    single = torch.linspace(-8, 8, 401).reshape(1, 1, -1).expand(1, len(levels), -1)
    digits = fsq.encode(single.contiguous())
    assert bool((digits[0, 1:] >= digits[0, :-1]).all())


def test_fsq_odd_levels_put_zero_on_zero():
    fsq = FiniteScalarQuantizer([5, 7])
    out = fsq(torch.zeros(1, 2, 3))
    assert torch.equal(out.quantized, torch.zeros(1, 2, 3))


# --------------------------------------------------------------------------------- lookup-free


def test_lfq_codes_are_the_binary_sign_pattern():
    lfq = LookupFreeQuantizer(3)
    assert lfq.codebook_size == 8
    # positions: signs (-,-,-), (+,-,-), (-,+,+), (+,+,+); channel i is bit i
    z = torch.tensor([[[-0.5, 2.0, -1.0, 0.1], [-3.0, -0.2, 0.4, 0.2], [-1.0, -1.0, 5.0, 0.3]]])
    out = lfq(z)
    assert out.codes.tolist() == [[0, 1, 6, 7]]
    assert torch.equal(out.quantized, torch.where(z > 0, 1.0, -1.0))
    table = lfq.decode(torch.arange(8).reshape(1, 8))[0].t()
    expected = [[1.0 if (c >> i) & 1 else -1.0 for i in range(3)] for c in range(8)]
    assert table.tolist() == expected
    assert torch.equal(lfq.encode(table.t().unsqueeze(0)), torch.arange(8).reshape(1, 8))


def test_lfq_entropy_rewards_a_diverse_batch():
    torch.manual_seed(0)
    lfq = LookupFreeQuantizer(6, commitment=0.0, entropy_weight=1.0)
    signs = torch.where(torch.rand(1, 6, 512) > 0.5, 1.0, -1.0)
    diverse = lfq(2 * signs)
    collapsed = lfq(2 * signs[:, :, :1].expand(1, 6, 512))
    for out in (diverse, collapsed):
        assert torch.isfinite(out.loss)
    assert float(diverse.loss) < float(collapsed.loss) - 2.0
    assert float(diverse.metrics["codebook_entropy"]) > 0.9 * 6 * math.log(2)
    # identical vectors: the batch-mean distribution is each vector's own
    collapsed_entropy = float(collapsed.metrics["codebook_entropy"])
    assert collapsed_entropy < 0.05
    assert math.isclose(
        collapsed_entropy, float(collapsed.metrics["per_sample_entropy"]), rel_tol=1e-3
    )
    assert float(diverse.metrics["usage"]) > 0.9 and float(collapsed.metrics["usage"]) == 1 / 64
    # the entropy penalty has gradients that reach z
    z = (0.3 * torch.randn(2, 6, 64)).requires_grad_()
    lfq(z).loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and bool((z.grad != 0).any())


def test_lfq_codebook_entropy_is_exact_for_a_known_distribution():
    # confident codes spread equally over 4 of the 16 codes: entropy log 4
    lfq = LookupFreeQuantizer(4, commitment=0.0, entropy_weight=1.0)
    codes = torch.tensor([0, 5, 10, 15]).repeat(25).reshape(1, 100)
    z = 20 * lfq.decode(codes)
    out = lfq(z)
    assert math.isclose(float(out.metrics["codebook_entropy"]), math.log(4), rel_tol=1e-4)
    assert float(out.metrics["per_sample_entropy"]) < 1e-6
    assert math.isclose(float(out.metrics["perplexity"]), 4.0, rel_tol=1e-5)


# ------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("size", [5, 1000])  # the second counts distinct codes, not a histogram
def test_codebook_metrics(size):
    uniform = codebook_metrics(torch.arange(size).repeat(3), size)
    assert math.isclose(float(uniform["perplexity"]), size, rel_tol=1e-5)
    assert float(uniform["usage"]) == 1.0
    repeated = codebook_metrics(torch.full((4, 2), 3), size)
    assert math.isclose(float(repeated["perplexity"]), 1.0, rel_tol=1e-6)
    assert math.isclose(float(repeated["usage"]), 1 / size, rel_tol=1e-6)
    half = codebook_metrics(torch.tensor([0, 0, 1, 1]), size)
    assert math.isclose(float(half["perplexity"]), 2.0, rel_tol=1e-6)


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: VectorQuantizer(4, 1), "'codebook_size'.*>= 2"),
        (lambda: VectorQuantizer(0, 8), "'dim'"),
        (lambda: VectorQuantizer(4, 8, decay=1.0), "'decay'"),
        (lambda: VectorQuantizer(4, 8, commitment=-1.0), "'commitment'"),
        (lambda: VectorQuantizer(4, 8, kmeans_iters=-1), "'kmeans_iters'"),
        (lambda: VectorQuantizer(4, 8, dead_code_threshold=-0.1), "'dead_code_threshold'"),
        (lambda: VectorQuantizer(4, 8, eps=0.0), "'eps'"),
        (lambda: ResidualVectorQuantizer(4, 8, levels=0), "'levels'.*>= 1"),
        (lambda: ResidualVectorQuantizer(4, 1, levels=2), "'codebook_size'"),
        (lambda: FiniteScalarQuantizer([3, 1]), r"'levels\[1\]'.*>= 2"),
        (lambda: FiniteScalarQuantizer([]), "'levels'"),
        (lambda: LookupFreeQuantizer(17), "'dim'.*16"),
        (lambda: LookupFreeQuantizer(4, entropy_weight=-1.0), "'entropy_weight'"),
        (lambda: codebook_metrics(torch.zeros(3, dtype=torch.long), 0), "'codebook_size'"),
    ],
)
def test_bad_arguments_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: VectorQuantizer(8, 4),
        lambda: ResidualVectorQuantizer(8, 4, levels=2),
        lambda: FiniteScalarQuantizer([3] * 8),
        lambda: LookupFreeQuantizer(8),
    ],
)
def test_wrong_channel_count_is_refused(build):
    quantizer = build()
    message = r"expected 8 latent channels \(dim 1\), got 6"
    with pytest.raises(ValueError, match=message):
        quantizer(torch.randn(2, 6, 10))
    with pytest.raises(ValueError, match=message):
        quantizer.encode(torch.randn(2, 6, 10))
    with pytest.raises(ValueError, match="expected z of shape"):
        quantizer(torch.randn(8))


def test_bad_codes_are_refused():
    vq = VectorQuantizer(4, 8)
    with pytest.raises(ValueError, match=r"codes in \[0, 8\)"):
        vq.decode(torch.tensor([[0, 8]]))
    with pytest.raises(ValueError, match="integer tensor"):
        vq.decode(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"codes in \[0, 12\)"):
        FiniteScalarQuantizer([3, 4]).decode(torch.tensor([[-1]]))
    rvq = ResidualVectorQuantizer(4, 8, levels=2)
    with pytest.raises(ValueError, match="between 1 and 2 levels"):
        rvq.decode(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="'n_levels'"):
        rvq.decode(torch.zeros(1, 2, 5, dtype=torch.long), n_levels=3)


def test_a_one_process_group_gives_the_single_process_codebook(tmp_path):
    """The all-reduce and broadcast calls run (and change nothing with one rank)."""
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")

    def train() -> VectorQuantizer:
        torch.manual_seed(0)
        vq = VectorQuantizer(DIM, 16, dead_code_threshold=0.5)
        for step in range(3):
            vq(torch.randn(4, DIM, 32) + step)
        return vq

    alone = train()
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        assert dist.is_initialized()
        grouped = train()
    finally:
        dist.destroy_process_group()
    for key, value in alone.state_dict().items():
        assert torch.equal(value, grouped.state_dict()[key]), key
    assert float(alone.cluster_size.sum()) > 0
