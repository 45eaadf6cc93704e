"""What a video of independent frames would score: the identity bound an image stage sets for its video stage.

A clip of ``--frames`` frames, each drawn independently by an image model asked for digit d, shows d in every frame
with probability p_d^frames, where p_d is the share of the image model's samples of d that the per-frame digit
classifier reads as d. Averaged over the digits (the samples are a balanced grid), that is the share of clips that
keep the requested digit in every frame if the frames were not tied together at all; ``identity_consistency`` (one
digit in all frames, right or wrong) is at least that. A video stage that keeps one digit in fewer clips than this
loses shape per frame; one above it ties its frames together.

    python scripts/independent_frames.py outputs/gen/image_5k/guidance_4 --frames 8

Reads ``DIR/samples_metrics.json`` (``scripts/evaluate_videos.py`` with ``--digit-classifier``) and
``DIR/samples/samples.txt`` (``path digit`` lines); prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

DIGIT_KEY = "digit_accuracy[frameclassifier:frame_digit]"


def independent_frames_bound(per_image: np.ndarray, digits: np.ndarray, frames: int) -> dict[str, float]:
    """mean over digits of p_d ** frames.

    Args:
        per_image: (n,) 0/1 (or a share in [0, 1]) per image: the requested digit was read.
        digits: (n,) int, the requested digit of each image.
        frames: clip length (frames), >= 1.

    Returns:
        ``{"digit_accuracy": mean p, "all_frames_requested_digit": mean_d p_d ** frames}``, both in [0, 1].

    Raises:
        ValueError: shapes differ, ``frames`` < 1, or no images.
    """
    if per_image.shape != digits.shape or per_image.size == 0 or frames < 1:
        raise ValueError(f"need matching non-empty per-image scores and digits and frames >= 1; got "
                         f"{per_image.shape}, {digits.shape}, frames={frames}")
    shares = np.array([per_image[digits == d].mean() for d in np.unique(digits)])  # p_d per requested digit
    return {"digit_accuracy": float(per_image.mean()), "all_frames_requested_digit": float((shares**frames).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a guidance folder with samples_metrics.json and samples/samples.txt")
    parser.add_argument("--frames", type=int, default=8, help="clip length (default: %(default)s)")
    args = parser.parse_args(argv)
    report_path, labels_path = args.dir / "samples_metrics.json", args.dir / "samples" / "samples.txt"
    for path in (report_path, labels_path):
        if not path.is_file():
            parser.error(f"{path} not found: run scripts/guidance_sweep.sh (or evaluate_videos.py) first")
    per_clip = json.loads(report_path.read_text())["per_clip"]
    if DIGIT_KEY not in per_clip:
        parser.error(f"{report_path} has no {DIGIT_KEY}: score it with --digit-classifier")
    per_image = np.asarray(per_clip[DIGIT_KEY], dtype=float)
    digits = np.array([int(line.split()[1]) for line in labels_path.read_text().splitlines() if line.strip()])
    result = independent_frames_bound(per_image, digits, args.frames)
    print(json.dumps({"frames": args.frames, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
