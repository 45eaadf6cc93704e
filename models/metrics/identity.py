"""Identity consistency: does a clip keep showing the same digit from frame to frame?

Flicker and warp error reward a frozen clip; they cannot tell a slide show that keeps its digit from one whose digit
changes shape into another. A per-frame digit classifier can. It is any recognition run of this framework trained on
one frame per clip (``data.num_frames=1``), for example ``experiment=mmnist_frame_digit``; every frame of a clip is
classified alone, and:

* ``identity_consistency``: the fraction of *segments* whose frames all get the same predicted digit. A segment is
  the whole clip, or, for a slide show cut at frames ``c_1 < c_2 < ...``, each slide ``[c_i, c_{i+1})``; a clip's
  value is the mean over its segments. Chance level for a clip of ``t`` frames predicted uniformly at random over
  ``k`` classes is ``k^(1 - t)``; a frozen clip scores 1 whatever it shows, so read it beside ``digit_accuracy``.
* ``digit_accuracy``: the fraction of frames of the *first* segment whose predicted digit is the clip's label (for
  the ``slides`` data, the label is slide 1's digit).

This is the identity check of VBench's subject consistency (Huang et al., CVPR 2024), made categorical with a
classifier of the data's own classes instead of DINO features, so that "same identity" has an exact meaning here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange

from models.metrics.recognition import RecognitionModel


def check_per_frame(model: RecognitionModel) -> None:
    """Raise ``ValueError`` unless ``model`` classifies single frames (its run had ``data.num_frames=1``)."""
    if model.num_frames != 1:
        raise ValueError(f"{model.name} takes clips of {model.num_frames} frames; identity consistency needs a per-frame "
                         "classifier, trained with data.num_frames=1 (e.g. train.py experiment=mmnist_frame_digit)")


@torch.no_grad()
def frame_predictions(model: RecognitionModel, video: torch.Tensor) -> torch.Tensor:
    """The arg-max class of every frame, each frame classified alone.

    Args:
        model: a per-frame classifier (see :func:`check_per_frame`).
        video: float (b c t h w) in [0, 1], c = 1 or the net's ``in_chans``.

    Returns:
        int64 (b t) class indices.

    Raises:
        ValueError: ``model`` is not a per-frame classifier, or a bad video.
    """
    check_per_frame(model)
    frames = rearrange(model.prepare_frames(video), "b c t h w -> (b t) c 1 h w")
    predicted = model.net(frames).argmax(dim=-1)  # ((b t),)
    return rearrange(predicted, "(b t) -> b t", b=video.shape[0]).cpu()


def segments_of(num_frames: int, cuts: Sequence[int] = ()) -> list[tuple[int, int]]:
    """Frame ranges ``[start, stop)`` between the cuts: ``segments_of(8, [4]) == [(0, 4), (4, 8)]``.

    Raises:
        ValueError: a cut is not strictly inside ``(0, num_frames)`` or the cuts are not increasing.
    """
    cuts = [int(c) for c in cuts]
    if any(not 0 < c < num_frames for c in cuts) or cuts != sorted(set(cuts)):
        raise ValueError(f"cuts={cuts} must be increasing frame indices strictly between 0 and {num_frames}")
    bounds = [0, *cuts, num_frames]
    return list(zip(bounds[:-1], bounds[1:]))


def identity_consistency(predictions: torch.Tensor, cuts: Sequence[int] = ()) -> torch.Tensor:
    """Per clip, the fraction of its segments whose frames all share one predicted class.

    Args:
        predictions: int (b t) class index per frame (:func:`frame_predictions`).
        cuts: frame indices where a new segment (slide) starts; empty: the clip is one segment.

    Returns:
        float64 (b,) in [0, 1].
    """
    per_segment = [(predictions[:, a:b] == predictions[:, a:a + 1]).all(dim=1) for a, b in
                   segments_of(predictions.shape[1], cuts)]  # each (b,)
    return torch.stack(per_segment, dim=1).double().mean(dim=1)


def digit_accuracy(predictions: torch.Tensor, labels: torch.Tensor, cuts: Sequence[int] = ()) -> torch.Tensor:
    """Per clip, the fraction of the first segment's frames whose predicted class is the label.

    Args:
        predictions: int (b t) class index per frame.
        labels: int (b,) class of the first segment.
        cuts: as :func:`identity_consistency`.

    Returns:
        float64 (b,) in [0, 1].
    """
    start, stop = segments_of(predictions.shape[1], cuts)[0]
    return (predictions[:, start:stop] == labels.to(predictions.device)[:, None]).double().mean(dim=1)


__all__ = ["check_per_frame", "digit_accuracy", "frame_predictions", "identity_consistency", "segments_of"]
