"""Metrics that read a learned network, given as a plain callable: classifier accuracy, and the conventions every
network callable of :mod:`models.metrics` follows.

The metric library never loads a training run: it takes callables. A run of this framework becomes one through the
adapter :func:`models.recognition.scoring.classifier_from_run` (which imports the model families); anything else
(a TorchScript module, a Hugging Face model wrapped in a function, a lambda in a test) works the same way.

**A clip classifier** (:class:`ClipClassifier`) maps a batch of clips to logits::

    classify(video: float32 (b c t h w) in [0, 1], c = 1 or 3, any t, h, w) -> float (b k) logits

It does its own preprocessing (frame choice, resizing, normalisation): the metrics hand it the clips exactly as they
were decoded. Optional attributes, read with ``getattr`` where a metric can use them:

* ``name`` (str): the tag of the report keys, e.g. ``classifier_accuracy[<name>]`` (default: :func:`network_name`);
* ``num_classes`` (int), ``class_names`` (list[str] | None): its classes, checked against the videos' labels;
* ``num_frames`` (int): frames per clip it was trained on; 1 marks a per-frame reader
  (:mod:`models.metrics.identity`);
* ``protocol`` (dict): what fixes its numbers (checkpoint, sizes, normalisation), written into reports;
* ``features`` (callable ``(b c t h w) -> (b d)``) and ``feature_protocol`` (dict): pre-logit features, used for
  ``fvd[<name>]`` (:mod:`models.metrics.fvd`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ClipClassifier(Protocol):
    """A clip classifier: ``(b c t h w)`` float32 clips in [0, 1] to ``(b k)`` logits (see the module docstring)."""

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        ...


def network_name(network: Any, default: str = "network") -> str:
    """The name a network callable goes by in report keys.

    Its ``name`` attribute, else its ``__name__`` (a function's name; not ``<lambda>``), else its class name in lower
    case (or ``default`` for a lambda).

    >>> network_name(lambda video: video)
    'network'
    """
    name = getattr(network, "name", None)
    if isinstance(name, str) and name:
        return name
    name = getattr(network, "__name__", None)
    if isinstance(name, str) and name and name != "<lambda>":
        return name
    return default if name == "<lambda>" else type(network).__name__.lower()


def network_source(network: Any) -> str:
    """Where a network's weights come from: ``protocol["checkpoint"]`` when it has one, else
    :func:`network_name`."""
    protocol = getattr(network, "protocol", None)
    if isinstance(protocol, dict) and protocol.get("checkpoint"):
        return str(protocol["checkpoint"])
    return network_name(network)


def check_labels(labels: Any, num_clips: int, num_classes: int, name: str = "the classifier") -> torch.Tensor:
    """Integer labels ``(num_clips,)`` in ``[0, num_classes)``, as an int64 CPU tensor.

    Raises:
        ValueError: not integers, the wrong shape, or a label out of range (the first one is named).
    """
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.shape != (num_clips,):
        raise ValueError(f"labels must be integers of shape ({num_clips},), got dtype={labels.dtype} "
                         f"shape={tuple(labels.shape)}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        index = int(bad.nonzero()[0])
        raise ValueError(f"labels[{index}]={int(labels[index])} is out of range [0, num_classes={num_classes}) "
                         f"of {name}")
    return labels.cpu().long()


@torch.no_grad()
def predictions(classify: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor) -> torch.Tensor:
    """The arg-max class of every clip: int64 ``(b,)`` on the CPU.

    Args:
        classify: a :class:`ClipClassifier`.
        video: float32 (b c t h w) in [0, 1], as ``classify`` takes it (it checks the video).

    Raises:
        ValueError: ``classify`` returned something other than ``(b k)`` logits.
    """
    logits = classify(video)
    if logits.ndim != 2 or logits.shape[0] != video.shape[0]:
        raise ValueError(f"{network_name(classify)} returned shape {tuple(logits.shape)}; expected logits "
                         f"({video.shape[0]}, k)")
    return logits.argmax(dim=-1).cpu()


def count_correct(classify: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor, labels: torch.Tensor) -> int:
    """Number of clips whose arg-max logit equals the label.

    Args:
        classify: a :class:`ClipClassifier`; its ``num_classes`` (else the logits' width) bounds the labels.
        video: float32 (b c t h w) in [0, 1].
        labels: integer (b,) in [0, num_classes).

    Raises:
        ValueError: bad labels (see :func:`check_labels`) or a bad video.
    """
    logits = classify(video)  # checks the video first
    num_classes = int(getattr(classify, "num_classes", logits.shape[-1]))
    wanted = check_labels(labels, video.shape[0], num_classes, network_name(classify))
    return int((logits.argmax(dim=-1).cpu() == wanted).sum())


def classifier_accuracy(classify: Callable[[torch.Tensor], torch.Tensor], video: torch.Tensor,
                        labels: torch.Tensor) -> float:
    """Top-1 accuracy of a classifier on clips: the fraction in [0, 1] whose arg-max equals the label.

    Higher is better. For generated clips this measures whether the generator produced the class it was asked for
    ("classifier accuracy" of conditional video generation), as judged by ``classify``.

    Args:
        classify: a :class:`ClipClassifier` (float32 (b c t h w) in [0, 1] -> (b k) logits).
        video: float32 (b c t h w) in [0, 1].
        labels: integer (b,) in [0, num_classes).

    Raises:
        ValueError: bad labels or a bad video.
    """
    return count_correct(classify, video, labels) / video.shape[0]


def batched_classifier_accuracy(classify: Callable[[torch.Tensor], torch.Tensor],
                                batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy over a stream of ``(video, labels)`` batches, e.g. :func:`models.metrics.video_set.iter_batches`.

    Every clip counts once: ``Σ correct / Σ clips``, whatever the batch sizes.

    Args:
        classify: a :class:`ClipClassifier`.
        batches: pairs of float32 (b c t h w) in [0, 1] and integer (b,) labels.

    Raises:
        ValueError: no clips, unlabelled batches (labels None), or bad labels / videos.
    """
    correct = total = 0
    for video, labels in batches:
        if labels is None:
            raise ValueError("classifier accuracy needs labelled clips, got labels=None")
        correct += count_correct(classify, video, labels)
        total += video.shape[0]
    if total == 0:
        raise ValueError("no clips were given")
    return correct / total


__all__ = ["ClipClassifier", "batched_classifier_accuracy", "check_labels", "classifier_accuracy", "count_correct",
           "network_name", "network_source", "predictions"]
