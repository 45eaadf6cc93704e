"""Identity consistency: does a clip keep showing the same digit from frame to frame?

Flicker and warp error reward a frozen clip; they cannot tell a slide show that keeps its digit from one whose digit
changes shape into another. A per-frame digit classifier can: a *per-frame reader*, any callable

    read(frames: float32 (n c 1 h w) in [0, 1], c = 1 or 3, any h and w) -> float (n k) logits

that classifies each one-frame clip alone and prepares it itself (:class:`models.metrics.learned.ClipClassifier`, fed
one frame per clip). A recognition run of this framework trained on one frame per clip (``data.num_frames=1``, e.g.
``experiment=mmnist_frame_digit``) becomes one through :func:`models.recognition.scoring.classifier_from_run`. Every
frame of a clip is classified alone, and:

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

from collections.abc import Callable, Sequence

import torch
from einops import rearrange

from models.metrics.checks import check_video
from models.metrics.learned import network_name

FrameReader = Callable[[torch.Tensor], torch.Tensor]  # float32 (n c 1 h w) in [0, 1] -> (n k) logits


def check_per_frame(read: FrameReader) -> None:
    """Raise ``ValueError`` unless ``read`` classifies single frames: its ``num_frames`` attribute, when it has one,
    must be 1 (a run trained with ``data.num_frames=1``)."""
    num_frames = getattr(read, "num_frames", 1)
    if num_frames != 1:
        raise ValueError(f"{network_name(read)} takes clips of {num_frames} frames; identity consistency needs a "
                         "per-frame classifier, trained with data.num_frames=1 (e.g. train.py "
                         "experiment=mmnist_frame_digit)")


@torch.no_grad()
def frame_predictions(read: FrameReader, video: torch.Tensor) -> torch.Tensor:
    """The arg-max class of every frame, each frame classified alone (one call on all ``b·t`` one-frame clips).

    Args:
        read: a per-frame reader (module docstring; see :func:`check_per_frame`).
        video: float32 (b c t h w) in [0, 1], c = 1 or 3 (or what ``read`` accepts).

    Returns:
        int64 (b t) class indices, on the CPU.

    Raises:
        TypeError, ValueError: ``read`` is not a per-frame reader, a bad video (:func:`check_video`), or ``read``
            did not return ``(b·t, k)`` logits.
    """
    check_per_frame(read)
    check_video(video)
    frames = rearrange(video, "b c t h w -> (b t) c 1 h w")
    logits = read(frames)
    if logits.ndim != 2 or logits.shape[0] != frames.shape[0]:
        raise ValueError(f"{network_name(read)} returned shape {tuple(logits.shape)}; expected logits "
                         f"({frames.shape[0]}, k)")
    return rearrange(logits.argmax(dim=-1), "(b t) -> b t", b=video.shape[0]).cpu()


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


def digit_accuracy(predictions: torch.Tensor, labels: torch.Tensor, cuts: Sequence[int] = (),
                   per_frame: bool = False) -> torch.Tensor:
    """Per clip, the fraction of the first segment's frames whose predicted class is the label.

    Args:
        predictions: int (b t) class index per frame.
        labels: int (b,) class of the first segment.
        cuts: as :func:`identity_consistency`.
        per_frame: return each frame's hit (1 or 0) instead of the clip's fraction, so that the mean over clips
            shows where in the clip the digit is lost.

    Returns:
        float64 (b,) in [0, 1], or with ``per_frame`` float64 (b k) in {0, 1}, k the first segment's length.
    """
    start, stop = segments_of(predictions.shape[1], cuts)[0]
    hits = (predictions[:, start:stop] == labels.to(predictions.device)[:, None]).double()  # (b k)
    return hits if per_frame else hits.mean(dim=1)


__all__ = ["check_per_frame", "digit_accuracy", "frame_predictions", "identity_consistency", "segments_of"]
