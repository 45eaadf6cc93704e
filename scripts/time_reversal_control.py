"""Control for classifier accuracy ("motion accuracy"): real Moving MNIST direction clips, forward and reversed.

    python scripts/time_reversal_control.py --classifier outputs/demo/divided/checkpoints/best.ckpt

A direction-d clip played backwards is a clip of the opposite direction (d + 4) mod 8 (exactly so for the project's
Moving MNIST, see ``data/moving_mnist.py``). A classifier that reads motion must therefore score the reversed clips
high against the opposite label and near 0 against the original one. The script writes the reversed clips
(lossless mp4) and two list files, then scores three sets with ``scripts/evaluate_videos.py``'s code:

* ``forward``: the real clips with their labels;
* ``reversed_vs_opposite``: reversed clips, labels (d + 4) mod 8;
* ``reversed_vs_original``: reversed clips, original labels.

Writes ``<out>/{name}.json/.md/.png`` and prints a table of the accuracies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/ is not a package

import torch
from tqdm.auto import tqdm

from data.annotations import read_list_file
from data.decoding import read_clip, video_info
from data.moving_mnist import DIRECTION_NAMES
from data.moving_mnist_build import write_mp4
from models.metrics.evaluate import evaluate_videos
from models.metrics.report import write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", required=True, help="recognition checkpoint trained on Moving MNIST direction")
    parser.add_argument("--list", type=Path, default=Path("datasets/moving_mnist_direction/test_direction.txt"),
                        help="list file of direction clips (default: %(default)s)")
    parser.add_argument("--num-clips", type=int, default=None, help="use the first N clips (default: all)")
    parser.add_argument("--out", type=Path, default=Path("outputs/controls/time_reversal"),
                        help="output folder (default: %(default)s)")
    return parser.parse_args(argv)


def write_reversed(samples: list, out: Path) -> tuple[Path, Path, Path]:
    """Write every clip reversed in time, and list files for the forward and the two reversed label sets."""
    num_directions = len(DIRECTION_NAMES)
    (out / "reversed").mkdir(parents=True, exist_ok=True)
    forward, opposite, original = [], [], []
    for i, sample in enumerate(tqdm(samples, desc="reversing clips", unit="clip")):
        info = video_info(sample.path)
        clip = read_clip(sample.path, range(info.num_frames - 1, -1, -1))  # uint8 (c t h w), last frame first
        if not torch.equal(clip[0], clip[-1]):
            raise ValueError(f"{sample.path}: expected grey frames (equal RGB channels) as Moving MNIST writes them")
        name = f"reversed/{i:05d}.mp4"
        write_mp4(out / name, clip[0].numpy(), fps=max(1, round(info.fps)))
        forward.append(f"{Path(sample.path).resolve()} {sample.label}")
        opposite.append(f"{name} {(sample.label + num_directions // 2) % num_directions}")
        original.append(f"{name} {sample.label}")
    paths = out / "forward.txt", out / "reversed_vs_opposite.txt", out / "reversed_vs_original.txt"
    for path, lines in zip(paths, (forward, opposite, original)):
        path.write_text("\n".join(lines) + "\n")
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples = read_list_file(args.list, root=args.list.parent)[: args.num_clips]
    lists = write_reversed(samples, args.out)
    rows = []
    for path in lists:
        result = evaluate_videos(path, classifier=args.classifier, groups=["accuracy"])
        write_report(result, args.out / f"{path.stem}.json")
        key = next(k for k in result.metrics if k.startswith("classifier_accuracy"))
        rows.append((path.stem, result.metrics[key]))
    print(f"\n{len(samples)} clips from {args.list}, classifier {args.classifier}\n")
    print("| set | classifier_accuracy |\n|---|---|")
    for name, accuracy in rows:
        print(f"| {name} | {accuracy:.1%} |")


if __name__ == "__main__":
    main()
