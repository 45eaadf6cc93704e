"""Sample clips from a trained video diffusion checkpoint and write them as a labelled video list.

Examples:
    python scripts/sample_videos.py --ckpt outputs/gen/dit/checkpoints/best.ckpt --num-samples 64 --out gen_samples
    python scripts/sample_videos.py --ckpt CKPT --num-samples 16 --labels 0 2 --sampler ddpm --steps 100 \\
        --guidance-scale 2 --out gen_samples_guided
    # a model conditioned on label sets (model.conditioning=[digit,direction]): ask for "a 7 moving NE"
    python scripts/sample_videos.py --ckpt CKPT --num-samples 4 --digit 7 --direction NE --out a_seven_moving_ne
    python scripts/sample_videos.py --ckpt CKPT --num-samples 256 --out grid      # every digit x direction, balanced
    python scripts/sample_videos.py --ckpt CKPT --num-samples 256 --guidance-scale digit=4,direction=1 --out grid_g41
    python scripts/sample_videos.py --ckpt CKPT --num-samples 8 --labels-file requests.txt --out requested
    # factorized (Emu Video): an image stage draws frame 1, a video stage trained given 1 frame draws the rest
    python scripts/sample_videos.py --ckpt COND1_CKPT --first-frame-from IMAGE_CKPT --first-frame-guidance 4 \
        --num-samples 256 --guidance-scale direction=2,digit=4 --out factorized

Writes ``OUT/videos/00000.mp4 ...``, ``OUT/samples.txt`` (``videos/00000.mp4 label`` per line, the list format of
``data.annotations.read_list_file``, so ``scripts/evaluate_videos.py --videos OUT/samples.txt`` scores them) and
``OUT/grid.gif`` (one row per class, its first 8 clips; unconditional runs: the first 64). The model is rebuilt from the run's ``config.yaml`` and the EMA weights are
read with ``torch.load(weights_only=True)``. A model conditioned on several label sets takes ``--<set> VALUE`` for
each set it knows (a class name or index; a set left out is free) or ``--labels-file`` (one ``set=value ...`` request
per line, cycled), and otherwise draws a balanced grid of every combination; it also writes ``samples_<set>.txt`` per
set, so ``scripts/evaluate_videos.py --videos OUT/samples.txt --digit-labels OUT/samples_digit.txt`` scores motion and
digits in one call. With ``num_cond_frames = k > 0`` the first k frames of each clip come
from the run's test split (encoded by its autoencoder), and the labels are those clips' labels, unless
``--first-frame-from`` names an image stage that draws frame 1 from noise (k = 1; the labels are then asked for).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


import torch

from models.diffusion.denoising import SAMPLERS
from models.diffusion.generate import generate_to_folder, read_label_requests
from models.diffusion.video_io import GRID_FILE


def guidance_scale(text: str) -> float | dict[str, float]:
    """``"4"`` -> 4.0; ``"digit=4,direction=1"`` -> ``{"digit": 4.0, "direction": 1.0}`` (order kept)."""
    if "=" not in text:
        return float(text)
    scales = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if not name or not value:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number or set=scale pairs such as "
                                             "digit=4,direction=1")
        scales[name.strip()] = float(value)
    return scales


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint of a train.py experiment=mmnist_dit run")
    parser.add_argument("--num-samples", type=int, required=True, help="clips to write")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--labels", type=int, nargs="+", help="classes to cycle through (default: all)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the run's model.sampling)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="default: the run's model.sampling")
    parser.add_argument("--guidance-scale", type=guidance_scale,
                        help="classifier-free guidance scale (1: off), or one per label set in the order they are "
                             "applied, e.g. digit=4,direction=1 (nested guidance, InstructPix2Pix)")
    parser.add_argument("--eta", type=float, help="DDIM eta in [0, 1] (ddim only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--autoencoder", help="replaces the run's model.autoencoder_path")
    parser.add_argument("--grey", action="store_true", help="write grey clips (mean of the decoded RGB channels)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--first-frame-from", type=Path, metavar="IMAGE_CKPT",
                        help="an image-stage checkpoint that draws each clip's first frame for a video stage trained "
                             "given one frame (model.num_cond_frames=1): factorized generation (Emu Video)")
    parser.add_argument("--first-frame-guidance", type=guidance_scale,
                        help="the image stage's guidance scale (default: its run's model.sampling)")
    parser.add_argument("--frame-guidance", type=float, default=1.0,
                        help="guidance over the given frames (1: off), for a video stage trained with "
                             "model.cond_frame_dropout (Stable Video Diffusion's image guidance)")
    parser.add_argument("--labels-file", type=Path,
                        help="label requests, one clip per line as 'digit=7 direction=NE' (multi-set models)")
    args, rest = parser.parse_known_args(argv)
    if args.first_frame_guidance is not None and args.first_frame_from is None:
        parser.error("--first-frame-guidance needs --first-frame-from")
    # --<set> VALUE pairs for the label sets of a multi-set model (their names come from the checkpoint)
    pairs = list(zip(rest[::2], rest[1::2]))
    if len(rest) % 2 or any(not flag.startswith("--") or value.startswith("--") for flag, value in pairs):
        parser.error(f"unrecognised arguments {rest}: label requests are '--<set> VALUE' pairs, e.g. --digit 7")
    args.request = {flag[2:].replace("-", "_"): value for flag, value in pairs}
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        requests = read_label_requests(args.labels_file) if args.labels_file else ([args.request] if args.request
                                                                                     else None)
        list_file = generate_to_folder(args.ckpt, args.out, args.num_samples, labels=args.labels, steps=args.steps,
                                       sampler=args.sampler, guidance_scale=args.guidance_scale, eta=args.eta,
                                       seed=args.seed, batch_size=args.batch_size,
                                       autoencoder_path=args.autoencoder,
                                       device=args.device, grey=args.grey, requests=requests,
                                       first_frame_from=args.first_frame_from,
                                       first_frame_guidance=args.first_frame_guidance,
                                       frame_guidance=args.frame_guidance)
    except (ValueError, FileNotFoundError) as error:  # a bad request or path: a message, not a traceback
        sys.exit(f"sample_videos.py: error: {error}")
    print(f"wrote {args.num_samples} clips, {list_file} and {list_file.parent / GRID_FILE}")


if __name__ == "__main__":
    main()
