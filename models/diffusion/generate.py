"""Sample labelled clips from a video diffusion checkpoint into a folder in the dataset list format.

The core of ``scripts/sample_videos.py`` and of ``eval.py`` on generation checkpoints: the model is rebuilt from the
run's ``config.yaml``, the checkpoint is read with ``torch.load(weights_only=True)`` and sampled with its EMA weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from hydra.utils import instantiate
from tqdm.auto import tqdm

from data.annotations import CLASSES_FILE, find_class_names, read_classes, write_class_names
from models.diffusion.module import VideoDiffusion
from models.diffusion.video_io import GRID_FILE, LIST_FILE, gif_bytes, rows_by_label, write_clips
from models.run import load_run

MAX_GRID_CLIPS = 64  # unconditional runs: the first 64 clips, 8 per row
GRID_PER_LABEL = 8  # class-conditional runs: one row per class, its first 8 clips
REFERENCE_FILE = "reference.txt"  # with frame conditioning: the real clips continued, in samples.txt's order


def load_model(ckpt_path: str | Path, autoencoder_path: str | None = None, device: str = "cpu") -> VideoDiffusion:
    """Rebuild the run's :class:`VideoDiffusion` from ``<run>/config.yaml`` and load the checkpoint strictly.

    Args:
        ckpt_path: ``<run>/checkpoints/*.ckpt`` of a ``train.py experiment=mmnist_dit`` run.
        autoencoder_path: replaces the run's ``model.autoencoder_path`` (e.g. when the run folder moved).
        device: where to run.

    Returns:
        The module in eval mode; its ``ema`` holds the EMA weights used for sampling.

    Raises:
        FileNotFoundError: the checkpoint or the run's config is missing.
        ValueError: the run is not a video diffusion run, or the checkpoint cannot be read safely.
    """
    run = load_run(ckpt_path).expect("diffusion")
    overrides = {"autoencoder_path": str(autoencoder_path)} if autoencoder_path is not None else {}
    return run.build_module(**overrides).to(device)


def dataset_class_names(data_cfg) -> list[str] | None:
    """Class names of a run's data config, in label order, or None when the data does not name its classes.

    A latent cache (``data.latents``) keeps them in ``<root>/classes.txt``; a video dataset names them in its
    ``classes`` file, or beside its train list (:func:`data.annotations.find_class_names`).
    """
    root = Path(str(data_cfg.get("root", "")))
    if data_cfg.get("classes"):
        return read_classes(root / str(data_cfg.classes))
    if (root / CLASSES_FILE).is_file():
        return read_classes(root / CLASSES_FILE)
    train = data_cfg.get("train")
    return find_class_names(root / str(train)) if train and (root / str(train)).is_file() else None


def _condition_batches(ckpt_path: str | Path, model: VideoDiffusion, batch_size: int) -> Iterator[tuple]:
    """(labels, first-k latent frames, source clip paths) batches from the run's test split, cycling when it runs
    out."""
    run_cfg = load_run(ckpt_path).config
    if "generate" in run_cfg.data:
        run_cfg.data.generate = None  # sampling never builds data
    datamodule = instantiate(run_cfg.data, batch_size=batch_size, num_workers=0)
    datamodule.setup("test")
    dataset = datamodule.datasets["test"]
    k = model.hparams.num_cond_frames
    while True:
        for batch in datamodule.test_dataloader():
            paths = [_source_path(dataset, int(i)) for i in batch["index"]]
            batch = {key: value.to(model.device) if torch.is_tensor(value) else value for key, value in batch.items()}
            yield batch["label"].long(), model.latents(batch)[:, :, :k], paths


def _source_path(dataset, index: int) -> str:
    """The video file a test item came from (latent caches record it in ``paths``; clip datasets in ``samples``)."""
    path = dataset.paths[index] if hasattr(dataset, "paths") else dataset.samples[index].path
    return str(Path(path).resolve())


def generate_to_folder(
    ckpt_path: str | Path,
    out_dir: str | Path,
    num_samples: int,
    labels: Sequence[int] | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    guidance_scale: float | None = None,
    eta: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    autoencoder_path: str | None = None,
    device: str = "cpu",
    grey: bool = False,
    progress: bool = True,
) -> Path:
    """Sample ``num_samples`` clips with the checkpoint's EMA weights and write them to ``out_dir``.

    Args:
        ckpt_path: a video diffusion checkpoint (its run folder holds ``config.yaml``).
        out_dir: output folder (created).
        num_samples: clips to write (>= 1).
        labels: classes to cycle through (clip i gets ``labels[i % len(labels)]``); None: every class in turn.
            Ignored with frame conditioning (the conditioning clips' labels are used).
        steps, sampler, guidance_scale, eta: override the run's ``model.sampling`` (None: keep).
        seed: seeds the sampler; clip i's noise depends on (seed, batch_size) only.
        batch_size: clips sampled at once.
        autoencoder_path: replaces the run's ``model.autoencoder_path``.
        device: ``cpu`` or ``cuda``.
        grey: average the decoded RGB channels and write grey clips, in the real data's exact format, for data that
            is grey (Moving MNIST): a decoder's small channel differences then do not tint the clips.
        progress: show a progress bar over clips.

    Returns:
        The ``samples.txt`` written (``videos/NNNNN.mp4 label`` lines); ``classes.txt`` goes beside it when the
        run's data names its classes, and with frame conditioning ``reference.txt`` lists the real clips that were
        continued (absolute paths, same order), for paired metrics against the ground truth.

    Raises:
        ValueError: ``num_samples`` < 1, or a label outside [0, num_classes).
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples={num_samples} and batch_size={batch_size} must be >= 1")
    model = load_model(ckpt_path, autoencoder_path, device)
    num_classes = model.hparams.num_classes
    labels = list(range(max(num_classes, 1))) if labels is None else [int(label) for label in labels]
    bad = [label for label in labels if not 0 <= label < max(num_classes, 1)]
    if bad or not labels:
        raise ValueError(f"labels={labels} must be non-empty and in [0, {num_classes})")
    k = model.hparams.num_cond_frames
    conditions = _condition_batches(ckpt_path, model, batch_size) if k else None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    lines: list[str] = []
    references: list[str] = []
    grid: list[torch.Tensor] = []  # clips for grid.gif: one row per class (class-conditional), else the first 64
    grid_labels: list[int] = []
    bar = tqdm(total=num_samples, desc="clips", unit="clip", disable=not progress)
    while len(lines) < num_samples:
        n = min(batch_size, num_samples - len(lines))
        cond_latents = None
        if conditions is not None:
            batch_labels, cond_latents, paths = next(conditions)
            batch_labels, cond_latents = batch_labels[:n], cond_latents[:n]
            n = len(batch_labels)
            references += [f"{path} {int(label)}" for path, label in zip(paths[:n], batch_labels.tolist())]
        else:
            batch_labels = torch.tensor([labels[(len(lines) + i) % len(labels)] for i in range(n)], device=model.device)
        videos = model.generate(batch_labels if num_classes > 0 else None, num_samples=n, cond_latents=cond_latents,
                                generator=generator, sampler=sampler, num_inference_steps=steps,
                                guidance_scale=guidance_scale, eta=eta)
        if grey:
            videos = videos.float().mean(dim=1, keepdim=True).round().to(torch.uint8)  # (b 1 t h w)
        written = batch_labels.tolist() if num_classes > 0 else [-1] * n
        lines += write_clips(out_dir, videos, written, model.hparams.fps, start_index=len(lines))
        for video, label in zip(videos, written):
            wanted = grid_labels.count(label) < GRID_PER_LABEL if num_classes > 0 else len(grid) < MAX_GRID_CLIPS
            if wanted:
                grid.append(video)
                grid_labels.append(label)
        bar.update(n)
    bar.close()
    tiles = rows_by_label(grid, grid_labels, GRID_PER_LABEL) if num_classes > 0 else torch.stack(grid)
    (out_dir / GRID_FILE).write_bytes(gif_bytes(tiles, model.hparams.fps, nrow=8))
    list_file = out_dir / LIST_FILE
    list_file.write_text("\n".join(lines) + "\n")
    if references:  # the real clips whose first k frames were given: the ground truth of the continuation
        (out_dir / REFERENCE_FILE).write_text("\n".join(references) + "\n")
    names = dataset_class_names(load_run(ckpt_path).config.data) if num_classes > 0 else None
    if names is not None:  # beside samples.txt, so scripts/evaluate_videos.py scores direction without flags
        write_class_names(out_dir, names)
    return list_file
