"""Sample labelled clips from a video diffusion checkpoint into a folder in the dataset list format.

The core of ``scripts/sample_videos.py`` and of ``eval.py`` on generation checkpoints: the model is rebuilt from the
run's ``config.yaml``, the checkpoint is read with ``torch.load(weights_only=True)`` and sampled with its EMA weights.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from hydra.utils import instantiate
from tqdm.auto import tqdm

from data.annotations import CLASSES_FILE, find_class_names, read_classes, write_class_names
from models.diffusion import labels as label_sets
from models.diffusion.diffusion_module import VideoDiffusion
from models.diffusion.factorized import first_frames, open_first_frame_model
from models.diffusion.video_io import GRID_FILE, LIST_FILE, gif_bytes, rows_by_label, write_clips
from models.run import Run, load_run

MAX_GRID_CLIPS = 64  # unconditional runs: the first 64 clips, 8 per row
GRID_PER_LABEL = 8  # class-conditional runs: one row per class, its first 8 clips
REFERENCE_FILE = "reference.txt"  # with frame conditioning: the real clips continued, in samples.txt's order


def load_model(ckpt_path: str | Path | Run, autoencoder_path: str | None = None,
               device: str = "cpu") -> VideoDiffusion:
    """Rebuild the run's :class:`VideoDiffusion` from ``<run>/config.yaml`` and load the checkpoint strictly.

    Args:
        ckpt_path: ``<run>/checkpoints/*.ckpt`` of a ``train.py experiment=mmnist_dit`` run, or the run already
            opened with :func:`models.run.load_run`.
        autoencoder_path: replaces the run's ``model.autoencoder_path`` (e.g. when the run folder moved).
        device: where to run.

    Returns:
        The module in eval mode; its ``ema`` holds the EMA weights used for sampling.

    Raises:
        FileNotFoundError: the checkpoint or the run's config is missing.
        ValueError: the run is not a video diffusion run, or the checkpoint cannot be read safely.
    """
    run = _opened(ckpt_path).expect("diffusion")
    overrides = {"autoencoder_path": str(autoencoder_path)} if autoencoder_path is not None else {}
    return run.build_module(**overrides).to(device)


def _opened(run: str | Path | Run) -> Run:
    return run if isinstance(run, Run) else load_run(run)


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


def _condition_batches(run: Run, model: VideoDiffusion, batch_size: int) -> Iterator[tuple]:
    """(labels, first-k latent frames, source clip paths) batches from the run's test split, cycling when it runs
    out."""
    run_cfg = copy.deepcopy(run.config)  # edited below; the run's own config stays as saved
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
            labels = model.labels_of(batch) if model.hparams.conditioning else batch["label"].long()
            yield labels, model.latents(batch)[:, :, :k], paths


def _source_path(dataset, index: int) -> str:
    """The video file a test item came from (latent caches record it in ``paths``; clip datasets in ``samples``)."""
    path = dataset.paths[index] if hasattr(dataset, "paths") else dataset.samples[index].path
    return str(Path(path).resolve())


def label_set_classes(run: str | Path | Run, model: VideoDiffusion) -> tuple[dict[str, list[str] | None], str]:
    """Class names of each conditioning set of a multi-set run, and the set ``samples.txt`` lists.

    ``samples.txt`` lists the data's own label set (the one the cache's ``labels`` hold, e.g. the direction of
    Moving MNIST direction) when the model is conditioned on it, else the first conditioning set.

    Args:
        run: the run (:func:`models.run.load_run`), or its checkpoint.
        model: the run's module.
    """
    data_cfg = _opened(run).config.data
    root = Path(str(data_cfg.get("root", "")))
    meta, classes = {}, {}
    cache = root / str(data_cfg.get("val", "val.pt"))  # every split records the same names; val is the smallest
    if cache.is_file():
        meta = torch.load(cache, map_location="cpu", weights_only=True)["meta"]
        classes = dict(meta.get("label_set_classes", {}))
    conditioning = list(model.hparams.conditioning)
    own = meta.get("label_set")
    return {name: classes.get(name) for name in conditioning}, own if own in conditioning else conditioning[0]


def read_label_requests(path: str | Path) -> list[dict[str, str]]:
    """Read a label request file: one clip request per line, ``set=value`` pairs (``digit=7 direction=NE``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a malformed line, naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label request file not found: {path}")
    requests = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pairs = [part.split("=", 1) for part in line.split()]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            raise ValueError(f"{path}:{lineno}: expected 'set=value' pairs such as 'digit=7 direction=NE', got {line!r}")
        requests.append(dict(pairs))
    if not requests:
        raise ValueError(f"{path}: no label requests")
    return requests


def _multi_set_labels(model: VideoDiffusion, classes: Mapping[str, list[str] | None], num_samples: int,
                      requests: Sequence[Mapping[str, str]] | None) -> dict[str, list[int]]:
    """Per-set labels of every clip: the balanced grid over all sets, or the requests cycled (a set a request
    leaves out is null: free)."""
    sizes = model.label_sizes
    if not requests:
        return label_sets.balanced_grid(sizes, num_samples)
    parsed = [label_sets.parse_request(request, classes, sizes) for request in requests]
    return {name: [parsed[i % len(parsed)][name] for i in range(num_samples)] for name in sizes}


def generate_to_folder(
    ckpt_path: str | Path | Run,
    out_dir: str | Path,
    num_samples: int,
    labels: Sequence[int] | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    guidance_scale: float | Mapping[str, float] | None = None,
    eta: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    autoencoder_path: str | None = None,
    device: str = "cpu",
    grey: bool = False,
    progress: bool = True,
    requests: Sequence[Mapping[str, str]] | None = None,
    first_frame_from: str | Path | Run | None = None,
    first_frame_guidance: float | Mapping[str, float] | None = None,
    frame_guidance: float = 1.0,
) -> Path:
    """Sample ``num_samples`` clips with the checkpoint's EMA weights and write them to ``out_dir``.

    Args:
        ckpt_path: a video diffusion checkpoint (its run folder holds ``config.yaml``), or the run already opened
            with :func:`models.run.load_run`.
        out_dir: output folder (created).
        num_samples: clips to write (>= 1).
        labels: classes to cycle through (clip i gets ``labels[i % len(labels)]``); None: every class in turn.
            Ignored with real conditioning frames (the test-split clips' labels are used).
        steps, sampler, guidance_scale, eta: override the run's ``model.sampling`` (None: keep); ``guidance_scale``
            may give one scale per label set (:func:`models.diffusion.denoising.guided_prediction`).
        seed: seeds the sampler; clip i's noise depends on (seed, batch_size) only (with ``first_frame_from``, the
            image stage draws from the same generator first in every batch).
        batch_size: clips sampled at once.
        autoencoder_path: replaces the run's ``model.autoencoder_path`` (and the first-frame model's).
        device: ``cpu`` or ``cuda``.
        grey: average the decoded RGB channels and write grey clips, in the real data's exact format, for data that
            is grey (Moving MNIST): a decoder's small channel differences then do not tint the clips.
        progress: show a progress bar over clips.
        requests: for a model conditioned on several label sets: what each clip should show, e.g.
            ``[{"digit": "7", "direction": "NE"}]`` (class names or indices; cycled over the clips; a set left out
            is free). None: a balanced grid, every combination of the sets equally often
            (:func:`models.diffusion.labels.balanced_grid`). ``labels`` is for one-set models.
        first_frame_from: an image-stage checkpoint that draws every clip's first frame from noise, asked for the
            clip's labels of its sets, for a video stage trained given one frame (``model.num_cond_frames=1``):
            factorized generation as Emu Video (:mod:`models.diffusion.factorized`). The clips' labels are then
            asked for (balanced grid or ``requests``) instead of taken from the test split, and every frame is
            generated. None: with ``num_cond_frames`` > 0 the first frames come from the run's test split.
        first_frame_guidance: the image stage's classifier-free guidance (None: its run's default); ``steps``,
            ``sampler`` and ``eta`` apply to both stages.
        frame_guidance: guidance over the given frames (1: none), for a video stage trained with
            ``model.cond_frame_dropout`` (:func:`models.diffusion.denoising.guided_prediction`).

    Returns:
        The ``samples.txt`` written (``videos/NNNNN.mp4 label`` lines); ``classes.txt`` goes beside it when the
        run's data names its classes, and with frame conditioning ``reference.txt`` lists the real clips that were
        continued (absolute paths, same order), for paired metrics against the ground truth. A multi-set model also
        writes ``samples_<set>.txt`` and ``classes_<set>.txt`` for every set (a null label is written as -1), and
        its grid has one row per class of the first set and one column per class of the second.

    Raises:
        ValueError: ``num_samples`` < 1, a label outside [0, num_classes), a first-frame model that does not fit
            (:func:`models.diffusion.factorized.open_first_frame_model`), or ``frame_guidance`` for a model without
            given frames or trained without ``cond_frame_dropout``.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples={num_samples} and batch_size={batch_size} must be >= 1")
    run = _opened(ckpt_path)  # opened once: the model, its classes and its conditioning clips all come from it
    model = load_model(run, autoencoder_path, device)
    image = (open_first_frame_model(first_frame_from, model, device, autoencoder_path)
             if first_frame_from is not None else None)
    real_frames = bool(model.hparams.num_cond_frames) and image is None  # the first frames from the test split
    if frame_guidance != 1.0 and not (model.hparams.num_cond_frames and model.hparams.get("cond_frame_dropout")):
        raise ValueError(f"frame_guidance={frame_guidance} needs a video stage given frames (model.num_cond_frames) "
                         f"and trained with model.cond_frame_dropout > 0; {run.ckpt} is not")
    classes, listed, wanted = _requested_labels(run, model, num_samples, labels, requests, real_frames)
    multi = bool(model.hparams.conditioning)
    sizes = model.label_sizes  # {"label": n} for a one-set model
    conditions = _condition_batches(run, model, batch_size) if real_frames else None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    written: dict[str, list[int]] = {name: [] for name in sizes}  # per set; -1: null (free) or unconditional
    lines: list[str] = []
    references: list[str] = []
    clips: list[torch.Tensor] = []  # the clips of grid.gif (see _grid) and their labels
    clip_labels: dict[str, list[int]] = {name: [] for name in sizes}
    bar = tqdm(total=num_samples, desc="clips", unit="clip", disable=not progress)
    while len(lines) < num_samples:
        n = min(batch_size, num_samples - len(lines))
        cond_latents = None
        if conditions is not None:
            batch_labels, cond_latents, paths = next(conditions)
            batch_labels = batch_labels if multi else {"label": batch_labels}
            n = min(n, len(cond_latents))
            batch_labels = {name: value[:n] for name, value in batch_labels.items()}
            cond_latents = cond_latents[:n]
            references += [f"{path} {int(label)}" for path, label in zip(paths[:n], batch_labels[listed].tolist())]
        else:
            start = len(lines)
            batch_labels = {name: torch.tensor(wanted[name][start : start + n], device=model.device) for name in sizes}
        model_labels = batch_labels if multi else (batch_labels["label"] if sizes["label"] > 0 else None)
        if image is not None:  # the image stage draws frame 1 (same sampler settings, its own guidance)
            cond_latents = first_frames(image, batch_labels, generator, first_frame_guidance, sampler=sampler,
                                        num_inference_steps=steps, eta=eta)
        videos = model.generate(model_labels, num_samples=n, cond_latents=cond_latents, generator=generator,
                                sampler=sampler, num_inference_steps=steps, guidance_scale=guidance_scale, eta=eta,
                                frame_guidance_scale=frame_guidance)
        if grey:
            videos = videos.float().mean(dim=1, keepdim=True).round().to(torch.uint8)  # (b 1 t h w)
        values = {name: [int(v) if int(v) < sizes[name] else -1 for v in batch_labels[name].tolist()]
                  for name in sizes}
        lines += write_clips(out_dir, videos, values[listed], model.hparams.fps, start_index=len(lines))
        for name in sizes:
            written[name] += values[name]
        for i, video in enumerate(videos):
            label = {name: values[name][i] for name in sizes}
            if _in_grid(label, clip_labels, multi, len(clips)):
                clips.append(video)
                for name in sizes:
                    clip_labels[name].append(label[name])
        bar.update(n)
    bar.close()
    tiles, nrow = _grid(clips, clip_labels, multi)
    (out_dir / GRID_FILE).write_bytes(gif_bytes(tiles, model.hparams.fps, nrow=nrow))
    return _write_lists(out_dir, lines, written, references, classes, listed, multi)


def _requested_labels(run: Run, model: VideoDiffusion, num_samples: int, labels: Sequence[int] | None,
                      requests: Sequence[Mapping[str, str]] | None,
                      real_frames: bool) -> tuple[dict, str, dict[str, list[int]] | None]:
    """What :func:`generate_to_folder` asks each clip to show (``real_frames``: the model's given frames, and
    their labels, come from the test split).

    Returns:
        The class names of each label set (None where the data names none), the set ``samples.txt`` lists, and the
        label of every clip per set; None with real conditioning frames, where the test-split clips' labels are
        used.

    Raises:
        ValueError: ``labels`` for a model conditioned on label sets, ``requests`` for one that is not, or a label
            outside [0, num_classes).
    """
    multi = bool(model.hparams.conditioning)
    if multi and labels is not None:
        raise ValueError(f"this model is conditioned on label sets {list(model.hparams.conditioning)}: ask with "
                         "--digit 7 --direction NE (requests), not --labels")
    if not multi and requests:
        raise ValueError("label requests (--digit 7 --direction NE) need a model conditioned on label sets "
                         "(model.conditioning); this one takes --labels")
    if multi:
        classes, listed = label_set_classes(run, model)
    else:
        num_classes = model.label_sizes["label"]
        labels = list(range(max(num_classes, 1))) if labels is None else [int(label) for label in labels]
        bad = [label for label in labels if not 0 <= label < max(num_classes, 1)]
        if bad or not labels:
            raise ValueError(f"labels={labels} must be non-empty and in [0, {num_classes})")
        names = dataset_class_names(run.config.data) if num_classes > 0 else None
        classes, listed = {"label": names}, "label"
    if real_frames:
        return classes, listed, None
    if multi:
        return classes, listed, _multi_set_labels(model, classes, num_samples, requests)
    return classes, listed, {"label": [labels[i % len(labels)] for i in range(num_samples)]}


def _write_lists(out_dir: Path, lines: list[str], written: dict[str, list[int]], references: list[str],
                 classes: dict[str, list[str] | None], listed: str, multi: bool) -> Path:
    """``samples.txt`` and what goes beside it (see :func:`generate_to_folder`); returns ``samples.txt``."""
    list_file = out_dir / LIST_FILE
    list_file.write_text("\n".join(lines) + "\n")
    if references:  # the real clips whose first k frames were given: the ground truth of the continuation
        (out_dir / REFERENCE_FILE).write_text("\n".join(references) + "\n")
    if classes.get(listed) is not None:  # beside samples.txt, so scripts/evaluate_videos.py finds the names
        write_class_names(out_dir, classes[listed])
    if multi:  # one list per set, e.g. samples_digit.txt, for evaluate_videos.py --digit-labels
        paths = [line.rsplit(maxsplit=1)[0] for line in lines]
        for name, values in written.items():
            (out_dir / f"samples_{name}.txt").write_text("".join(f"{p} {v}\n" for p, v in zip(paths, values)))
            if classes.get(name):
                (out_dir / f"classes_{name}.txt").write_text("\n".join(classes[name]) + "\n")
    return list_file


def _in_grid(label: dict[str, int], kept: dict[str, list[int]], multi: bool, count: int) -> bool:
    """Whether a clip with ``label`` joins the grid clips ``kept`` so far (see :func:`_grid`)."""
    names = list(label)
    if multi and len(names) > 1:  # the first clip of each combination of the first two sets
        key = tuple(label[name] for name in names[:2])
        return key not in set(zip(*[kept[name] for name in names[:2]]))
    value = label[names[0]]
    if value == -1:
        return count < MAX_GRID_CLIPS
    return kept[names[0]].count(value) < GRID_PER_LABEL


def _grid(clips: list[torch.Tensor], labels: dict[str, list[int]], multi: bool) -> tuple[torch.Tensor, int]:
    """Tiles and row length of grid.gif: one row per class of the first set and one column per class of the second
    (its first clip) for a model conditioned on two or more sets; one row per class, its first 8 clips, for one set;
    the first 64 clips, 8 a row, unconditional."""
    names = list(labels)
    if multi and len(names) > 1:
        first: dict[tuple[int, ...], torch.Tensor] = {}
        for i, clip in enumerate(clips):
            first.setdefault(tuple(labels[name][i] for name in names[:2]), clip)
        rows = sorted({key[0] for key in first})
        cols = sorted({key[-1] for key in first}) if len(names) > 1 else [None]
        blank = torch.zeros_like(clips[0])
        return torch.stack([first.get((r, c) if c is not None else (r,), blank) for r in rows for c in cols]), len(cols)
    if all(label == -1 for label in labels[names[0]]):
        return torch.stack(clips[:MAX_GRID_CLIPS]), 8
    return rows_by_label(clips, labels[names[0]], GRID_PER_LABEL), GRID_PER_LABEL
