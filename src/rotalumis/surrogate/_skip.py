"""Skip inputs: recent values read by the value heads directly, beside the LSTM state.

A head reads the history through the LSTM state, a bounded, saturating summary. A value that
is a simple function of a recent one (an observation ``Normal(mu, 1)`` of a tagged ``mu``, a
value computed from the last two draws) is then learned only approximately, worst in the
tails, where the state saturates. With skip inputs (``SurrogateConfig.skip_values``,
``skip_tags``) every head also reads

* the values of the ``skip_values`` most recent sites, and
* the values of the ``skip_tags`` most recent tags,

each as ``skip_width`` numbers — the site's standardised value (its head's features:
``(x - loc) / scale`` in the reference location and scale, the unconstrained value of a flow
head, clipped to ±10; a category's index over the largest one), a vector's first
``skip_width`` elements, a scalar padded with zeros — and a presence flag (0, with zeros,
where the history holds fewer such sites). So a head can follow a recent value linearly
instead of through the state, as the inference network's heads read the observations
(:mod:`rotalumis.nn.network`).

The same inputs are built for a batch of training sequences (:func:`history_inputs`) and
step by step while a surrogate runs (:func:`push`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

__all__ = ["history_inputs", "push", "skip_size"]


def skip_size(config: Any) -> int:
    """Width of the skip inputs of a :class:`~.network.SurrogateConfig` (0: none)."""
    slots = int(config.skip_values) + int(config.skip_tags)
    return slots * (int(config.skip_width) + 1)


def history_inputs(
    features: torch.Tensor, present: torch.Tensor, is_tag: torch.Tensor, config: Any
) -> torch.Tensor:
    """The skip inputs of every position of padded sequences.

    Args:
        features: ``(b, t, skip_width)``: at each position the features of the site visited
            there (zeros where none).
        present: ``(b, t)``: whether a site was visited there.
        is_tag: ``(b, t)``: whether it was a tag.
        config: The :class:`~.network.SurrogateConfig`.

    Returns:
        ``(b, t, skip_size)``: at each position, the inputs of the sites visited before it.
    """
    b, t, _ = features.shape
    flag = present.to(features.dtype).unsqueeze(-1)
    slots = torch.cat([features * flag, flag], -1)  # (b, t, s)
    s = slots.shape[-1]
    out = [F.pad(slots, (0, 0, k, 0))[:, :t] for k in range(1, config.skip_values + 1)]
    if config.skip_tags:
        pos = torch.arange(t, device=features.device).expand(b, t)
        marked = torch.where(is_tag & present, pos, torch.full_like(pos, -1))
        # the latest tag strictly before each position (-1: none)
        before = F.pad(torch.cummax(marked, 1).values, (1, 0), value=-1)[:, :t]
        padded = torch.cat([slots.new_zeros(b, 1, s), slots], 1)  # index -1 -> zeros
        idx = before
        for _ in range(config.skip_tags):
            out.append(padded.gather(1, (idx + 1).unsqueeze(-1).expand(-1, -1, s)))
            idx = torch.where(idx >= 0, before.gather(1, idx.clamp(min=0)), idx)
    if not out:
        return features.new_zeros(b, t, 0)
    return torch.cat(out, -1)


def push(inputs: torch.Tensor, features: torch.Tensor, is_tag: bool, config: Any) -> torch.Tensor:
    """The skip inputs ``(n, skip_size)`` after visits with ``features`` ``(n, skip_width)``
    of rows whose inputs were ``inputs`` (the same layout as :func:`history_inputs`)."""
    s = config.skip_width + 1
    new = torch.cat([features.to(inputs.dtype), inputs.new_ones(len(inputs), 1)], 1)
    nv = config.skip_values * s
    values, tags = inputs[:, :nv], inputs[:, nv:]
    if nv:
        values = torch.cat([new, values[:, : nv - s]], 1)
    if is_tag and config.skip_tags:
        tags = torch.cat([new, tags[:, : tags.shape[1] - s]], 1)
    return torch.cat([values, tags], 1)
