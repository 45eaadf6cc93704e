"""Peak memory and step time of one training step of a ViT-B-sized video model, with and without activation checkpointing.

    python scripts/bench_memory.py                                  # TimeSformer ViT-B/16, 8x224, divided, batch 1
    python scripts/bench_memory.py --model vivit --num-frames 16 --steps 3

Each configuration runs in its own process (peak resident memory is per process: ``resource.getrusage``'s
``ru_maxrss``), does ``--steps`` forward + backward passes in fp32 on random clips, and reports the peak RSS and the
median step time. Prints one line per configuration and the ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("timesformer", "vivit"), default="timesformer")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--child", choices=("off", "on"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    """One configuration, in this process: ViT-B sizes, fp32, batch 1."""
    import torch

    from models.recognition.timesformer import TimeSformer
    from models.recognition.vivit import ViViT

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = dict(img_size=args.img_size, patch_size=16, num_classes=400, num_frames=args.num_frames, embed_dim=768,
                 depth=12, num_heads=12, grad_checkpointing=args.child == "on")
    model = (TimeSformer(**sizes) if args.model == "timesformer" else ViViT(**sizes, tubelet_size=2)).train()
    video = torch.randn(1, 3, args.num_frames, args.img_size, args.img_size)
    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        model(video).logsumexp(dim=-1).sum().backward()
        model.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)))
        return
    results = {}
    for mode in ("off", "on"):
        command = [sys.executable, __file__, "--child", mode, "--model", args.model, "--num-frames",
                   str(args.num_frames), "--img-size", str(args.img_size), "--steps", str(args.steps)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        results[mode] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(f"{args.model} {args.num_frames}x{args.img_size}, grad_checkpointing {mode}: "
              f"peak RSS {results[mode]['peak_rss_gb']:.2f} GB, {results[mode]['seconds']:.2f} s a step")
    print(f"checkpointing: {results['on']['peak_rss_gb'] / results['off']['peak_rss_gb']:.2f}x the memory, "
          f"{results['on']['seconds'] / results['off']['seconds']:.2f}x the time")


if __name__ == "__main__":
    main()
