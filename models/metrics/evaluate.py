"""Apply every registered metric whose needs are met to a set of videos: the core of ``scripts/evaluate_videos.py``.

The metrics, what each needs and how it reads are registered once in :mod:`models.metrics.registry`
(:func:`models.metrics.registry.register` adds one); this function loads the video sets, offers what it was given as
the registry's :class:`~models.metrics.registry.Inputs`, and loops over the metrics that can run. With the built-in
metrics, what runs depends on what is given:

=====================================  ==================================================================
always                                 ``temporal_flickering``, ``warp_error_dis``, ``dynamic_degree_dis``,
                                       ``motion_smoothness_flowinterp`` (per clip, no reference needed)
``reference``                          ``warp_error_dis_refflow`` (flow from the reference),
                                       ``warp_error_dis_refflow_lai`` (and Lai's motion-boundary mask),
                                       ``tof_farneback``,
                                       ``mse``, ``mae``, ``psnr``, ``ssim`` (clip i paired with reference clip i)
``reference`` + ``i3d``                ``fvd[i3d]`` (StyleGAN-V protocol)
``reference`` + ``classifier``         ``fvd[timesformer:<run>]`` on our recognition model's features
labelled videos with compass classes  ``flow_direction_accuracy`` (no learned weights: the dominant DIS flow lies
                                       in the label's direction sector; ``models.metrics.motion``), the same at any
                                       speed (``flow_direction_accuracy_any_speed``) and ``dominant_speed_dis``
``classifier`` + labelled videos       ``classifier_accuracy[<run>]`` (e.g. motion accuracy of generated clips)
``encoder``                            ``feature_consistency[<encoder>]`` (VBench subject/background formula)
``digit_classifier``                   ``identity_consistency[<run>]`` (every frame of a segment gets one digit)
                                       and, when the videos' classes are its classes, ``digit_accuracy[<run>]``
                                       (``models.metrics.identity``)
=====================================  ==================================================================

Every per-clip metric also keeps each clip's value (``per_clip`` of the result), for confidence intervals.

Metrics whose needs are not met (weights not given, no reference, no labels, ...) are listed under ``skipped`` with
the reason, never faked.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from models.metrics import consistency, fvd, order
from models.metrics.registry import GROUPS, Batch, Inputs, Lazy, plan, report_order
from models.metrics.report import EvaluationResult
from models.metrics.video_set import VideoSet, iter_batches, load_video_set

Network = Any  # a callable (models.metrics.learned), or a local path: str | os.PathLike


def evaluate_videos(
    videos: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    classifier: Network | None = None,
    i3d: Network | None = None,
    encoder: Network | None = None,
    num_frames: int | None = None,
    batch_size: int = 16,
    groups: Collection[str] = GROUPS,
    progress: bool = True,
    classes: str | os.PathLike | None = None,
    start_frame: int = 0,
    digit_classifier: Network | None = None,
    cuts: Collection[int] = (),
    frame_order: str = "forward",
    order_seed: int = 0,
    digit_labels: str | os.PathLike | None = None,
    extra: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Compute every registered metric whose needs are met on a folder or list file of videos.

    The networks are callables on float32 clips in [0, 1] that prepare their input themselves
    (:mod:`models.metrics.learned`); a run of ours becomes one through :mod:`models.recognition.scoring`, which
    ``scripts/evaluate_videos.py`` uses. A local path is accepted too, for callers that pass checkpoints: it is loaded
    when a metric first needs it (a run through that adapter, imported only then; I3D and image-encoder files as
    TorchScript).

    Args:
        videos: the videos to score (list file, folder per class, or flat folder; see :mod:`video_set`).
        reference: optional videos paired one-to-one, in order, with ``videos`` (same count and frames; each pair of
            one size). Clips of different sizes are fine otherwise: per-clip metrics run at each clip's own size.
        classifier: optional clip classifier, ``(b c t h w) -> (b k)`` logits (its ``features`` also give
            ``fvd[<name>]``), or a recognition checkpoint / run folder of this framework.
        i3d: optional I3D clip feature extractor, ``(b c t h w) -> (b 400)``, or its TorchScript file (StyleGAN-V).
        encoder: optional image encoder, ``(n c h w) -> (n d)`` per frame, or a TorchScript file or recognition run.
        num_frames: frames per clip, from the start of each file; None uses all, which must then be equal.
        batch_size: clips decoded and scored at once.
        groups: which metric groups to run, a subset of :data:`GROUPS` (``temporal``: per-clip flow and flicker
            metrics; ``paired``: metrics against ``reference``; ``fvd``; ``accuracy``; ``consistency``).
        progress: show a progress bar.
        classes: a file of class names (one per line, label order) for ``flow_direction_accuracy``; by default the
            names are found beside ``videos`` (see :func:`data.annotations.find_class_names`).
        start_frame: first frame scored in every clip (0-based; the reference too), e.g. ``k`` to score only the
            frames a frame-conditioned model generated after ``k`` given ones.
        digit_classifier: optional per-frame reader, ``(n c 1 h w) -> (n k)`` logits, or a per-frame recognition run
            (trained with ``data.num_frames=1``), for identity consistency and digit accuracy (``accuracy`` group).
        cuts: frame indices (of the scored frames) where a new slide starts, for identity consistency per slide.
        frame_order: a control of :mod:`models.metrics.order` applied to every clip (not the reference) before any
            metric: ``forward`` (default), ``reversed``, ``shuffled`` or ``frozen``; labels are kept.
        order_seed: seed of the ``shuffled`` permutations.
        digit_labels: optional list file of the same videos, in the same order, whose labels are the digits that
            ``digit_accuracy`` checks (e.g. a multi-set sampler's ``samples_digit.txt``, while ``videos`` carries the
            directions that ``flow_direction_accuracy`` checks); class names from ``classes_digit.txt`` beside it.
        extra: values of needs that registered metrics name and :data:`models.metrics.registry.NEEDS` does not.

    Returns:
        The :class:`EvaluationResult`; per-clip metrics are means over clips. Keys are listed per-frame metrics
        first, then per-clip, then set-level ones (:func:`models.metrics.registry.report_order`).

    Raises:
        FileNotFoundError: a given path does not exist.
        ValueError: an unknown group, an empty set, mismatched lengths, or reference and videos that differ in count or
            frames, or a pair of different sizes. Messages name the files.
    """
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"groups={sorted(unknown)} are not metric groups; choose from {GROUPS}")
    if frame_order not in order.FRAME_ORDERS:
        raise ValueError(f"frame_order={frame_order!r} is not one of {order.FRAME_ORDERS}")
    video_set = load_video_set(videos, num_frames, classes=classes, start_frame=start_frame)
    digit_set = _load_digit_labels(digit_labels, video_set)
    reference_set = _load_reference(reference, video_set)
    result = EvaluationResult(protocol={
        "videos": video_set.source, "num_clips": len(video_set), "num_frames": video_set.num_frames,
        "frame_size": ([video_set.height, video_set.width] if len(video_set.sizes) == 1
                       else [list(size) for size in video_set.sizes]), "fps": round(video_set.fps, 3),
        "start_frame": video_set.start_frame, "frame_order": frame_order,
        **({"order_seed": order_seed} if frame_order == "shuffled" else {}),
        "reference": reference_set.source if reference_set else None,
    })
    components = {"classifier": classifier, "frame_reader": digit_classifier, "encoder": encoder, "i3d": i3d}
    inputs = Inputs(video_set, reference_set, digit_set, {name: _component(name, value) for name, value in
                                                          components.items()}, cuts, extra)
    runs, skipped = plan(inputs, groups)
    result.skipped.update(skipped)
    for metric, _ in runs:
        if metric.protocol is not None:
            result.protocol[metric.name] = metric.protocol(inputs)
    if digit_set is not None:
        result.protocol["digit_labels"] = digit_set.source

    outputs: dict[str, list[Any]] = {key: [] for _, key in runs}  # per batch: (b,) values, or a set metric's tuple
    curves: dict[str, list[torch.Tensor]] = {key: [] for metric, key in runs  # (b k) per batch
                                             if metric.kind == "frames" or metric.curve is not None}
    batches = zip(iter_batches(video_set, batch_size), iter_batches(reference_set, batch_size)
                  if reference_set is not None else itertools.repeat((None, None)))
    total = -(-len(video_set) // batch_size) + len(video_set.sizes) - 1  # at most: a size change ends a batch
    shuffle = torch.Generator().manual_seed(order_seed)
    start = 0
    for (video, labels), (ref, _) in tqdm(batches, total=total, desc="evaluating", unit="batch", disable=not progress):
        if frame_order != "forward":
            video = order.reorder(video, frame_order, shuffle)
        batch = Batch(video, ref, labels, start, inputs)
        for metric, key in runs:
            if metric.kind == "frames":
                per_frame = metric.fn(batch, True).double()  # (b k)
                curves[key].append(per_frame)
                outputs[key].append(per_frame.mean(1) if metric.clip_mean else metric.fn(batch, False).double())
            else:
                outputs[key].append(metric.fn(batch))
                if metric.curve is not None:
                    curves[key].append(metric.curve(batch).double())  # (b k)
        start += len(video)

    for metric, key in sorted(runs, key=lambda run: report_order(run[0])):
        note = metric.note_for(inputs)
        if metric.kind == "set":
            value = metric.reduce(inputs, *(torch.cat(parts) for parts in zip(*outputs[key])))
            value, protocol = value if isinstance(value, tuple) else (value, None)
            result.add(key, value, metric.better, note)
            if protocol is not None:
                result.protocol[key] = protocol
            continue
        clips = torch.cat(outputs[key]).double()
        result.add(key, clips.mean().item(), metric.better, note, per_clip=clips.tolist())
        if key in curves:
            result.per_frame[key] = torch.cat(curves[key]).mean(dim=0).tolist()
    return result


def _component(name: str, value: Network | None) -> Any:
    """A network argument as :class:`Inputs` takes it: None, the callable itself, or a path loaded on first use."""
    if value is None or isinstance(value, str) and not value:
        return None
    if callable(value):
        return value
    path = Path(value)
    if name == "i3d":
        return Lazy(lambda: fvd.I3DExtractor(path))
    if name == "encoder" and not (path.exists() and (path.is_dir() or path.suffix == ".ckpt")):
        return Lazy(lambda: consistency.load_image_encoder(path))  # TorchScript (or the not-found error)
    return Lazy(lambda: _from_run(name, path))


def _from_run(name: str, path: Path) -> Any:
    """A run of ours as a network callable, for callers that pass checkpoint paths (eval.py, scripts/claims.py, the
    diffusion callbacks). Imported here, on use, so that ``import models.metrics`` never loads the model families."""
    from models.recognition import scoring

    return scoring.image_encoder_from_run(path) if name == "encoder" else scoring.classifier_from_run(path)


def _load_digit_labels(path: str | os.PathLike | None, video_set: VideoSet) -> VideoSet | None:
    """The digit labels of ``video_set``'s clips from another list file of the same clips, or None.

    Raises:
        ValueError: the file lists other clips, or another count, or no labels (the message names both files).
    """
    if path is None:
        return None
    digit_set = load_video_set(path, video_set.num_frames, start_frame=video_set.start_frame)
    same = [str(Path(a).resolve()) for a in digit_set.paths] == [str(Path(b).resolve()) for b in video_set.paths]
    if not same or digit_set.labels is None:
        raise ValueError(f"--digit-labels {digit_set.source} must list the clips of --videos {video_set.source} in the "
                         "same order, with labels")
    return digit_set


def _load_reference(reference: str | os.PathLike | None, video_set: VideoSet) -> VideoSet | None:
    if reference is None:
        return None
    reference_set = load_video_set(reference, video_set.num_frames, start_frame=video_set.start_frame)
    if len(reference_set) != len(video_set):
        raise ValueError(f"--reference {reference_set.source} has {len(reference_set)} videos but --videos "
                         f"{video_set.source} has {len(video_set)}; paired metrics need one reference per video")
    for path, ref_path, size, ref_size in zip(video_set.paths, reference_set.paths, video_set.frame_sizes,
                                              reference_set.frame_sizes):
        if size != ref_size:
            raise ValueError(f"--reference {ref_path} is {ref_size[0]}×{ref_size[1]} but its pair in --videos, {path}, "
                             f"is {size[0]}×{size[1]}; paired metrics compare frames of one size")
    return reference_set


def summarise(result: EvaluationResult) -> str:
    """One line per metric for the terminal."""
    width = max((len(key) for key in result.metrics), default=0)

    def interval(key: str) -> str:
        ci = result.ci95.get(key)
        return f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""

    lines = [f"{key:<{width}}  {value:10.4f}{interval(key)}  ({result.directions[key]} is better)"
             if result.directions[key] != "none" else f"{key:<{width}}  {value:10.4f}{interval(key)}"
             for key, value in result.metrics.items()]
    lines += [f"skipped {key}: {reason}" for key, reason in result.skipped.items()]
    return "\n".join(lines)


__all__ = ["GROUPS", "evaluate_videos", "summarise"]
