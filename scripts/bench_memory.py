"""Peak memory and step time of one training step of a ViT-B-sized video model, with and without activation checkpointing.

    python scripts/bench_memory.py                                  # TimeSformer ViT-B/16, 8x224, divided, batch 1
    python scripts/bench_memory.py --model vivit --num-frames 16 --steps 3

Each configuration runs in its own process (peak resident memory is per process: ``resource.getrusage``'s
``ru_maxrss``), does ``--steps`` forward + backward passes in fp32 on random clips, and reports the peak RSS and the
median step time. Prints one line per configuration and the ratio.

The figures are also written to the result record ``results/bench_memory.json`` (``scripts/records.py``: one row per
configuration, ``peak_rss_gb``, ``seconds_per_step``, ``rss_vs_off``, ``time_vs_off``), with the machine and its fp32
matmul peak measured before the steps. Only the documented configuration (TimeSformer, 8x224) writes it by default;
``--record NAME`` names another record, ``--record none`` writes none, ``--results-dir`` moves it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

ROW_NAMES = {"off": "`grad_checkpointing=false`", "on": "`grad_checkpointing=true`"}
DOCUMENTED = {"model": "timesformer", "num_frames": 8, "img_size": 224}  # the configuration the default record holds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("timesformer", "vivit"), default="timesformer")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="write the figures to results/NAME.json (default: bench_memory for the documented "
                             "TimeSformer 8x224, else none); 'none': write no record")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    parser.add_argument("--child", choices=("off", "on"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def record_name(args: argparse.Namespace) -> str:
    """``--record``, or its default: bench_memory for the documented configuration, none for others."""
    if args.record:
        return args.record
    return "bench_memory" if all(getattr(args, key) == value for key, value in DOCUMENTED.items()) else "none"


def record_rows(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Both configurations as result-record rows (the printed figures before rounding)."""
    off = results["off"]
    return {ROW_NAMES[mode]: {"peak_rss_gb": r["peak_rss_gb"], "seconds_per_step": r["seconds"],
                              "rss_vs_off": r["peak_rss_gb"] / off["peak_rss_gb"],
                              "time_vs_off": r["seconds"] / off["seconds"]} for mode, r in results.items()}


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


def main(argv: list[str] | None = None) -> dict | None:
    """Measure both configurations and print them; returns ``{"off"|"on": {"seconds", "peak_rss_gb"}}``."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)))
        return None
    record = record_name(args)
    info = None
    if record != "none":  # the machine, with its fp32 matmul peak measured now, with the children's threads
        from scripts.records import machine_for_children

        info = machine_for_children(args.threads)
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
    if record != "none":
        from scripts.records import write_record

        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        path = write_record(
            record, command=f"python scripts/bench_memory.py {argv_text}".strip(), rows=record_rows(results),
            title=f"{args.model} ViT-B/16, {args.num_frames}x{args.img_size}, batch 1, fp32 forward + backward: "
                  "activation checkpointing off and on",
            notes=[f"Each configuration in its own process; peak RSS (ru_maxrss) of the process, median of "
                   f"{args.steps} timed steps after one warm-up."],
            machine_info=info, **({"results_dir": args.results_dir} if args.results_dir else {}))
        print(f"record: {path}")
    return results


if __name__ == "__main__":
    main()
