"""What an output of a model reads: gradients of its outputs at an embedding layer's output,
and the sequence lengths a backbone is called with."""

from __future__ import annotations


def embedding_gradients(model, table, inputs):
    """Run ``model(inputs)`` keeping the output of the embedding module ``table``.

    Returns the model's output and ``grad_of(value)``: the gradient of the scalar ``value``
    (computed from that output) at the embeddings, shaped like them, the graph kept for
    further calls."""
    seen = {}

    def keep(module, args, output):
        output.retain_grad()
        seen["embeds"] = output
        return output

    handle = table.register_forward_hook(keep)
    try:
        out = model(inputs)
    finally:
        handle.remove()

    def grad_of(value):
        seen["embeds"].grad = None
        value.backward(retain_graph=True)
        return seen["embeds"].grad

    return out, grad_of


def backbone_lengths(model, inputs):
    """``model(inputs)`` and the sequence length of each call of ``model.backbone``."""
    lengths = []
    handle = model.backbone.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["inputs_embeds"].shape[1]),
        with_kwargs=True,
    )
    try:
        out = model(inputs)
    finally:
        handle.remove()
    return out, lengths
