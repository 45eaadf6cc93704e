"""Encode every clip of the train/val/test splits once with a frozen frame autoencoder, for stage-2 training.

Example:
    python scripts/cache_latents.py --autoencoder outputs/gen/autoencoder/checkpoints/best.ckpt
    python scripts/cache_latents.py --autoencoder /models/sd-vae --data mmnist_generation --out outputs/gen/sd_latents
    python scripts/cache_latents.py --autoencoder <ckpt> data.root=/data/other_mmnist --splits val test
    python scripts/cache_latents.py --autoencoder <ckpt> --label-sets digit direction   # "a 7 moving NE"

With a stage-1 checkpoint of ours, the clips are read with the data config of its own training run (so the pixel
normalisation is the one it was trained with) and the caches go to ``<run>/latents/`` unless ``--out`` says
otherwise; ``--data NAME`` composes ``configs/data/NAME.yaml`` instead (required for a diffusers VAE folder).
Trailing ``data.key=value`` arguments override the data config. The layout written is described in
``data.latents`` (one atomically written ``<split>.pt`` per split); ``configs/data/mmnist_latents.yaml`` reads it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from data.annotations import write_class_names
from data.latents import SPLITS, cache_latents
from models.diffusion.generate import dataset_class_names
from models.diffusion.autoencoder import load_frame_autoencoder
from models.run import load_run, run_dir_of

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", required=True, type=Path,
                        help="a stage-1 checkpoint (<run>/checkpoints/*.ckpt) or a local diffusers VAE folder")
    parser.add_argument("--out", type=Path, default=None, help="cache folder (default: <run>/latents)")
    parser.add_argument("--data", default=None,
                        help="data config name in configs/data (default: the checkpoint's own run config)")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS), help="default: all")
    parser.add_argument("--label-sets", nargs="+", default=[],
                        help="further label sets to store with each clip, read from <data.root>/<split>_<set>.txt "
                             "(e.g. digit direction: a model can then be asked for 'a 7 moving NE')")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per batch (default: %(default)s)")
    parser.add_argument("--num-workers", type=int, default=1, help="decoding processes (default: %(default)s)")
    parser.add_argument("--num-threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="default: %(default)s")
    parser.add_argument("overrides", nargs="*", help="data.key=value overrides of the data config")
    return parser.parse_args(argv)


def run_config(autoencoder: Path) -> DictConfig | None:
    """The saved config of the run that wrote a checkpoint, or None for a diffusers folder."""
    if autoencoder.is_dir():
        return None
    return load_run(autoencoder).expect("autoencoder").config


def data_config(args: argparse.Namespace) -> DictConfig:
    """The data config to read clips with: the run's own, or ``--data``, with the overrides applied.

    Raises:
        ValueError: neither a run config nor ``--data`` is available, or an override is not ``data.key=value``.
    """
    bad = [o for o in args.overrides if not o.startswith("data.") or "=" not in o]
    if bad:
        raise ValueError(f"overrides {bad} must look like data.key=value")
    if args.data is not None:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"data={args.data}", "paths.output_dir=.", *args.overrides])
        return cfg.data
    run = run_config(args.autoencoder)
    if run is None:
        raise ValueError(f"--autoencoder {args.autoencoder} has no run config.yaml: name a data config with --data")
    cfg = OmegaConf.merge(OmegaConf.create({"data": run.data}), OmegaConf.from_dotlist(args.overrides))
    return cfg.data


def main(argv: list[str] | None = None) -> None:
    """Write the latent caches described by the command line."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    try:
        data_cfg = data_config(args)
        out = args.out
        if out is None:
            if run_config(args.autoencoder) is None:
                raise ValueError("--out is required when --autoencoder is not a checkpoint of a train.py run")
            out = run_dir_of(args.autoencoder) / "latents"
        autoencoder = load_frame_autoencoder(args.autoencoder).to(args.device)
    except (ValueError, FileNotFoundError) as error:  # a message, not a traceback
        sys.exit(f"cache_latents.py: error: {error}")
    data_cfg.generate = None  # never build data here
    datamodule = instantiate(data_cfg)
    start = time.perf_counter()
    written = cache_latents(autoencoder, datamodule, out, args.splits, args.batch_size, args.num_workers,
                            source=str(args.autoencoder),
                            extra_meta={"data": OmegaConf.to_container(data_cfg, resolve=True)},
                            label_sets=args.label_sets)
    names = dataset_class_names(data_cfg)
    if names is not None:  # the sample writer copies them beside samples.txt (flow_direction_accuracy reads them)
        write_class_names(out, names)
    for split, path in written.items():
        print(f"{split}: {path}")
    print(f"scaling_factor {autoencoder.scaling_factor:.6g}; encoded in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
