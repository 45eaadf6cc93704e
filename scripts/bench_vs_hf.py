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

The figures are also written to the result record ``results/bench_vs_hf.json`` (``scripts/records.py``: one row per
configuration, ``peak_rss_gb``, ``rss_vs_hf``, and for a step ``step_gb``, ``step_vs_hf``, ``seconds_per_step``,
``speed_vs_hf``), with the machine and its fp32 matmul peak measured before the rounds; docs/experiments.md's table
is rendered from it. Only the documented sizes (8x224) write it by default; ``--record NAME`` names another record,
``--record none`` writes none, ``--results-dir`` moves it.
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
ROW_NAMES = {"hf": "HF `TimesformerForVideoClassification`", "ours": "ours",
             "ours+ckpt": "ours, `grad_checkpointing=true`", "floor": "floor: torch + our model + gradients", "hf-floor": "floor: torch + HF's model + gradients"}
RECORD_ORDER = ("hf", "ours", "ours+ckpt", "floor", "hf-floor")  # the docs table's order
DOCUMENTED = {"num_frames": 8, "img_size": 224}  # the configuration whose record the docs show


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=2, help="timed steps a process (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per configuration (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="write the figures to results/NAME.json (default: bench_vs_hf for the documented 8x224, "
                             "else none); 'none': write no record")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def record_name(args: argparse.Namespace) -> str:
    """``--record``, or its default: bench_vs_hf for the documented sizes, none for others (a quick check at other
    sizes does not replace the documented figures)."""
    if args.record:
        return args.record
    documented = args.num_frames == DOCUMENTED["num_frames"] and args.img_size == DOCUMENTED["img_size"]
    return "bench_vs_hf" if documented else "none"


def record_rows(median: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The summary as result-record rows (plain numbers, the figures the summary prints before rounding)."""
    hf = median["hf"]
    hf_step = hf["peak_rss_gb"] - median["hf-floor"]["peak_rss_gb"]
    rows = {}
    for config in RECORD_ORDER:
        m = median[config]
        row = {"peak_rss_gb": m["peak_rss_gb"], "rss_vs_hf": m["peak_rss_gb"] / hf["peak_rss_gb"]}
        if config in FLOOR_OF:
            step = m["peak_rss_gb"] - median[FLOOR_OF[config]]["peak_rss_gb"]
            row |= {"step_gb": step, "step_vs_hf": step / hf_step, "seconds_per_step": m["seconds"],
                    "speed_vs_hf": hf["seconds"] / m["seconds"]}
        rows[ROW_NAMES[config]] = row
    return rows


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


def main(argv: list[str] | None = None) -> dict | None:
    """Run the rounds and print the summary; returns the medians ``{config: {"seconds", "peak_rss_gb"}}``."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)))
        return None
    record = record_name(args)
    info = None
    if record != "none":  # the machine, with its fp32 matmul peak measured now, with the children's threads
        from scripts.records import machine_for_children

        info = machine_for_children(args.threads)
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
    if record != "none":
        from scripts.records import write_record

        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        path = write_record(
            record, command=f"python scripts/bench_vs_hf.py {argv_text}".strip(), rows=record_rows(median),
            title=f"ViT-B/16 TimeSformer, {args.num_frames}x{args.img_size}, divided, batch 1, fp32 forward + "
                  "backward: ours against HF",
            notes=[f"Each configuration in its own process, interleaved, {args.rounds} rounds of {args.steps} timed "
                   "steps (after one warm-up), medians. A floor is a model built with its gradients allocated and no "
                   "step; a step's memory is its peak RSS above its own model's floor."],
            machine_info=info, **({"results_dir": args.results_dir} if args.results_dir else {}))
        print(f"record: {path}")
    return median


if __name__ == "__main__":
    main()
