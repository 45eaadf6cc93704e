"""Apply every applicable temporal-consistency metric to a set of videos: the core of ``scripts/evaluate_videos.py``.

What runs depends on what is given:

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

Metrics that need weights which were not given are listed under ``skipped`` with the reason, never faked.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Callable, Collection
from pathlib import Path

import torch
from tqdm.auto import tqdm

from models.metrics import consistency, fvd, identity, motion, order, paired, recognition, temporal
from models.metrics.report import EvaluationResult
from models.metrics.video_set import VideoSet, iter_batches, load_video_set

GROUPS = ("temporal", "paired", "fvd", "accuracy", "consistency")

# key → (metric function (video, reference) -> (b,) or (b k), direction, what it is). Per-clip metrics.
PerClip = Callable[..., torch.Tensor]


def _per_clip_metrics(fps: float) -> dict[str, tuple[PerClip, str, str]]:
    return {
        "temporal_flickering": (
            lambda v, r, per_frame: temporal.temporal_flickering(v, per_frame=per_frame), "higher",
            "VBench (255 − mean|I_t+1 − I_t|)/255 on uint8 frames; only meaningful on static content"),
        "warp_error_dis": (
            lambda v, r, per_frame: temporal.warp_error(v, per_frame=per_frame), "lower",
            "Lai et al. 2018 warping error, OpenCV DIS flow (not FlowNet2) computed on the video itself"),
        "dynamic_degree_dis": (
            lambda v, r, per_frame: temporal.dynamic_degree(v, fps=fps, per_frame=per_frame), "none",
            ("VBench dynamic degree with OpenCV DIS flow (not RAFT): fraction of clips judged dynamic; "
             "curve: top-5% flow magnitude (pixels)")),
        "motion_smoothness_flowinterp": (
            lambda v, r, per_frame: temporal.motion_smoothness(v, per_frame=per_frame), "higher",
            "VBench motion smoothness with DIS flow interpolation (not AMT): (255 − MAE)/255 of rebuilt odd frames"),
    }


def _paired_metrics() -> dict[str, tuple[PerClip, str, str]]:
    return {
        "warp_error_dis_refflow": (
            lambda v, r, per_frame: temporal.warp_error(v, reference=r, per_frame=per_frame), "lower",
            ("Lai et al. 2018 warping error, DIS flow and occlusion mask from the reference video, without Lai's "
             "motion-boundary mask: not comparable with Lai's numbers")),
        "warp_error_dis_refflow_lai": (
            lambda v, r, per_frame: temporal.warp_error(v, reference=r, per_frame=per_frame,
                                                        mask_motion_boundaries=True), "lower",
            ("Lai et al. 2018 warping error with their full mask (occlusion and motion boundaries), flow from the "
             "reference; DIS instead of FlowNet2")),
        "tof_farneback": (
            lambda v, r, per_frame: paired.tof(v, r, per_frame=per_frame), "lower",
            "TecoGAN tOF: mean |OF(ref) − OF(video)|, OpenCV Farneback at the official parameters"),
        "mse": (lambda v, r, per_frame: paired.mse(v, r, per_frame=per_frame), "lower",
                "squared error summed over a frame's pixels (Moving MNIST convention), mean over frames"),
        "mae": (lambda v, r, per_frame: paired.mae(v, r, per_frame=per_frame), "lower",
                "absolute error summed over a frame's pixels (Moving MNIST convention), mean over frames"),
        "psnr": (lambda v, r, per_frame: paired.psnr(v, r, per_frame=per_frame), "higher",
                 "mean of per-frame PSNR (dB), data_range 1 (torchmetrics)"),
        "ssim": (lambda v, r, per_frame: paired.ssim(v, r, per_frame=per_frame), "higher",
                 "mean of per-frame SSIM, data_range 1, Gaussian 11×11 σ=1.5 (torchmetrics)"),
    }


def evaluate_videos(
    videos: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    classifier: str | os.PathLike | None = None,
    i3d: str | os.PathLike | None = None,
    encoder: str | os.PathLike | None = None,
    num_frames: int | None = None,
    batch_size: int = 16,
    groups: Collection[str] = GROUPS,
    progress: bool = True,
    classes: str | os.PathLike | None = None,
    start_frame: int = 0,
    digit_classifier: str | os.PathLike | None = None,
    cuts: Collection[int] = (),
    frame_order: str = "forward",
    order_seed: int = 0,
    digit_labels: str | os.PathLike | None = None,
) -> EvaluationResult:
    """Compute every applicable metric on a folder or list file of videos.

    Args:
        videos: the videos to score (list file, folder per class, or flat folder; see :mod:`video_set`).
        reference: optional videos paired one-to-one, in order, with ``videos`` (same count and frames; each pair of
            one size). Clips of different sizes are fine otherwise: per-clip metrics run at each clip's own size.
        classifier: optional recognition checkpoint of this framework (``<run>/checkpoints/*.ckpt``).
        i3d: optional I3D TorchScript file for FVD (StyleGAN-V protocol).
        encoder: optional image encoder (TorchScript file or recognition checkpoint) for feature consistency.
        num_frames: frames per clip, from the start of each file; None uses all, which must then be equal.
        batch_size: clips decoded and scored at once.
        groups: which metric groups to run, a subset of :data:`GROUPS` (``temporal``: per-clip flow and flicker
            metrics; ``paired``: metrics against ``reference``; ``fvd``; ``accuracy``; ``consistency``).
        progress: show a progress bar.
        classes: a file of class names (one per line, label order) for ``flow_direction_accuracy``; by default the
            names are found beside ``videos`` (see :func:`data.annotations.find_class_names`).
        start_frame: first frame scored in every clip (0-based; the reference too), e.g. ``k`` to score only the
            frames a frame-conditioned model generated after ``k`` given ones.
        digit_classifier: optional per-frame recognition checkpoint (trained with ``data.num_frames=1``) for
            identity consistency and digit accuracy (part of the ``accuracy`` group).
        cuts: frame indices (of the scored frames) where a new slide starts, for identity consistency per slide.
        frame_order: a control of :mod:`models.metrics.order` applied to every clip (not the reference) before any
            metric: ``forward`` (default), ``reversed``, ``shuffled`` or ``frozen``; labels are kept.
        order_seed: seed of the ``shuffled`` permutations.
        digit_labels: optional list file of the same videos, in the same order, whose labels are the digits that
            ``digit_accuracy`` checks (e.g. a multi-set sampler's ``samples_digit.txt``, while ``videos`` carries the
            directions that ``flow_direction_accuracy`` checks); class names from ``classes_digit.txt`` beside it.

    Returns:
        The :class:`EvaluationResult`; per-clip metrics are means over clips.

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
    metrics = _per_clip_metrics(video_set.fps) if "temporal" in groups else {}
    if video_set.num_frames < 2:  # single images (an image stage's samples): nothing temporal to measure
        for key in metrics:
            result.skipped[key] = f"the clips have {video_set.num_frames} frame; it needs at least 2"
        metrics = {}
    if reference_set is not None and "paired" in groups:
        metrics |= _paired_metrics()
    elif "paired" in groups:
        for key in _paired_metrics():
            result.skipped[key] = "needs --reference videos"

    model = recognition.load_recognition_model(classifier) if classifier else None
    extractors = _fvd_extractors(result, reference_set, model, i3d) if "fvd" in groups else []
    image_encoder = consistency.load_image_encoder(encoder) if encoder and "consistency" in groups else None
    if image_encoder is None and "consistency" in groups:
        result.skipped["feature_consistency"] = ("needs --encoder: a local CLIP/DINO TorchScript file or a checkpoint "
                                                 "of ours (no weights are downloaded)")
    if "accuracy" in groups and model is None:
        result.skipped["classifier_accuracy"] = "needs --classifier: a recognition checkpoint of this framework"
    elif "accuracy" in groups and video_set.labels is None:
        result.skipped[f"classifier_accuracy[{model.name}]"] = "the videos carry no labels (use a list file or class folders)"

    class_angles = _direction_angles(result, video_set) if "accuracy" in groups else None
    digit_model = (_digit_classifier(result, digit_set or video_set, digit_classifier, cuts) if "accuracy" in groups
                   else None)
    identity_key = f"identity_consistency[{digit_model.name}]" if digit_model else None
    digit_key = f"digit_accuracy[{digit_model.name}]" if digit_model else None
    digit_labels = digit_model is not None and digit_key not in result.skipped
    if digit_set is not None:
        result.protocol["digit_labels"] = digit_set.source

    values: dict[str, list[torch.Tensor]] = defaultdict(list)
    curves: dict[str, list[torch.Tensor]] = defaultdict(list)
    features: dict[str, list[torch.Tensor]] = defaultdict(list)
    correct: list[torch.Tensor] = []
    batches = zip(iter_batches(video_set, batch_size),
                  iter_batches(reference_set, batch_size) if reference_set else itertools.repeat((None, None)))
    total = -(-len(video_set) // batch_size) + len(video_set.sizes) - 1  # at most: a size change ends a batch
    shuffle = torch.Generator().manual_seed(order_seed)
    seen = 0
    for (video, labels), (ref, _) in tqdm(batches, total=total, desc="evaluating", unit="batch", disable=not progress):
        if frame_order != "forward":
            video = order.reorder(video, frame_order, shuffle)
        for key, (fn, _, _) in metrics.items():
            per_frame = fn(video, ref, True).double()  # (b k)
            curves[key].append(per_frame)
            # Every per-clip value is the mean of its per-frame values, except dynamic degree's yes/no rule.
            values[key].append(fn(video, ref, False).double() if key == "dynamic_degree_dis" else per_frame.mean(1))
        for extractor in extractors:
            features[f"{extractor.name}/fake"].append(extractor(video))
            features[f"{extractor.name}/real"].append(extractor(ref))
        if image_encoder is not None:
            values[f"feature_consistency[{image_encoder.name}]"].append(
                consistency.feature_consistency(image_encoder.frame_features(video)))
        if model is not None and labels is not None and "accuracy" in groups:
            correct.append(model.logits(video).argmax(dim=-1) == labels)
        if class_angles is not None:
            dominant = motion.dominant_motion(video)  # (b 2) px/frame, measured once for the three keys below
            values["flow_direction_accuracy"].append(motion.direction_hits(dominant, labels, class_angles, per_clip=True))
            values["flow_direction_accuracy_any_speed"].append(
                motion.direction_hits(dominant, labels, class_angles, min_speed=0.0, per_clip=True))
            values["dominant_speed_dis"].append(dominant.norm(dim=1).double())
        if digit_model is not None:
            predictions = identity.frame_predictions(digit_model, video)  # (b t)
            values[identity_key].append(identity.identity_consistency(predictions, cuts))
            if digit_labels:
                wanted = labels if digit_set is None else torch.tensor(digit_set.labels[seen : seen + len(video)])
                values[digit_key].append(identity.digit_accuracy(predictions, wanted, cuts))
        seen += len(video)

    def add_per_clip(key: str, clips: list[torch.Tensor], direction: str, note: str) -> None:
        clips = torch.cat(clips).double()
        result.add(key, clips.mean().item(), direction, note, per_clip=clips.tolist())

    for key, (_, direction, note) in metrics.items():
        add_per_clip(key, values[key], direction, note)
        result.per_frame[key] = torch.cat(curves[key]).mean(dim=0).tolist()
    if image_encoder is not None:
        add_per_clip(f"feature_consistency[{image_encoder.name}]", values[f"feature_consistency[{image_encoder.name}]"],
                     "higher", "VBench subject/background consistency formula on this encoder's per-frame features")
    if class_angles is not None:
        add_per_clip("flow_direction_accuracy", values["flow_direction_accuracy"], "higher",
                     f"fraction of clips whose dominant DIS flow (intensity-weighted) lies within ±{180 / len(class_angles):g}° "
                     f"of the label's direction and moves ≥ {motion.DEFAULT_MIN_SPEED:g} px/frame; no learned weights")
        add_per_clip("flow_direction_accuracy_any_speed", values["flow_direction_accuracy_any_speed"], "higher",
                     "the same sector test at any speed above 0: the direction of a slow drift counts too")
        add_per_clip("dominant_speed_dis", values["dominant_speed_dis"], "none",
                     "speed of the clip's dominant DIS motion (intensity-weighted mean flow), pixels per frame")
    if correct:
        add_per_clip(f"classifier_accuracy[{model.name}]", correct, "higher",
                     "fraction of clips the recognition checkpoint assigns to their label")
    if digit_model is not None:
        slides = f" per slide (cuts at {list(cuts)})" if cuts else ""
        add_per_clip(identity_key, values[identity_key], "higher",
                     f"fraction of segments{slides} whose frames all get one digit from the per-frame classifier; "
                     "a frozen clip scores 1: read it with digit_accuracy")
        if digit_labels:
            add_per_clip(digit_key, values[digit_key], "higher",
                         "fraction of the first segment's frames the per-frame classifier assigns to the clip's label")
    for extractor in extractors:
        real = torch.cat(features[f"{extractor.name}/real"]).double().numpy()
        fake = torch.cat(features[f"{extractor.name}/fake"]).double().numpy()
        key = f"fvd[{extractor.name}]"
        result.add(key, fvd.fvd(real, fake), "lower",
                   f"Fréchet distance of {extractor.name} features; mostly per-frame quality, read it beside a "
                   "temporal metric")
        result.protocol[key] = {**extractor.protocol, "num_real": len(real), "num_fake": len(fake)}
    return result


def _direction_angles(result: EvaluationResult, video_set: VideoSet):
    """The label angles for ``flow_direction_accuracy``, or None (with the reason under ``skipped``)."""
    if video_set.labels is None:
        result.skipped["flow_direction_accuracy"] = "the videos carry no labels (use a list file or class folders)"
        return None
    if video_set.class_names is None:
        result.skipped["flow_direction_accuracy"] = ("no class names: put classes.txt beside the list file or pass "
                                                     "--classes FILE")
        return None
    try:
        angles = motion.compass_angles(video_set.class_names)
    except ValueError as error:
        result.skipped["flow_direction_accuracy"] = str(error)
        return None
    result.protocol["flow_direction_accuracy"] = {
        "estimator": "dis", "min_speed_px_per_frame": motion.DEFAULT_MIN_SPEED,
        "classes": dict(zip(video_set.class_names, angles.tolist()))}
    return angles


def _digit_classifier(result: EvaluationResult, video_set: VideoSet, path: str | os.PathLike | None,
                      cuts: Collection[int]) -> recognition.RecognitionModel | None:
    """The per-frame digit classifier, or None (with the reason under ``skipped``); skips ``digit_accuracy`` when the
    videos' labels are not its classes (by name where both are known, else by count)."""
    if path is None:
        result.skipped["identity_consistency"] = ("needs --digit-classifier: a per-frame recognition checkpoint "
                                                  "(train.py experiment=mmnist_frame_digit)")
        return None
    model = recognition.load_recognition_model(path)
    identity.check_per_frame(model)
    identity.segments_of(video_set.num_frames, cuts)  # bad cuts fail before any decoding
    names = model.class_names or [str(k) for k in range(model.num_classes)]
    if video_set.labels is None:
        result.skipped[f"digit_accuracy[{model.name}]"] = "the videos carry no labels"
    elif video_set.class_names is not None and list(video_set.class_names) != names:
        result.skipped[f"digit_accuracy[{model.name}]"] = (f"the videos' classes {list(video_set.class_names)[:4]}... "
                                                          f"are not the classifier's {names[:4]}...")
    elif video_set.class_names is None and max(video_set.labels) >= model.num_classes:
        result.skipped[f"digit_accuracy[{model.name}]"] = (f"labels reach {max(video_set.labels)}, beyond the "
                                                          f"classifier's {model.num_classes} classes")
    result.protocol["identity_consistency"] = {"classifier": str(model.ckpt_path), "cuts": list(cuts)}
    return model


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


def _fvd_extractors(result: EvaluationResult, reference_set: VideoSet | None,
                    model: recognition.RecognitionModel | None, i3d: str | os.PathLike | None) -> list:
    extractors = []
    too_short = reference_set is not None and reference_set.num_frames < fvd.I3D_NUM_FRAMES
    if i3d and reference_set is not None and too_short:  # known before any clip is decoded: skip, don't fail later
        result.skipped["fvd[i3d]"] = (f"clips have {reference_set.num_frames} frames; StyleGAN-V's FVD takes "
                                      f"{fvd.I3D_NUM_FRAMES} consecutive frames per clip")
    elif i3d and reference_set is not None:
        extractors.append(fvd.I3DExtractor(i3d))
    else:
        result.skipped["fvd[i3d]"] = ("needs --i3d (a local I3D TorchScript file) and --reference" if not i3d
                                      else "needs --reference videos")
    if model is not None and reference_set is not None:
        extractors.append(fvd.RecognitionExtractor(model))
    elif model is not None:
        result.skipped[f"fvd[{model.name}]"] = "needs --reference videos"
    return extractors


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


__all__ = ["evaluate_videos", "summarise"]
