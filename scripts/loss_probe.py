"""What a trained video diffusion run uses: its denoising loss on real clips with one input taken away.

Examples:
    python scripts/loss_probe.py outputs/gen/digits/dit                       # last.ckpt, 96 val clips
    python scripts/loss_probe.py outputs/gen/digits/dit/checkpoints/last.ckpt --num-clips 256 --split test \\
        --out outputs/gen/digits/dit/loss_probe.json
    python scripts/loss_probe.py outputs/gen/digits_dir/dit --step0 --new-label-init zero   # the run at step 0

For each band of diffusion timesteps it prints the EMA net's loss as given, with each label set nulled or wrong, with
temporal attention off and with the frames reversed (``models/diffusion/probe.py``), and the ratio to the loss as
given. A label set whose rows read ×1.00 is ignored by the model; "temporal attention off" near ×1.00 means the
frames are denoised as if alone. ``--step0`` probes the run's video model as it started: its ``model.net`` built
afresh and the image stage of ``model.init_from`` loaded into it (``--new-label-init`` replaces the run's choice for
a label set the image model lacks), which tells what the start itself costs the image model. The clips are the first ``--num-clips`` of the run's latent cache split
(``data.root``/<split>.pt), with their labels.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from data.files import write_text_atomic
from data.latents import LatentClipDataset
from models.diffusion.dit import NEW_LABEL_INITS
from models.diffusion.probe import loss_probe, probe_table
from models.run import load_run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a stage-2 run folder (train.py experiment=mmnist_dit*) or checkpoint")
    parser.add_argument("--checkpoint", default="last.ckpt", help="checkpoint name when RUN is a folder")
    parser.add_argument("--split", default="val", help="latent cache split: <data.root>/<split>.pt")
    parser.add_argument("--num-clips", type=int, default=96, help="clips probed (the split's first)")
    parser.add_argument("--bands", type=int, default=5, help="equal timestep bands over [0, num_train_timesteps)")
    parser.add_argument("--seed", type=int, default=0, help="seeds timesteps and noise")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="write the losses as JSON here")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="also write results/NAME.json (a result record; docs/generation.md's probe table)")
    parser.add_argument("--step0", action="store_true",
                        help="probe the run's model at step 0: model.net afresh + the image stage of model.init_from")
    parser.add_argument("--new-label-init", choices=NEW_LABEL_INITS, default=None,
                        help="with --step0: replaces the run's model.new_label_init")
    parser.add_argument("--label", default=None, help="the run's name in the record's rows (default: its folder)")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_run(args.run, args.checkpoint).expect("diffusion")
    model = run.config.model
    cache = Path(run.config.data.root) / f"{args.split}.pt"
    dataset = LatentClipDataset(cache)
    n = min(args.num_clips, len(dataset))
    if n < 1:
        raise SystemExit(f"{cache}: no clips to probe")
    latents = dataset.latents[:n].float()
    if model.get("conditioning"):
        missing = [name for name in model.conditioning if name not in dataset.label_sets]
        if missing:
            raise SystemExit(f"{cache} has no {missing} labels; the run is conditioned on {list(model.conditioning)}")
        labels = {name: dataset.label_sets[name][:n].long() for name in model.conditioning}
    else:
        labels = dataset.labels[:n].long() if int(model.num_classes) > 0 else None
    if args.new_label_init and not args.step0:
        raise SystemExit("--new-label-init applies with --step0 only")
    net = step0_net(run, args.new_label_init, args.seed) if args.step0 else run.build_net(prefix="ema.")
    num_train = int(model.noise_scheduler.get("num_train_timesteps", 1000))
    edges = [round(i * num_train / args.bands) for i in range(args.bands + 1)]
    results = loss_probe(net, dict(model.noise_scheduler), latents, labels, bands=tuple(zip(edges, edges[1:])),
                         num_cond_frames=int(model.get("num_cond_frames", 0)), seed=args.seed)
    what = f"step-0 net from {run.config.model.init_from}" if args.step0 else "EMA net"
    print(f"{run.ckpt}: {what}, {n} clips of {cache}, seed {args.seed}; loss (ratio to 'as given')")
    print(probe_table(results))
    if args.out:
        payload = {"checkpoint": str(run.ckpt), "cache": str(cache), "num_clips": n, "seed": args.seed,
                   "loss": results}
        write_text_atomic(args.out, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.record:
        print(f"wrote {write_probe_record(args, run, results, n, cache)}")
    return 0


def step0_net(run, new_label_init: str | None, seed: int) -> torch.nn.Module:
    """The run's ``model.net`` as training started: built afresh (seeded) and the image stage loaded into it.

    Raises:
        SystemExit: the run has no ``model.init_from`` (it started from its own random weights).
    """
    from hydra.utils import instantiate

    from models.diffusion.diffusion_module import image_weights

    model = run.config.model
    if not model.get("init_from"):
        raise SystemExit(f"{run.ckpt}: --step0 needs a run started from an image stage (model.init_from is unset)")
    torch.manual_seed(seed)
    net = instantiate(model.net)
    net.load_state_dict(image_weights(model.init_from, net, new_label_init or model.get("new_label_init", "zero")))
    return net.eval()


def write_probe_record(args: argparse.Namespace, run, results: dict, n: int, cache: Path) -> Path:
    """``results/<record>.json``: one row per input, the loss and its ratio to the loss as given per band."""
    from scripts.records import RESULTS, write_record

    label = args.label or (run.dir.parent.name if run.dir.name == "dit" else run.dir.name)
    base = results["as given"]
    rows = {f"{label}: {name}": {**{f"loss {band}": row[band] for band in row},
                                 **{f"ratio {band}": row[band] / base[band] for band in row}}
            for name, row in results.items()}
    extra = {"--step0": "" if args.step0 else None, "--new-label-init": args.new_label_init,
             "--split": args.split if args.split != "val" else None, "--seed": args.seed or None,
             "--num-clips": args.num_clips if args.num_clips != 96 else None}
    flags = " ".join(f"{flag} {value}".strip() for flag, value in extra.items() if value is not None)
    source = (f"the step-0 net (model.net afresh + the image stage of {run.config.model.init_from})" if args.step0
              else "EMA weights")
    command = f"python scripts/loss_probe.py {run.ckpt} {flags} --record {args.record}".replace("  ", " ")
    return write_record(
        args.record, title=f"What {label} uses: its denoising loss with one input taken away", command=command,
        rows=rows, seeds=[args.seed], results_dir=args.results_dir or RESULTS,
        notes=[f"{source} of {run.ckpt}; {n} clips of {cache}; each clip one timestep per band, the same noise "
               "for every input; the ratio is the loss over the loss as given."])


if __name__ == "__main__":
    sys.exit(main())
