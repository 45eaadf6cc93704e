"""Render a Moving MNIST dataset from real MNIST digits into a folder of lossless mp4 clips.

Example:
    python scripts/make_moving_mnist.py --out datasets/moving_mnist_direction --variant direction
    python scripts/make_moving_mnist.py --out datasets/moving_mnist_standard --variant standard

The logic lives in ``data.moving_mnist_build.build_dataset``; see its docstring for the layout written. Re-running with
the same arguments finishes an interrupted build or does nothing; different arguments into the same folder fail.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from data.moving_mnist import VARIANTS
from data.moving_mnist_build import build_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to create or complete")
    parser.add_argument("--variant", choices=VARIANTS, default="direction", help="default: %(default)s")
    parser.add_argument("--num-train", type=int, default=6000, help="train clips (default: %(default)s)")
    parser.add_argument("--num-val", type=int, default=500, help="validation clips (default: %(default)s)")
    parser.add_argument("--num-test", type=int, default=1000, help="test clips (default: %(default)s)")
    parser.add_argument(
        "--num-frames", type=int, default=None, help="frames per clip (default: 8 direction, 20 standard)"
    )
    parser.add_argument("--speed", type=float, default=3.0, help="pixels per frame (default: %(default)s)")
    parser.add_argument("--fps", type=int, default=8, help="frames per second stored (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--workers", type=int, default=1, help="encoding processes (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Build the dataset described by the command line."""
    args = parse_args(argv)
    try:
        build_dataset(
            args.out,
            variant=args.variant,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            num_frames=args.num_frames,
            speed=args.speed,
            fps=args.fps,
            seed=args.seed,
            workers=args.workers,
        )
    except ValueError as error:  # bad arguments or a folder of another configuration: a message, not a traceback
        sys.exit(f"make_moving_mnist.py: error: {error}")


if __name__ == "__main__":
    main()
