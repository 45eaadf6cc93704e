"""Conditioning labels of one or several label sets ("a 7 moving NE"), in pure torch.

A denoiser is conditioned either on one label set, as DiT (labels: int64 ``(b,)``), or on several at once
(labels: ``{set name: int64 (b,)}``, e.g. ``{"digit": ..., "direction": ...}``), each set with its own embedding
table whose rows are summed into the conditioning vector (as DiT adds the timestep and class embeddings). Every set
has a null label (its class count) for classifier-free guidance (Ho & Salimans 2022), dropped independently per set
in training, so the model also learns each set alone.

These helpers treat both forms alike, so the training step and the sampler do not branch on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import torch

Labels = Union[torch.Tensor, dict[str, torch.Tensor]]
NullLabel = Union[int, Mapping[str, int]]


def batch_size_of(labels: Labels) -> int:
    """The batch size b of labels ``(b,)`` or of a dict of them.

    Raises:
        ValueError: an empty dict, or sets of different lengths.
    """
    if torch.is_tensor(labels):
        return int(labels.shape[0])
    sizes = {name: int(value.shape[0]) for name, value in labels.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"label sets of different batch sizes: {sizes}")
    return next(iter(sizes.values()))


def null_like(labels: Labels, null_label: NullLabel) -> Labels:
    """Labels of the same structure, every entry the null label of its set (int64, same device)."""
    if torch.is_tensor(labels):
        return torch.full_like(labels, int(null_label))
    return {name: torch.full_like(value, int(null_label[name])) for name, value in labels.items()}


def concat(first: Labels, second: Labels) -> Labels:
    """Concatenate two label batches of the same structure along the batch axis."""
    if torch.is_tensor(first):
        return torch.cat([first, second])
    return {name: torch.cat([first[name], second[name]]) for name in first}


def select(labels: Labels, index: slice | torch.Tensor) -> Labels:
    """The labels of the clips ``index`` picks (a slice or an index tensor along the batch axis)."""
    if torch.is_tensor(labels):
        return labels[index]
    return {name: value[index] for name, value in labels.items()}


def to_device(labels: Labels | None, device: torch.device | str) -> Labels | None:
    """Move labels (or None) to ``device``."""
    if labels is None or torch.is_tensor(labels):
        return None if labels is None else labels.to(device)
    return {name: value.to(device) for name, value in labels.items()}


def drop(labels: Labels, null_label: NullLabel, probability: float | Mapping[str, float],
         generator: torch.Generator | None = None) -> Labels:
    """Classifier-free guidance training: replace each label by its set's null label with the set's probability.

    Args:
        labels: int64 ``(b,)`` or a dict of them.
        null_label: the null label (int) or one per set.
        probability: in [0, 1), one for all sets or one per set (a missing set is never dropped).
        generator: a CPU generator for the draws (default: the global one, whose state checkpoints save).

    Returns:
        Labels of the same structure; each set is dropped independently.
    """
    def _drop(value: torch.Tensor, null: int, p: float) -> torch.Tensor:
        if p <= 0:
            return value
        mask = (torch.rand(value.shape[0], generator=generator) < p).to(value.device)
        return torch.where(mask, torch.full_like(value, null), value)

    if torch.is_tensor(labels):
        p = probability if not isinstance(probability, Mapping) else max(probability.values(), default=0.0)
        return _drop(labels, int(null_label), float(p))
    return {name: _drop(value, int(null_label[name]),
                        float(probability.get(name, 0.0) if isinstance(probability, Mapping) else probability))
            for name, value in labels.items()}


def balanced_grid(num_classes: Mapping[str, int], count: int) -> dict[str, list[int]]:
    """Label combinations for ``count`` samples, every combination of the sets equally often, balanced per set.

    Each round covers the whole product of the sets once (e.g. 10 digits × 8 directions = 80 combinations); inside a
    round, the next combination is the unused one whose labels have been drawn least so far (ties in product order).
    So ``count`` = 256 over (10, 8) gives every combination 3 or 4 times, every direction 32 times and every digit 25
    or 26 times, and any prefix is as balanced as its length allows.

    Args:
        num_classes: class count of each set, in the order the sets are named.
        count: number of samples (>= 1).

    Returns:
        ``{set: [label of sample i]}``, each list of length ``count``.

    Raises:
        ValueError: ``count`` < 1, no sets, or a class count < 1.
    """
    if count < 1 or not num_classes or min(num_classes.values()) < 1:
        raise ValueError(f"balanced_grid needs count >= 1 and class counts >= 1; got count={count}, {dict(num_classes)}")
    names = list(num_classes)
    product = torch.cartesian_prod(*[torch.arange(int(num_classes[n])) for n in names]).reshape(-1, len(names))
    drawn = {name: torch.zeros(int(num_classes[name]), dtype=torch.long) for name in names}
    out: dict[str, list[int]] = {name: [] for name in names}
    unused = torch.ones(len(product), dtype=torch.bool)
    for _ in range(count):
        if not unused.any():
            unused[:] = True
        # the least-drawn labels first: the sum over sets of how often each label was drawn, among unused combos
        load = sum(drawn[name][product[:, k]] for k, name in enumerate(names))
        load = torch.where(unused, load, torch.iinfo(torch.long).max)
        pick = int(torch.argmin(load))  # first minimum: product order breaks ties
        unused[pick] = False
        for k, name in enumerate(names):
            label = int(product[pick, k])
            drawn[name][label] += 1
            out[name].append(label)
    return out


def parse_request(request: Mapping[str, str | int], class_names: Mapping[str, Sequence[str] | None],
                  num_classes: Mapping[str, int]) -> dict[str, int]:
    """Turn a user's label request (``{"digit": "7", "direction": "NE"}``) into class indices.

    A value is a class name of its set (``NE``) or an index (``7``); a set left out gets its null label
    (unconditional for that set).

    Raises:
        ValueError: a set the model is not conditioned on, or a value that is neither a name nor an index in range;
            the message names the set, the value and the choices.
    """
    unknown = set(request) - set(num_classes)
    if unknown:
        raise ValueError(f"label sets {sorted(unknown)} are not among the model's conditioning {list(num_classes)}")
    out = {}
    for name, size in num_classes.items():
        if name not in request:
            out[name] = int(size)  # the null label
            continue
        value = str(request[name])
        names = list(class_names.get(name) or [])
        if value in names:
            out[name] = names.index(value)
        elif value.lstrip("-").isdigit() and 0 <= int(value) < size:
            out[name] = int(value)
        else:
            choices = names or list(range(size))
            raise ValueError(f"{name}={value!r} is not a class of the set {name!r}: choose from {choices}")
    return out


__all__ = ["Labels", "balanced_grid", "batch_size_of", "concat", "drop", "null_like", "parse_request", "to_device"]
