"""Score a set of videos with every applicable temporal-consistency metric.

Examples:
    # reference-free metrics of a folder of clips
    python scripts/evaluate_videos.py --videos outputs/samples/ --out outputs/samples_metrics.json
    # generated samples (list file with labels): motion accuracy by the main job's TimeSformer
    python scripts/evaluate_videos.py --videos outputs/samples/samples.txt \\
        --classifier outputs/demo/divided/checkpoints/best.ckpt --out outputs/samples_metrics.json
    # slide shows: does every slide keep one digit? (a per-frame digit classifier, slides cut at frame 4)
    python scripts/evaluate_videos.py --videos outputs/slides/samples.txt --groups temporal accuracy \
        --digit-classifier outputs/frame_digit/checkpoints/best.ckpt --cuts 4 --out outputs/slides_metrics.json
    # samples of a model asked for digit and direction: motion against the directions, digits against the digits
    python scripts/evaluate_videos.py --videos outputs/gen/moving/samples/samples.txt \
        --digit-labels outputs/gen/moving/samples/samples_digit.txt \
        --digit-classifier outputs/frame_digit/checkpoints/best.ckpt --groups temporal accuracy --out m.json
    # paired metrics and FVD against real clips
    python scripts/evaluate_videos.py --videos gen/ --reference real/ --i3d weights/i3d_torchscript.pt --out m.json

Writes ``FILE.json``, ``FILE.md`` (a Markdown table) and ``FILE_per_frame.png`` (per-frame curves). Metrics whose
weights are not given (I3D, CLIP/DINO) are reported as skipped, with the reason. See docs/metrics.md
for every metric's formula, direction, range and what it substitutes (the table is rendered from
``models/metrics/registry.py``).

Checkpoints of this framework (``--classifier``, ``--digit-classifier``, a run as ``--encoder``) become the network
callables the metric library takes through the adapter :mod:`models.recognition.scoring`; TorchScript files (I3D,
CLIP/DINO encoders) are loaded by the library itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from models.metrics.evaluate import GROUPS, evaluate_videos, summarise
from models.metrics.report import write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", required=True, help="folder, folder per class, or list file of videos to score")
    parser.add_argument("--reference", help="videos paired one-to-one (in order) with --videos, for paired metrics")
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write (.md and .png go beside it)")
    parser.add_argument("--classifier", help="recognition checkpoint of this framework (accuracy, FVD features)")
    parser.add_argument("--digit-classifier", help="per-frame recognition checkpoint (data.num_frames=1) for "
                        "identity_consistency and digit_accuracy")
    parser.add_argument("--digit-labels", help="list file of the same clips whose labels are the digits to check "
                        "(a multi-set sampler's samples_digit.txt), when --videos carries another label set")
    parser.add_argument("--cuts", type=int, nargs="*", default=[],
                        help="frames where a new slide starts, for identity consistency per slide (default: none)")
    parser.add_argument("--frame-order", default="forward", choices=("forward", "reversed", "shuffled", "frozen"),
                        help="destroy frame order before scoring, labels kept (default: %(default)s)")
    parser.add_argument("--order-seed", type=int, default=0, help="seed of --frame-order shuffled")
    parser.add_argument("--i3d", help="local I3D TorchScript file for FVD (StyleGAN-V protocol)")
    parser.add_argument("--encoder", help="local image encoder (TorchScript CLIP/DINO or our checkpoint)")
    parser.add_argument("--classes", help="class names, one per line (default: classes.txt or classes_<task>.txt "
                        "beside the list file); compass names (E, NE, ...) enable flow_direction_accuracy")
    parser.add_argument("--num-frames", type=int, help="frames per clip from the start of each file (default: all)")
    parser.add_argument("--start-frame", type=int, default=0,
                        help="first frame scored (0-based), e.g. k for a model given the first k frames")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per batch (default: %(default)s)")
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS,
                        help="metric groups to run (default: all that apply)")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads (default: library default)")
    return parser.parse_args(argv)


def load_networks(args: argparse.Namespace) -> dict[str, Any]:
    """The network arguments of :func:`evaluate_videos`, checkpoints built into callables by the adapter
    (:func:`models.recognition.scoring.classifier_from_run`, :func:`~models.recognition.scoring.load_image_encoder`),
    only for the groups that use them. The I3D path stays a path: the library loads it only when the clips are long
    enough for its protocol.

    Raises:
        FileNotFoundError, ValueError: a checkpoint or encoder file that is missing or not what it should be.
    """
    from models.recognition import scoring

    groups = set(args.groups)
    networks: dict[str, Any] = {"i3d": args.i3d}
    networks["classifier"] = (scoring.classifier_from_run(args.classifier)
                              if args.classifier and groups & {"accuracy", "fvd"} else None)
    networks["digit_classifier"] = (scoring.classifier_from_run(args.digit_classifier)
                                    if args.digit_classifier and "accuracy" in groups else None)
    networks["encoder"] = scoring.load_image_encoder(args.encoder) if args.encoder and "consistency" in groups else None
    return networks


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    result = evaluate_videos(args.videos, reference=args.reference, num_frames=args.num_frames,
                             batch_size=args.batch_size, groups=args.groups, classes=args.classes,
                             start_frame=args.start_frame, cuts=args.cuts, frame_order=args.frame_order,
                             order_seed=args.order_seed, digit_labels=args.digit_labels, **load_networks(args))
    paths = write_report(result, args.out)
    print(summarise(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
