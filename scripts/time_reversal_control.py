"""Controls for the motion metrics: real Moving MNIST direction clips, forward, reversed and frozen.

    python scripts/time_reversal_control.py --classifier outputs/demo/divided/checkpoints/best.ckpt

A direction-d clip played backwards is a clip of the opposite direction (d + 4) mod 8 (exactly so for the project's
Moving MNIST, see ``data/moving_mnist.py``). A classifier that reads motion must therefore score the reversed clips
high against the opposite label and near 0 against the original one; so must ``flow_direction_accuracy``, which
has no learned weights. A frozen clip (the first frame repeated) has no motion and must score low on both. The script
writes the reversed and frozen clips (lossless mp4), list files and the dataset's class names, then scores four sets
with ``scripts/evaluate_videos.py``'s code:

* ``forward``: the real clips with their labels;
* ``reversed_vs_opposite``: reversed clips, labels (d + 4) mod 8;
* ``reversed_vs_original``: reversed clips, original labels;
* ``frozen``: the first frame repeated, original labels.

Writes ``<out>/{name}.json/.md/.png`` and prints a table of both accuracies.
"""

from __future__ import annotations

import argparse
from pathlib import Path


import torch
from tqdm.auto import tqdm

from data.annotations import find_class_names, read_list_file, write_class_names
from data.decoding import read_clip, video_info
from data.moving_mnist import DIRECTION_NAMES
from data.video_writer import write_mp4
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


def write_controls(samples: list, out: Path) -> tuple[Path, Path, Path, Path]:
    """Write every clip reversed in time and frozen, and list files for the four labelled sets."""
    num_directions = len(DIRECTION_NAMES)
    (out / "reversed").mkdir(parents=True, exist_ok=True)
    (out / "frozen").mkdir(parents=True, exist_ok=True)
    forward, opposite, original, frozen = [], [], [], []
    for i, sample in enumerate(tqdm(samples, desc="reversing clips", unit="clip")):
        info = video_info(sample.path)
        clip = read_clip(sample.path, range(info.num_frames - 1, -1, -1))  # uint8 (c t h w), last frame first
        if not torch.equal(clip[0], clip[-1]):
            raise ValueError(f"{sample.path}: expected grey frames (equal RGB channels) as Moving MNIST writes them")
        name = f"reversed/{i:05d}.mp4"
        write_mp4(out / name, clip[0].numpy(), fps=max(1, round(info.fps)))
        still = clip[0, -1:].expand(info.num_frames, -1, -1).contiguous()  # (t h w): the first frame repeated
        write_mp4(out / f"frozen/{i:05d}.mp4", still.numpy(), fps=max(1, round(info.fps)))
        frozen.append(f"frozen/{i:05d}.mp4 {sample.label}")
        forward.append(f"{Path(sample.path).resolve()} {sample.label}")
        opposite.append(f"{name} {(sample.label + num_directions // 2) % num_directions}")
        original.append(f"{name} {sample.label}")
    paths = out / "forward.txt", out / "reversed_vs_opposite.txt", out / "reversed_vs_original.txt", out / "frozen.txt"
    for path, lines in zip(paths, (forward, opposite, original, frozen)):
        path.write_text("\n".join(lines) + "\n")
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples = read_list_file(args.list, root=args.list.parent)[: args.num_clips]
    lists = write_controls(samples, args.out)
    names = find_class_names(args.list)
    if names is None:
        raise FileNotFoundError(f"no class names beside {args.list} (classes.txt or classes_<task>.txt)")
    write_class_names(args.out, names)  # flow_direction_accuracy reads the angles here
    rows = []
    for path in lists:
        result = evaluate_videos(path, classifier=args.classifier, groups=["accuracy"])
        write_report(result, args.out / f"{path.stem}.json")
        key = next(k for k in result.metrics if k.startswith("classifier_accuracy"))
        rows.append((path.stem, result.metrics[key], result.metrics["flow_direction_accuracy"]))
    print(f"\n{len(samples)} clips from {args.list}, classifier {args.classifier}\n")
    print("| set | classifier_accuracy | flow_direction_accuracy |\n|---|---|---|")
    for name, accuracy, flow in rows:
        print(f"| {name} | {accuracy:.1%} | {flow:.1%} |")


if __name__ == "__main__":
    main()
