"""This project's TimeSformer against Hugging Face's, one training step at ViT-B scale: time and peak memory.

    python scripts/bench_vs_hf.py                       # ViT-B/16, 8x224, divided, batch 1, fp32, 3 rounds
    python scripts/bench_vs_hf.py --rounds 5 --steps 3 --threads 2

Configurations, each in a process of its own (peak resident memory, ``ru_maxrss``, is per process):

* ``ours``: :class:`models.recognition.timesformer.TimeSformer`;
* ``ours+ckpt``: the same with ``grad_checkpointing=True`` (every block recomputed in the backward pass);
* ``hf``: ``transformers.TimesformerForVideoClassification`` with the same sizes (``attn_implementation="eager"``:
  HF's TimeSformer has no other);
* ``floor`` and ``hf-floor``: torch imported and the model (ours, HF's) built, with its gradients allocated, and no
  step: the memory no activation setting can remove.

Besides the ratios of peak memory, it prints each step's memory above its own model's floor (the activations and
the step's temporaries, which is what activation checkpointing acts on) and its ratio to HF's.

The configurations run interleaved, ``--rounds`` times (ours, hf, ours+ckpt, floor, hf-floor, ours, ...), so drift in the
machine's load falls on all of them alike. Each process times ``--steps`` forward + backward passes after one
warm-up and reports their median. Printed: the median over rounds of each configuration, and the ratios to HF.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("ours", "hf", "ours+ckpt", "floor", "hf-floor")
FLOOR_OF = {"ours": "floor", "ours+ckpt": "floor", "hf": "hf-floor"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=2, help="timed steps a process (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per configuration (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports ``ru_maxrss`` in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def build(config: str, num_frames: int, img_size: int):
    """The model of one configuration, in training mode, taking (b c t h w) and returning logits (b 400)."""
    import torch

    if config in ("hf", "hf-floor"):
        from transformers import TimesformerConfig, TimesformerForVideoClassification

        hf_config = TimesformerConfig(image_size=img_size, patch_size=16, num_frames=num_frames, hidden_size=768,
                                      num_hidden_layers=12, num_attention_heads=12, num_labels=400,
                                      attention_type="divided_space_time")
        hf = TimesformerForVideoClassification(hf_config).train()
        return hf, lambda video: hf(pixel_values=video.transpose(1, 2)).logits  # HF takes (b t c h w)
    from models.recognition.timesformer import TimeSformer

    ours = TimeSformer(img_size=img_size, patch_size=16, num_classes=400, num_frames=num_frames, embed_dim=768,
                       depth=12, num_heads=12, grad_checkpointing=config == "ours+ckpt").train()
    return ours, ours


def measure(args: argparse.Namespace) -> dict:
    """One configuration in this process."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model, forward = build(args.child, args.num_frames, args.img_size)
    if args.child not in FLOOR_OF:  # a floor: gradients allocated, no step
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        return {"seconds": float("nan"), "peak_rss_gb": peak_rss_gb()}
    video = torch.randn(1, 3, args.num_frames, args.img_size, args.img_size)
    times = []
    for step in range(args.steps + 1):
        start = time.perf_counter()
        forward(video).logsumexp(dim=-1).sum().backward()
        model.zero_grad(set_to_none=False)  # gradients stay allocated, as in training
        if step:
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "peak_rss_gb": peak_rss_gb()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)))
        return
    runs: dict[str, list[dict]] = {config: [] for config in CONFIGS}
    for round_index in range(args.rounds):
        for config in CONFIGS:
            command = [sys.executable, "-m", "scripts.bench_vs_hf", "--child", config, "--num-frames",
                       str(args.num_frames), "--img-size", str(args.img_size), "--steps", str(args.steps)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout)
            runs[config].append(result)
            print(f"round {round_index + 1}/{args.rounds} {config:10s} peak RSS {result['peak_rss_gb']:.3f} GB, "
                  f"{result['seconds']:.2f} s a step", flush=True)
    median = {config: {key: statistics.median(r[key] for r in results) for key in ("seconds", "peak_rss_gb")}
              for config, results in runs.items()}
    hf = median["hf"]
    print(f"\nTimeSformer ViT-B/16 {args.num_frames}x{args.img_size}, divided, batch 1, fp32, forward + backward; "
          f"median of {args.rounds} rounds")
    hf_step = hf["peak_rss_gb"] - median["hf-floor"]["peak_rss_gb"]
    for config in CONFIGS:
        m = median[config]
        memory = f"peak RSS {m['peak_rss_gb']:.2f} GB ({m['peak_rss_gb'] / hf['peak_rss_gb']:.2f}x HF)"
        if config not in FLOOR_OF:
            print(f"{config:10s} {memory}")
            continue
        step = m["peak_rss_gb"] - median[FLOOR_OF[config]]["peak_rss_gb"]
        print(f"{config:10s} {memory}, step above its floor {step:.2f} GB ({step / hf_step:.2f}x HF's), "
              f"{m['seconds']:.2f} s a step, speed {hf['seconds'] / m['seconds']:.2f}x HF")


if __name__ == "__main__":
    main()
