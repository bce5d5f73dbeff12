"""Conformance checks for ``ephys.models`` components (need torch)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ephys_core.testing._common import NotApplicable, build, ensure, primary

__all__ = [
    "check_causal_gradient",
    "check_causal_perturbation",
    "check_deterministic_eval",
    "check_finite_outputs_and_gradients",
    "check_output_shape",
    "check_state_dict_roundtrip",
]


def _forward(model: Any, inputs: Any) -> Any:
    return model(inputs)


def _replace_primary(inputs: Any, new: Any) -> Any:
    if isinstance(inputs, tuple | list):
        return type(inputs)([_replace_primary(inputs[0], new), *inputs[1:]])
    if isinstance(inputs, dict):
        first = next(iter(inputs))
        return {**inputs, first: _replace_primary(inputs[first], new)}
    return new


def _close(a: Any, b: Any, atol: float = 1e-5) -> bool:
    import torch

    a, b = primary(a), primary(b)
    if a.dtype.is_floating_point:
        return bool(torch.allclose(a.float(), b.float(), atol=atol, rtol=1e-4))
    return bool(torch.equal(a, b))


def check_output_shape(component: type, workdir: Path) -> None:
    """The primary output has the shape ``output_shape`` declares, batch first."""
    import torch

    model = build(component).eval()
    inputs = model.example_input(batch_size=2)
    with torch.no_grad():
        out = primary(_forward(model, inputs))
    expected = tuple(model.output_shape(inputs))
    ensure(tuple(out.shape) == expected, f"output shape {tuple(out.shape)} != declared {expected}")
    ensure(out.shape[0] == primary(inputs).shape[0], "output batch size differs from input's")


def check_finite_outputs_and_gradients(component: type, workdir: Path) -> None:
    """Outputs are finite; a backward pass gives finite gradients to every trainable parameter."""
    import torch

    model = build(component).train()
    out = primary(_forward(model, model.example_input(batch_size=2)))
    ensure(bool(torch.isfinite(out).all()), "output contains NaN or Inf")
    out.float().square().mean().backward()
    missing, bad = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.grad is None:
            missing.append(name)
        elif not torch.isfinite(param.grad).all():
            bad.append(name)
    ensure(not bad, f"non-finite gradients: {', '.join(bad)}")
    ensure(not missing, f"parameters that receive no gradient: {', '.join(missing[:10])}")


def _time_axes(model: Any, inputs: Any, out: Any) -> tuple[int, int]:
    x = primary(inputs)
    return (
        getattr(model, "input_time_axis", -1) % x.ndim,
        getattr(model, "output_time_axis", -2) % out.ndim,
    )


def _perturb_future(x: Any, axis: int, t: int, seed: int = 1) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    future = x.narrow(axis, t, x.shape[axis] - t)
    if x.dtype.is_floating_point:
        noise = torch.randn(future.shape, generator=gen, dtype=x.dtype) * (x.std() + 1.0)
        replacement = future + noise
    else:  # shuffle existing token values, so they stay inside the vocabulary
        flat = x.flatten()
        idx = torch.randint(0, flat.numel(), future.shape, generator=gen)
        replacement = flat[idx]
    y = x.clone()
    y.narrow(axis, t, x.shape[axis] - t).copy_(replacement)
    return y


def check_causal_perturbation(component: type, workdir: Path) -> None:
    """Changing inputs at times >= t leaves outputs at times < t unchanged."""
    import torch

    if not component.causal:
        raise NotApplicable("the model is not causal")
    model = build(component).eval()
    inputs = model.example_input(batch_size=2)
    with torch.no_grad():
        out = primary(_forward(model, inputs))
        in_axis, out_axis = _time_axes(model, inputs, out)
        n_times = primary(inputs).shape[in_axis]
        for t in sorted({1, n_times // 2, n_times - 1}):
            changed = _replace_primary(inputs, _perturb_future(primary(inputs), in_axis, t))
            out2 = primary(_forward(model, changed))
            past, past2 = out.narrow(out_axis, 0, t), out2.narrow(out_axis, 0, t)
            ensure(
                _close(past, past2),
                f"output before t={t} changed when inputs from t={t} on were perturbed "
                f"(max difference {(past.float() - past2.float()).abs().max().item():.3g})",
            )


def check_causal_gradient(component: type, workdir: Path) -> None:
    """The output at time t has zero gradient with respect to inputs after t.

    For token inputs the gradient is taken with respect to the outputs of the embeddings that
    consume them.
    """
    import torch

    if not component.causal:
        raise NotApplicable("the model is not causal")
    model = build(component).eval()
    inputs = model.example_input(batch_size=2)
    x = primary(inputs)
    probes: list[Any] = []
    handles = []
    if x.dtype.is_floating_point:
        x = x.clone().requires_grad_(True)
        inputs = _replace_primary(inputs, x)
        probes.append((x, None))
    else:

        def capture(module: Any, args: Any, output: Any) -> None:
            if args and getattr(args[0], "shape", None) == x.shape and output.requires_grad:
                output.retain_grad()
                probes.append((output, module))

        for module in model.modules():
            if isinstance(module, torch.nn.Embedding):
                handles.append(module.register_forward_hook(capture))
    try:
        out = primary(_forward(model, inputs))
    finally:
        for handle in handles:
            handle.remove()
    ensure(bool(probes), "cannot probe gradients: no nn.Embedding consumes the token input")
    in_axis, out_axis = _time_axes(model, inputs, out)
    n_times = x.shape[in_axis]
    for t in sorted({0, n_times // 2, n_times - 2}):
        if t < 0:
            continue
        grads = torch.autograd.grad(
            out.select(out_axis, t).float().sum(),
            [p for p, _ in probes],
            retain_graph=True,
            allow_unused=True,
        )
        for grad in grads:
            if grad is None:
                continue
            leak = grad.narrow(in_axis, t + 1, n_times - t - 1).abs().max().item()
            ensure(leak == 0.0, f"output at t={t} has gradient {leak:.3g} from inputs after t")


def check_state_dict_roundtrip(component: type, workdir: Path) -> None:
    """Weights saved and loaded (``weights_only=True``) reproduce the outputs exactly."""
    import torch

    source = build(component, seed=0).eval()
    target = build(component, seed=1).eval()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    target.load_state_dict(torch.load(buffer, weights_only=True))
    inputs = source.example_input(batch_size=2)
    with torch.no_grad():
        ensure(
            _close(_forward(source, inputs), _forward(target, inputs), atol=0),
            "outputs differ after a state_dict round trip",
        )


def check_deterministic_eval(component: type, workdir: Path) -> None:
    """In eval mode, the same input gives the same output twice."""
    import torch

    model = build(component).eval()
    inputs = model.example_input(batch_size=2)
    with torch.no_grad():
        ensure(
            _close(_forward(model, inputs), _forward(model, inputs), atol=0),
            "eval-mode outputs differ between two identical calls",
        )
