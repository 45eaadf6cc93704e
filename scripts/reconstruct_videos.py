"""Pass real clips through a frame autoencoder and write the reconstructions, to check what stage 1 preserves.

    python scripts/reconstruct_videos.py --autoencoder outputs/gen/autoencoder/checkpoints/best.ckpt \\
        --videos datasets/moving_mnist_direction/test_direction.txt --out outputs/gen/reconstructions --grey
    python scripts/evaluate_videos.py --videos outputs/gen/reconstructions/samples.txt \\
        --reference datasets/moving_mnist_direction/test_direction.txt \\
        --classifier outputs/demo/divided/checkpoints/best.ckpt --out outputs/gen/reconstructions_metrics.json

Each clip is read with decord (all its frames, or ``--num-frames``), mapped to [-1, 1], encoded to the posterior
mean and decoded, then written losslessly as ``OUT/videos/NNNNN.mp4`` with ``OUT/samples.txt`` (same order and
labels as ``--videos``) and the class names beside it, so ``scripts/evaluate_videos.py`` scores the
reconstructions against the originals (``--reference``) and with a classifier exactly as it scores generated clips.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


import torch
from tqdm.auto import tqdm

from data.annotations import write_class_names
from models.diffusion.autoencoder import load_frame_autoencoder
from models.diffusion.video_io import LIST_FILE, to_uint8, write_clips
from models.metrics.video_set import iter_batches, load_video_set


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", required=True, type=Path,
                        help="stage-1 checkpoint (<run>/checkpoints/*.ckpt) or a local diffusers VAE folder")
    parser.add_argument("--videos", required=True, help="list file, folder per class, or folder of clips")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--num-frames", type=int, help="frames per clip from the start (default: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--grey", action="store_true", help="average the decoded channels (grey data)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    return parser.parse_args(argv)


@torch.no_grad()
def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        autoencoder = load_frame_autoencoder(args.autoencoder)
        videos = load_video_set(args.videos, args.num_frames)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"reconstruct_videos.py: error: {error}")
    labels = videos.labels or [-1] * len(videos)
    lines: list[str] = []
    bar = tqdm(total=len(videos), desc="reconstructing", unit="clip")
    for video, _ in iter_batches(videos, args.batch_size):  # float (b 3 t h w) in [0, 1]
        recon = autoencoder.decode(autoencoder.encode(video * 2 - 1))  # (b 3 t h w), nominally [-1, 1]
        clips = to_uint8(recon)  # uint8 (b 3 t h w)
        if args.grey:
            clips = clips.float().mean(dim=1, keepdim=True).round().to(torch.uint8)  # (b 1 t h w)
        lines += write_clips(args.out, clips, labels[len(lines):len(lines) + len(clips)], args.fps,
                             start_index=len(lines))
        bar.update(len(clips))
    bar.close()
    list_file = args.out / LIST_FILE
    list_file.write_text("\n".join(lines) + "\n")
    if videos.class_names is not None:
        write_class_names(args.out, videos.class_names)
    print(f"wrote {len(lines)} reconstructions and {list_file}")
    return list_file


if __name__ == "__main__":
    main()
