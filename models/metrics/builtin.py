"""The built-in metrics and needs of :mod:`models.metrics.registry`, in the order of the docs/metrics.md table.

Imported by :mod:`models.metrics.registry` (import that, not this module). Each need's resolver gives
the reason ``evaluate_videos`` reports under ``skipped`` when an evaluation lacks it; the components
(``classifier``, ``frame_reader``, ``encoder``, ``i3d``) are callables (:mod:`models.metrics.learned`), built from
paths by the caller (:func:`models.metrics.evaluate.evaluate_videos`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.metrics import consistency, fvd, identity, motion, paired, temporal
from models.metrics.learned import network_name, network_source, predictions
from models.metrics.metric import Batch, Inputs, Unmet, need, register

# ----------------------------------------------------------------------------------------------------------- needs


@need("two_frames", "clips of at least 2 frames (a temporal metric compares frames)")
def _two_frames(inputs: Inputs) -> int:
    if inputs.videos.num_frames < 2:  # single images (an image stage's samples): nothing temporal to measure
        raise Unmet(f"the clips have {inputs.videos.num_frames} frame; it needs at least 2")
    return inputs.videos.num_frames


@need("reference", "reference videos paired one-to-one, in order, with the scored ones (--reference)")
def _reference(inputs: Inputs) -> Any:
    if inputs.reference is None:
        raise Unmet("needs --reference videos")
    return inputs.reference


@need("labels", "a label per clip (a list file or class folders)")
def _labels(inputs: Inputs) -> list[int]:
    if inputs.videos.labels is None:
        raise Unmet("the videos carry no labels (use a list file or class folders)")
    return inputs.videos.labels


@need("compass_classes", "class names that are compass points (E, NE, ...): each label's direction angle")
def _compass_classes(inputs: Inputs) -> np.ndarray:
    names = inputs.videos.class_names
    if names is None:
        raise Unmet("no class names: put classes.txt beside the list file or pass --classes FILE")
    try:
        return motion.compass_angles(names)
    except ValueError as error:
        raise Unmet(str(error)) from None


@need("classifier", "a clip classifier, (b c t h w) -> (b k) logits (--classifier)", label="<run>")
def _classifier(inputs: Inputs) -> Any:
    classify = inputs.component("classifier")
    if classify is None:
        raise Unmet("needs --classifier: a recognition checkpoint of this framework")
    return classify


@need("clip_features", "the classifier's pre-logit clip features, (b c t h w) -> (b d) (its `features`)")
def _clip_features(inputs: Inputs) -> fvd.FeatureExtractor:
    classify = inputs["classifier"]
    features = getattr(classify, "features", None)
    if not callable(features):
        raise Unmet(f"{network_name(classify, 'classifier')} has no features(video) -> (b d) method for FVD")
    protocol = getattr(classify, "feature_protocol", None) or getattr(classify, "protocol", None) or {}
    return fvd.FeatureExtractor(features, network_name(classify, "classifier"), protocol)


@need("i3d_weights", "an I3D feature network for FVD, not loaded yet (--i3d)")
def _i3d_weights(inputs: Inputs) -> Any:
    if inputs.components.get("i3d") is None:
        raise Unmet("needs --i3d (a local I3D TorchScript file) and --reference")
    return inputs.components["i3d"]


@need("i3d_frames", f"clips of at least {fvd.I3D_NUM_FRAMES} frames (StyleGAN-V's FVD)")
def _i3d_frames(inputs: Inputs) -> int:
    frames = (inputs.reference if inputs.reference is not None else inputs.videos).num_frames
    if frames < fvd.I3D_NUM_FRAMES:  # known before any clip is decoded: skip, don't fail later
        raise Unmet(f"clips have {frames} frames; StyleGAN-V's FVD takes {fvd.I3D_NUM_FRAMES} consecutive frames "
                    "per clip")
    return frames


@need("i3d", "the I3D feature network, loaded (a clip feature extractor, (b c t h w) -> (b 400))", label="i3d")
def _i3d(inputs: Inputs) -> Any:
    if inputs.components.get("i3d") is None:
        raise Unmet("needs --i3d (a local I3D TorchScript file) and --reference")
    return inputs.component("i3d")


@need("encoder", "an image encoder, (n c h w) -> (n d) per frame (--encoder)", label="<encoder>")
def _encoder(inputs: Inputs) -> Any:
    encoder = inputs.component("encoder")
    if encoder is None:
        raise Unmet("needs --encoder: a local CLIP/DINO TorchScript file or a checkpoint of ours (no weights are "
                    "downloaded)")
    return encoder


@need("frame_reader", "a per-frame classifier, (n c 1 h w) -> (n k) logits (--digit-classifier)", label="<run>")
def _frame_reader(inputs: Inputs) -> Any:
    read = inputs.component("frame_reader")
    if read is None:
        raise Unmet("needs --digit-classifier: a per-frame recognition checkpoint (train.py "
                    "experiment=mmnist_frame_digit)")
    identity.check_per_frame(read)
    identity.segments_of(inputs.videos.num_frames, inputs.cuts)  # bad cuts fail before any decoding
    return read


@need("cuts", "frame indices where a new slide starts (--cuts; none: the clip is one segment)")
def _cuts(inputs: Inputs) -> tuple[int, ...]:
    return inputs.cuts


@need("digit_labels", "each clip's digit, in the per-frame reader's classes (--digit-labels, or the videos' labels)")
def _digit_labels(inputs: Inputs) -> list[int]:
    read = inputs["frame_reader"]
    videos = inputs.digit_set if inputs.digit_set is not None else inputs.videos
    num_classes = getattr(read, "num_classes", None)
    names = getattr(read, "class_names", None) or ([str(k) for k in range(num_classes)] if num_classes else None)
    if videos.labels is None:
        raise Unmet("the videos carry no labels")
    if videos.class_names is not None and names is not None and list(videos.class_names) != names:
        raise Unmet(f"the videos' classes {list(videos.class_names)[:4]}... are not the classifier's {names[:4]}...")
    if videos.class_names is None and num_classes is not None and max(videos.labels) >= num_classes:
        raise Unmet(f"labels reach {max(videos.labels)}, beyond the classifier's {num_classes} classes")
    return videos.labels


# --------------------------------------------------------------------------------------- temporal and paired metrics

_VBENCH = "Huang et al., VBench (CVPR 2024)"
_LAI = ("Lai et al., Learning Blind Video Temporal Consistency (ECCV 2018); evaluate_WarpError.py of "
        "fast_blind_video_consistency")


@register("temporal_flickering", group="temporal", kind="frames", needs=("two_frames",), better="higher",
          value_range="[0, 1]",
          note="VBench (255 − mean|I_t+1 − I_t|)/255 on uint8 frames; only meaningful on static content",
          source=f"{_VBENCH}, vbench/temporal_flickering.py",
          formula="VBench: `(255 − mean_t mean_p abs(I_t+1 − I_t)) / 255` on uint8 frames",
          comparability="none; only meaningful on static content (VBench filters moving clips first, we do not)")
def _temporal_flickering(batch: Batch, per_frame: bool) -> torch.Tensor:
    return temporal.temporal_flickering(batch.video, per_frame=per_frame)


@register("warp_error_dis", group="temporal", kind="frames", needs=("two_frames",), better="lower",
          value_range="≥ 0",
          note="Lai et al. 2018 warping error, OpenCV DIS flow (not FlowNet2) computed on the video itself",
          source=_LAI,
          formula="Lai et al. 2018: `Σ M·‖O_t − W(O_t+1)‖² / Σ M` per frame pair (pixels in [0, 1], channels "
                  "averaged), mean over pairs as in Lai's released script; M from the forward–backward check",
          comparability="OpenCV DIS flow on the video itself, not FlowNet2: **not comparable** to published values")
def _warp_error_dis(batch: Batch, per_frame: bool) -> torch.Tensor:
    return temporal.warp_error(batch.video, per_frame=per_frame)


@register("warp_error_dis_refflow", group="paired", kind="frames", needs=("reference",), better="lower",
          value_range="≥ 0",
          note=("Lai et al. 2018 warping error, DIS flow and occlusion mask from the reference video, without Lai's "
                "motion-boundary mask: not comparable with Lai's numbers"),
          source=_LAI,
          formula="the same, with flow and occlusion mask from `--reference`, without Lai's motion-boundary mask",
          comparability=("DIS instead of FlowNet2, and no motion-boundary mask: not comparable with Lai et al.'s "
                         "numbers"))
def _warp_error_dis_refflow(batch: Batch, per_frame: bool) -> torch.Tensor:
    return temporal.warp_error(batch.video, reference=batch.reference, per_frame=per_frame)


@register("warp_error_dis_refflow_lai", group="paired", kind="frames", needs=("reference",), better="lower",
          value_range="≥ 0",
          note=("Lai et al. 2018 warping error with their full mask (occlusion and motion boundaries), flow from the "
                "reference; DIS instead of FlowNet2"),
          source=f"{_LAI} (utils.detect_occlusion)",
          formula="Lai's protocol: flow from `--reference`, and their full mask (forward-backward check **and** motion "
                  "boundaries, `utils.detect_occlusion` of fast_blind_video_consistency)",
          comparability="DIS instead of FlowNet2")
def _warp_error_dis_refflow_lai(batch: Batch, per_frame: bool) -> torch.Tensor:
    return temporal.warp_error(batch.video, reference=batch.reference, per_frame=per_frame, mask_motion_boundaries=True)


@register("dynamic_degree_dis", group="temporal", kind="frames", needs=("two_frames",), better="none",
          value_range="[0, 1]", clip_mean=False,
          note=("VBench dynamic degree with OpenCV DIS flow (not RAFT): fraction of clips judged dynamic; "
                "curve: top-5% flow magnitude (pixels)"),
          source=f"{_VBENCH}, vbench/dynamic_degree.py",
          formula="VBench: per pair (≈8 fps), mean of the top 5 % of ‖flow‖; moving if > 6·min(H,W)/256; dynamic if "
                  "≥ round(4T/16) pairs move. Value: fraction of dynamic clips",
          comparability="DIS instead of RAFT: not comparable")
def _dynamic_degree_dis(batch: Batch, per_frame: bool) -> torch.Tensor:
    # The one per-frame metric whose clip value is not the mean of its frames: a yes/no rule on the pairs.
    return temporal.dynamic_degree(batch.video, fps=batch.inputs.videos.fps, per_frame=per_frame)


@register("motion_smoothness_flowinterp", group="temporal", kind="frames", needs=("two_frames",), better="higher",
          value_range="[0, 1]",
          note="VBench motion smoothness with DIS flow interpolation (not AMT): (255 − MAE)/255 of rebuilt odd frames",
          source=f"{_VBENCH}, vbench/motion_smoothness.py",
          formula="VBench: drop odd frames, rebuild each from its neighbours by warping both halfway along DIS flow, "
                  "`(255 − MAE)/255`",
          comparability="flow interpolation instead of AMT: not comparable")
def _motion_smoothness_flowinterp(batch: Batch, per_frame: bool) -> torch.Tensor:
    return temporal.motion_smoothness(batch.video, per_frame=per_frame)


@register("tof_farneback", group="paired", kind="frames", needs=("reference",), better="lower",
          value_range="≥ 0 (pixels)",
          note="TecoGAN tOF: mean |OF(ref) − OF(video)|, OpenCV Farneback at the official parameters",
          source="Chu et al., TecoGAN (ACM ToG 2020), official metrics.py",
          formula="TecoGAN: `mean_p ‖OF(b_t−1, b_t) − OF(g_t−1, g_t)‖₂`, Farneback (0.5, 3, 15, 3, 5, 1.2, 0) on grey "
                  "frames",
          comparability="same flow as the official code, but all frames and the whole frame are used (the official "
                        "script crops to multiples of 32 px and skips 2 frames at each end)")
def _tof_farneback(batch: Batch, per_frame: bool) -> torch.Tensor:
    return paired.tof(batch.video, batch.reference, per_frame=per_frame)


_OPENSTL = "the Moving MNIST convention as tabulated by OpenSTL (Tan et al., NeurIPS 2023), openstl/core/metrics.py"


@register("mse", group="paired", kind="frames", needs=("reference",), better="lower", value_range="≥ 0",
          note="squared error summed over a frame's pixels (Moving MNIST convention), mean over frames",
          source=_OPENSTL,
          formula="squared error summed over a frame's pixels (channels averaged), mean over frames: the Moving MNIST "
                  "convention",
          comparability="none")
def _mse(batch: Batch, per_frame: bool) -> torch.Tensor:
    return paired.mse(batch.video, batch.reference, per_frame=per_frame)


@register("mae", group="paired", kind="frames", needs=("reference",), better="lower", value_range="[0, h·w]",
          note="absolute error summed over a frame's pixels (Moving MNIST convention), mean over frames",
          source=_OPENSTL,
          formula="absolute error summed over a frame's pixels (channels averaged), mean over frames: the Moving MNIST "
                  "convention, as `mse` (OpenSTL)",
          comparability="none")
def _mae(batch: Batch, per_frame: bool) -> torch.Tensor:
    return paired.mae(batch.video, batch.reference, per_frame=per_frame)


@register("psnr", group="paired", kind="frames", needs=("reference",), better="higher",
          value_range="dB; inf if a frame is identical",
          note="mean of per-frame PSNR (dB), data_range 1 (torchmetrics)",
          source="torchmetrics.functional.image.peak_signal_noise_ratio",
          formula="mean of per-frame PSNR, data_range 1 (torchmetrics)", comparability="none")
def _psnr(batch: Batch, per_frame: bool) -> torch.Tensor:
    return paired.psnr(batch.video, batch.reference, per_frame=per_frame)


@register("ssim", group="paired", kind="frames", needs=("reference",), better="higher", value_range="[−1, 1]",
          note="mean of per-frame SSIM, data_range 1, Gaussian 11×11 σ=1.5 (torchmetrics)",
          source="Wang et al., SSIM (IEEE TIP 2004); torchmetrics.functional.image.structural_similarity_index_measure",
          formula="mean of per-frame SSIM, data_range 1, Gaussian 11×11, σ 1.5, map over every pixel (torchmetrics)",
          comparability="differs from scikit-image/OpenSTL (which crop the border) in the third decimal: compare at "
                        "two decimals")
def _ssim(batch: Batch, per_frame: bool) -> torch.Tensor:
    return paired.ssim(batch.video, batch.reference, per_frame=per_frame)


# ------------------------------------------------------------------------------------------------------------ FVD


def _fvd_features(batch: Batch, extractor: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return extractor(batch.video), extractor(batch.reference)  # fake (b d), real (b d)


def _fvd_reduce(component: str) -> Any:
    def reduce(inputs: Inputs, fake: torch.Tensor, real: torch.Tensor) -> tuple[float, dict[str, Any]]:
        extractor = inputs[component]
        real, fake = real.double().numpy(), fake.double().numpy()
        return fvd.fvd(real, fake), {**getattr(extractor, "protocol", {}), "num_real": len(real),
                                     "num_fake": len(fake)}

    return reduce


def _fvd_note(component: str) -> Any:
    return lambda inputs: (f"Fréchet distance of {network_name(inputs[component], component)} features; mostly "
                           "per-frame quality, read it beside a temporal metric")


_FVD_SOURCE = ("Unterthiner et al., FVD (2018); StyleGAN-V protocol (Skorokhodov et al., CVPR 2022), "
               "src/metrics/frechet_video_distance.py")


@register("fvd[i3d]", key="fvd[{i3d}]", group="fvd", kind="set", needs=("i3d_weights", "reference", "i3d_frames"),
          better="lower", value_range="≥ 0", note=_fvd_note("i3d"), reduce=_fvd_reduce("i3d"), source=_FVD_SOURCE,
          formula="`‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^½)` in float64 on I3D logits, StyleGAN-V protocol "
                  "(16 frames, 224², [−1, 1])",
          comparability="comparable only with the real `i3d_torchscript.pt` **and** the same clip count, length and "
                        "real set; the protocol is written beside the value. Frames: the first 16 of every clip "
                        "(StyleGAN-V draws a random 16-frame window per real video), so a real set of longer videos "
                        "gives a different μ_r, Σ_r; clips shorter than 16 frames put it under `skipped`")
def _fvd_i3d(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    return _fvd_features(batch, batch["i3d"])


@register("fvd[classifier]", key="fvd[{classifier}]", group="fvd", kind="set",
          needs=("classifier", "reference", "clip_features"), quiet=("classifier",), better="lower", value_range="≥ 0",
          note=_fvd_note("clip_features"), reduce=_fvd_reduce("clip_features"),
          source=f"{_FVD_SOURCE}; features of a recognition run of this framework",
          table_key="fvd[timesformer:<run>]",
          formula="the same Fréchet distance on our recognition checkpoint's pre-logit features",
          comparability="our own extractor: **never comparable** to published FVD")
def _fvd_classifier(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    return _fvd_features(batch, batch["clip_features"])


# ------------------------------------------------------------------------------------------ consistency and accuracy


@register("feature_consistency", key="feature_consistency[{encoder}]", group="consistency", needs=("encoder",),
          better="higher", value_range="[0, 1]",
          note="VBench subject/background consistency formula on this encoder's per-frame features",
          source=f"{_VBENCH}, vbench/subject_consistency.py and background_consistency.py",
          formula="VBench subject/background: `mean_t≥2 ½[max(0, cos(f_t−1, f_t)) + max(0, cos(f_1, f_t))]`",
          comparability="equals VBench's only with DINO ViT-B/16 (subject) or CLIP ViT-B/32 (background) weights")
def _feature_consistency(batch: Batch) -> torch.Tensor:
    return consistency.feature_consistency(consistency.frame_features(batch["encoder"], batch.video))


def _dominant_motion(batch: Batch) -> torch.Tensor:
    """(b 2) px/frame, measured once per batch for the three flow-direction keys."""
    return batch.shared("dominant_motion", lambda: motion.dominant_motion(batch.video))


def _direction_protocol(inputs: Inputs) -> dict[str, Any]:
    return {"estimator": "dis", "min_speed_px_per_frame": motion.DEFAULT_MIN_SPEED,
            "classes": dict(zip(inputs.videos.class_names, inputs["compass_classes"].tolist()))}


_DIRECTION = ("two_frames", "labels", "compass_classes")  # single images labelled by direction have no motion
_MOTION_SOURCE = "this project, models/metrics/motion.py (no learned weights; not a published metric)"


@register("flow_direction_accuracy", group="accuracy", needs=_DIRECTION, better="higher",
          value_range="[0, 1]; chance 1/K", protocol=_direction_protocol,
          note=lambda inputs: (f"fraction of clips whose dominant DIS flow (intensity-weighted) lies within "
                               f"±{180 / len(inputs['compass_classes']):g}° of the label's direction and moves ≥ "
                               f"{motion.DEFAULT_MIN_SPEED:g} px/frame; no learned weights"),
          source=_MOTION_SOURCE,
          formula="fraction of labelled clips whose dominant motion (intensity-weighted mean of OpenCV DIS flow over "
                  "all frame pairs) lies within ±180/K° of the label's direction, at ≥ 1 px/frame; angles from the "
                  "dataset's compass class names (`classes.txt` beside the list, or `--classes`)",
          comparability="project-specific, no learned weights; the centroid estimator (`estimator=\"centroid\"`) "
                        "cross-checks it")
def _flow_direction_accuracy(batch: Batch) -> torch.Tensor:
    return motion.direction_hits(_dominant_motion(batch), batch.labels, batch["compass_classes"], per_clip=True)


@register("flow_direction_accuracy_any_speed", group="accuracy", needs=_DIRECTION, quiet=_DIRECTION,
          better="higher", value_range="[0, 1]; chance 1/K", in_table=False,
          note="the same sector test at any speed above 0: the direction of a slow drift counts too",
          source=_MOTION_SOURCE,
          formula="`flow_direction_accuracy` without its 1 px/frame floor: any dominant motion above 0 counts",
          comparability="project-specific, no learned weights")
def _flow_direction_accuracy_any_speed(batch: Batch) -> torch.Tensor:
    return motion.direction_hits(_dominant_motion(batch), batch.labels, batch["compass_classes"], min_speed=0.0,
                                 per_clip=True)


@register("dominant_speed_dis", group="accuracy", needs=_DIRECTION, quiet=_DIRECTION, better="none",
          value_range="≥ 0 (pixels per frame)", in_table=False,
          note="speed of the clip's dominant DIS motion (intensity-weighted mean flow), pixels per frame",
          source=_MOTION_SOURCE,
          formula="‖dominant motion‖ of the clip (intensity-weighted mean of OpenCV DIS flow), pixels per frame",
          comparability="project-specific; reported beside `flow_direction_accuracy` (labelled compass classes)")
def _dominant_speed_dis(batch: Batch) -> torch.Tensor:
    return _dominant_motion(batch).norm(dim=1).double()


@register("classifier_accuracy", key="classifier_accuracy[{classifier}]", group="accuracy",
          needs=("classifier", "labels"), better="higher", value_range="[0, 1]",
          note="fraction of clips the recognition checkpoint assigns to their label",
          source="classifier accuracy of conditional video generation, judged by a recognition run of this framework",
          formula="fraction of labelled clips a recognition checkpoint assigns to their label (\"motion accuracy\" of "
                  "generated clips)",
          comparability="project-specific")
def _classifier_accuracy(batch: Batch) -> torch.Tensor:
    return predictions(batch["classifier"], batch.video) == batch.labels  # bool (b,)


def _frame_predictions(batch: Batch) -> torch.Tensor:
    """int64 (b t): every frame's class, read once per batch for identity and digit accuracy."""
    return batch.shared("frame_predictions", lambda: identity.frame_predictions(batch["frame_reader"], batch.video))


_IDENTITY_SOURCE = ("this project, models/metrics/identity.py: the categorical form of VBench's subject consistency "
                    f"({_VBENCH})")


@register("identity_consistency", key="identity_consistency[{frame_reader}]", group="accuracy",
          needs=("frame_reader", "cuts"), better="higher", value_range="[0, 1]",
          protocol=lambda inputs: {"classifier": network_source(inputs["frame_reader"]), "cuts": list(inputs.cuts)},
          note=lambda inputs: ("fraction of segments"
                               + (f" per slide (cuts at {list(inputs.cuts)})" if inputs.cuts else "")
                               + " whose frames all get one digit from the per-frame classifier; a frozen clip scores "
                               "1: read it with digit_accuracy"),
          source=_IDENTITY_SOURCE,
          formula="fraction of segments (the clip, or each slide with `--cuts`) whose frames all get one class from a "
                  "per-frame classifier (`--digit-classifier`, a run with `data.num_frames=1`)",
          comparability="project-specific; the categorical form of VBench's subject consistency. A frozen clip scores "
                        "1: read it with `digit_accuracy`")
def _identity_consistency(batch: Batch) -> torch.Tensor:
    return identity.identity_consistency(_frame_predictions(batch), batch["cuts"])


@register("digit_accuracy", key="digit_accuracy[{frame_reader}]", group="accuracy",
          needs=("frame_reader", "digit_labels", "cuts"), quiet=("frame_reader",), better="higher",
          value_range="[0, 1]",
          note="fraction of the first segment's frames the per-frame classifier assigns to the clip's label",
          source="this project, models/metrics/identity.py",
          formula="fraction of the first segment's frames the per-frame classifier assigns to the clip's label",
          comparability="project-specific", curve=lambda batch: _digit_accuracy(batch, per_frame=True))
def _digit_accuracy(batch: Batch, per_frame: bool = False) -> torch.Tensor:
    wanted = torch.tensor(batch["digit_labels"][batch.start: batch.start + len(batch)])  # int64 (b,)
    return identity.digit_accuracy(_frame_predictions(batch), wanted, batch["cuts"], per_frame=per_frame)
