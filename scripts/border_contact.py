"""How many clips reach the canvas border, and how often those keep one digit: where a factorized clip starts.

Moving MNIST ``direction`` clips almost never reach the border: ``data.moving_mnist.direction_trajectory`` keeps a
digit's 28-pixel box inside the canvas for the whole clip, and MNIST digits have a blank margin inside their box
(with the defaults, 2 of the 1,000 test clips touch the 2-pixel band, at their last frame). So a generated clip whose
strokes reach the outer ``--margin`` pixels of some frame was, almost always, started where its motion carries the
digit off the canvas, a place no training clip starts from. Where a clip starts depends on its direction (a digit
moving east starts in the west half), which an image stage asked for the digit only cannot know.

    python scripts/border_contact.py datasets/moving_mnist_direction/test_digit.txt   # real clips
    python scripts/border_contact.py outputs/gen/digits/samples/samples.txt \\
        --metrics outputs/gen/digits/samples_metrics.json    # + identity of the clips that touch and that do not

Prints one JSON object: ``clips``, ``border_contact`` (the share of clips whose strokes reach the border in some
frame), ``first_contact_frame`` (a histogram, 0-based), and with ``--metrics`` (``scripts/evaluate_videos.py`` with
``--digit-classifier``, on the same list) ``identity_consistency`` (all clips), ``identity_touching`` and
``identity_not_touching``. ``--out`` writes the
figures as an evaluate_videos.py-style report (``{"metrics": ...}``), which ``scripts/records.py write --row`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

from models.metrics.video_set import iter_batches, load_video_set

IDENTITY_KEY = "identity_consistency[frameclassifier:frame_digit]"


def border_contact(clips: torch.Tensor, margin: int = 2, threshold: float = 0.3) -> torch.Tensor:
    """The first frame of each clip whose strokes reach the border, or -1 where none does.

    Args:
        clips: float tensor (n t h w) of grey frames in [0, 1].
        margin: width of the border band in pixels, >= 1.
        threshold: a pixel above it is a stroke.

    Returns:
        int64 tensor (n,): the 0-based index of the first frame with a stroke pixel in the band, -1 for none.

    Raises:
        ValueError: ``clips`` is not 4-D, or ``margin`` is not in [1, min(h, w) / 2].
    """
    if clips.dim() != 4:
        raise ValueError(f"clips must be (n t h w); got shape {tuple(clips.shape)}")
    height, width = clips.shape[-2:]
    if not 1 <= margin <= min(height, width) // 2:
        raise ValueError(f"margin={margin} must be in [1, {min(height, width) // 2}]")
    band = torch.ones(height, width, dtype=torch.bool)
    band[margin:-margin, margin:-margin] = False
    touching = ((clips > threshold) & band).flatten(2).any(2)  # (n t)
    first = touching.int().argmax(1)  # the first True (0 where none: fixed below)
    return torch.where(touching.any(1), first, torch.full_like(first, -1)).long()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", type=Path, help="a list file or folder of clips (as evaluate_videos.py reads)")
    parser.add_argument("--metrics", type=Path, help="evaluate_videos.py's JSON on the same list (identity split)")
    parser.add_argument("--frames", type=int, default=8, help="frames read per clip (default: %(default)s)")
    parser.add_argument("--margin", type=int, default=2, help="border band in pixels (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=0.3, help="stroke level in [0, 1] (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the figures as {'metrics': ...} JSON here")
    args = parser.parse_args(argv)
    videos = load_video_set(args.videos, num_frames=args.frames)  # names a missing, corrupt or short file
    first = torch.cat([border_contact(video.mean(1), args.margin, args.threshold)  # (b c t h w) -> grey (b t h w)
                       for video, _ in iter_batches(videos, batch_size=64)])
    touching = first >= 0
    result = {"clips": len(videos), "border_contact": touching.float().mean().item(),
              "first_contact_frame": dict(sorted(Counter(first[touching].tolist()).items()))}
    if args.metrics is not None:
        per_clip = json.loads(args.metrics.read_text())["per_clip"]
        if len(per_clip.get(IDENTITY_KEY, [])) != len(videos):
            parser.error(f"{args.metrics}: no {IDENTITY_KEY} for the {len(videos)} clips (score the same list with "
                         "evaluate_videos.py --digit-classifier)")
        identity = torch.tensor(per_clip[IDENTITY_KEY], dtype=torch.float)
        result["identity_consistency"] = identity.mean().item()
        result["identity_touching"] = identity[touching].mean().item() if touching.any() else None
        result["identity_not_touching"] = identity[~touching].mean().item() if (~touching).any() else None
    print(json.dumps(result))
    if args.out is not None:
        metrics = {key: value for key, value in result.items() if isinstance(value, (int, float))}  # not the histogram
        args.out.write_text(json.dumps({"metrics": metrics, "first_contact_frame": result["first_contact_frame"]},
                                       indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
