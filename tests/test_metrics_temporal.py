"""Temporal and paired metrics against closed forms, plain reference loops and library implementations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from einops import repeat
from torchmetrics.image import StructuralSimilarityIndexMeasure

from models.metrics.flow import (backward_warp, dis_flow, farneback_flow, grey_frames, motion_boundaries,
                                 occlusion_mask)
from models.metrics.paired import mae, mse, psnr, ssim, tof
from models.metrics.temporal import dynamic_degree, motion_smoothness, temporal_flickering, warp_error

SIZE = 64


def smooth_texture(size: int = 160, seed: int = 0) -> np.ndarray:
    """A smooth random pattern in [0, 1] (float32, (h w)): textured enough for optical flow everywhere."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 2.0)
    return (image - image.min()) / (image.max() - image.min())


def translated_clip(dx: int, dy: int, num_frames: int = 8, seed: int = 0) -> torch.Tensor:
    """(1 1 t 64 64) crops of one texture whose content moves by (dx, dy) pixels per frame (no wrap-around)."""
    image = smooth_texture(seed=seed)
    y0 = x0 = 48
    frames = [image[y0 - k * dy:y0 - k * dy + SIZE, x0 - k * dx:x0 - k * dx + SIZE] for k in range(num_frames)]
    return torch.from_numpy(np.stack(frames))[None, None].to(torch.float64)


def static_clip(num_frames: int = 8, channels: int = 3) -> torch.Tensor:
    """(1 c t 64 64): one textured frame repeated."""
    frame = torch.from_numpy(smooth_texture()[:SIZE, :SIZE])
    colour = torch.stack([frame, frame.flip(0), frame.flip(1)])[:channels]  # (c h w)
    return repeat(colour, "c h w -> 1 c t h w", t=num_frames).contiguous()


def random_video(shape=(2, 3, 6, 32, 32), seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------------------
# Static clips: every metric at its closed-form optimum
# ---------------------------------------------------------------------------------------------------------------
def test_static_clip_scores_are_exact():
    video = static_clip()
    assert temporal_flickering(video).item() == 1.0
    assert warp_error(video).item() == 0.0
    assert motion_smoothness(video).item() == 1.0
    assert dynamic_degree(video, fps=8).item() == 0.0
    assert torch.equal(dynamic_degree(video, fps=8, per_frame=True), torch.zeros(1, 7, dtype=torch.float64))
    assert tof(video, video).item() == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Flow helpers on a known translation
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flow_fn, tolerance", [(dis_flow, 0.1), (farneback_flow, 0.05)])
def test_flow_recovers_known_shift(flow_fn, tolerance):
    dx, dy = 2, 1
    grey = grey_frames(translated_clip(dx, dy))  # (1 t h w) uint8
    flow = flow_fn(grey[0, 0], grey[0, 1])
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    interior = flow[12:-12, 12:-12]
    np.testing.assert_allclose(interior.reshape(-1, 2).mean(0), [dx, dy], atol=tolerance / 4)
    assert np.abs(interior - [dx, dy]).max() < tolerance


def test_backward_warp_integer_flow_is_a_shift():
    image = smooth_texture()[:SIZE, :SIZE]
    flow = np.zeros((SIZE, SIZE, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2  # sample at (x + 3, y - 2)
    warped = backward_warp(image, flow)
    np.testing.assert_array_equal(warped[2:, :-3], image[:-2, 3:])
    np.testing.assert_array_equal(warped[:, -1], warped[:, -2])  # outside: nearest border value
    with pytest.raises(ValueError, match="flow must have shape"):
        backward_warp(image, flow[:-1])


def test_occlusion_mask_closed_form():
    forward = np.zeros((8, 8, 2), np.float32)
    forward[..., 0], forward[..., 1] = 2.0, 1.0
    assert occlusion_mask(forward, -forward).all()  # consistent round trip
    # Backward flow zero: |F_f|² = 5 is not < 0.01 · 5 + 0.5.
    assert not occlusion_mask(forward, np.zeros_like(forward)).any()
    # Round-trip error of 0.6 px: 0.36 < 0.01 (5 + |F_b|²) + 0.5 holds; 0.8 px: 0.64 fails.
    for error, expected in ((0.6, True), (0.8, False)):
        backward = -forward.copy()
        backward[..., 0] += error
        assert occlusion_mask(forward, backward).all() == expected


def plain_motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """Lai et al.'s ``mask2`` written as a loop over pixels: forward differences, zero past the last column/row."""
    h, w, _ = flow.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            total = 0.0
            for c in range(2):
                du = flow[y, x, c] - flow[y, x + 1, c] if x + 1 < w else 0.0
                dv = flow[y, x, c] - flow[y + 1, x, c] if y + 1 < h else 0.0
                total += du**2 + dv**2
            out[y, x] = total > 0.01 * (flow[y, x, 0] ** 2 + flow[y, x, 1] ** 2) + 0.002
    return out


def test_motion_boundaries_match_a_plain_loop_and_mark_the_edge_of_a_moving_square():
    flow = np.zeros((12, 12, 2), np.float32)
    flow[3:7, 4:9] = (2.0, -1.0)  # a square moving over a still background
    boundaries = motion_boundaries(flow)
    np.testing.assert_array_equal(boundaries, plain_motion_boundaries(flow))
    assert boundaries[3:7, 3].all() and boundaries[3:7, 8].all() and not boundaries[4:6, 5:8].any()
    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.normal(0, 0.05, (12, 12, 2)), axis=1).astype(np.float32)
    np.testing.assert_array_equal(motion_boundaries(smooth), plain_motion_boundaries(smooth))
    # The full mask drops the boundary pixels from the forward-backward check's mask, and only those.
    full = occlusion_mask(flow, -flow, mask_motion_boundaries=True)
    np.testing.assert_array_equal(full, occlusion_mask(flow, -flow) & ~boundaries)


def test_grey_frames_use_bt601():
    colours = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5]], dtype=torch.float64)
    video = repeat(colours, "n c -> 1 c n h w", h=2, w=2)
    grey = grey_frames(video)
    assert grey.dtype == np.uint8 and grey.shape == (1, 4, 2, 2)
    np.testing.assert_array_equal(grey[0, :, 0, 0], [76, 150, 29, 128])  # round(255·(0.299, 0.587, 0.114)), 128
    video = random_video()
    rgb = (video * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()  # (b t h w c)
    expected = np.stack([[cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in clip] for clip in rgb])
    np.testing.assert_array_equal(grey_frames(video), expected)


def test_translation_warp_error_is_near_zero():
    video = translated_clip(2, 1)
    grey = grey_frames(video)
    frames = video[0, 0].numpy().astype(np.float32)
    forward = dis_flow(grey[0, 0], grey[0, 1])
    backward = dis_flow(grey[0, 1], grey[0, 0])
    assert occlusion_mask(forward, backward)[8:-8, 8:-8].all()
    warped = backward_warp(frames[1], forward)
    assert np.abs(warped - frames[0])[8:-8, 8:-8].max() < 0.01
    # Whole clip: the strips where new content enters keep a small error; it stays far below the raw difference.
    raw = (video[:, :, 1:] - video[:, :, :-1]).square().mean().item()
    assert warp_error(video).item() < 0.05 * raw
    assert motion_smoothness(video).item() > 0.99


def test_warp_error_with_static_reference_is_mean_squared_frame_difference():
    # Flow on identical frames is exactly 0 and the mask is all ones, so the error is a plain mean over pixels and
    # channels of (O_t − O_{t+1})², averaged over pairs: this pins the normalisation.
    reference = static_clip(num_frames=5)
    video = random_video((1, 3, 5, SIZE, SIZE)).to(torch.float32).to(torch.float64)
    expected = (video[:, :, :-1] - video[:, :, 1:]).square().mean(dim=(1, 3, 4))  # (b t-1)
    torch.testing.assert_close(warp_error(video, reference, per_frame=True), expected, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------------------------------------------
# Dynamic degree: the VBench rule
# ---------------------------------------------------------------------------------------------------------------
def test_dynamic_degree_threshold_and_subsampling():
    # Threshold at 64x64: 6 · 64 / 256 = 1.5 px per kept pair; the clip needs round(4 · T / 16) moving pairs.
    assert dynamic_degree(translated_clip(2, 0), fps=8).item() == 1.0
    assert dynamic_degree(translated_clip(1, 0), fps=8).item() == 0.0
    # 16 fps keeps every 2nd frame: 1 px per frame becomes 2 px per kept pair, over 4 kept frames.
    magnitudes = dynamic_degree(translated_clip(1, 0), fps=16, per_frame=True)
    assert magnitudes.shape == (1, 3)
    torch.testing.assert_close(magnitudes, torch.full((1, 3), 2.0, dtype=torch.float64), atol=0.1, rtol=0)
    assert dynamic_degree(translated_clip(1, 0), fps=16).item() == 1.0
    # No frame-rate factor (current VBench): 2 px per pair is dynamic at 4 fps too.
    assert dynamic_degree(translated_clip(2, 0), fps=4).item() == 1.0


def partly_moving_clip(num_frames: int, moving_pairs: int) -> torch.Tensor:
    """(1 1 t 64 64): the texture moves 3 px per frame for the first ``moving_pairs`` pairs, then holds still."""
    image = smooth_texture()
    shifts = [3 * min(k, moving_pairs) for k in range(num_frames)]
    return torch.from_numpy(np.stack([image[48:48 + SIZE, 48 - s:48 - s + SIZE] for s in shifts]))[None, None]


@pytest.mark.parametrize(("num_frames", "needed"), [(8, 2), (16, 4), (6, 2), (10, 2)])
def test_dynamic_degree_needs_round_4t_over_16_moving_pairs(num_frames, needed):
    assert needed == round(4 * num_frames / 16)
    moved = dynamic_degree(partly_moving_clip(num_frames, needed), fps=8, per_frame=True)[0]
    assert (moved > 1.5).sum().item() == needed  # the clip really has that many moving pairs
    assert dynamic_degree(partly_moving_clip(num_frames, needed), fps=8).item() == 1.0
    assert dynamic_degree(partly_moving_clip(num_frames, needed - 1), fps=8).item() == 0.0


def test_dynamic_degree_counts_every_two_frame_clip_as_dynamic_as_vbench_does():
    # T = 2 kept frames: round(4 * 2 / 16) = 0 moving pairs are needed, so even a still clip is dynamic.
    assert dynamic_degree(static_clip(num_frames=2), fps=8).item() == 1.0
    assert dynamic_degree(static_clip(num_frames=3), fps=8).item() == 0.0  # round(0.75) = 1 pair needed


# ---------------------------------------------------------------------------------------------------------------
# Plain reference implementations
# ---------------------------------------------------------------------------------------------------------------
def test_flicker_matches_numpy_loop():
    video = random_video()
    frames = np.round(video.numpy() * 255).astype(np.float64)  # (b c t h w)
    expected = []
    for clip in frames:
        diffs = [np.mean(np.abs(clip[:, k + 1] - clip[:, k])) for k in range(clip.shape[1] - 1)]
        expected.append((255.0 - np.mean(diffs)) / 255.0)
    np.testing.assert_allclose(temporal_flickering(video).numpy(), expected, rtol=1e-12)
    per_pair = temporal_flickering(video, per_frame=True)
    assert per_pair.shape == (2, 5) and per_pair.dtype == torch.float64
    torch.testing.assert_close(per_pair.mean(dim=1), temporal_flickering(video))


def test_mse_mae_psnr_match_plain_formulas():
    video, reference = random_video(seed=1), random_video(seed=2)
    diff = (video - reference).numpy()  # (b c t h w)
    frame_mse = (diff**2).mean(axis=1).sum(axis=(2, 3))  # (b t): mean over channels, sum over pixels
    np.testing.assert_allclose(mse(video, reference, per_frame=True).numpy(), frame_mse, rtol=1e-12)
    np.testing.assert_allclose(mse(video, reference).numpy(), frame_mse.mean(1), rtol=1e-12)
    frame_mae = np.abs(diff).mean(axis=1).sum(axis=(2, 3))  # (b t): the same convention as mse
    np.testing.assert_allclose(mae(video, reference, per_frame=True).numpy(), frame_mae, rtol=1e-12)
    np.testing.assert_allclose(mae(video, reference).numpy(), frame_mae.mean(1), rtol=1e-12)
    frame_psnr = 10 * np.log10(1.0 / (diff**2).mean(axis=(1, 3, 4)))  # (b t)
    # torchmetrics keeps PSNR's log in float32 precision
    np.testing.assert_allclose(psnr(video, reference, per_frame=True).numpy(), frame_psnr, rtol=1e-6)
    np.testing.assert_allclose(psnr(video, reference).numpy(), frame_psnr.mean(1), rtol=1e-6)


def test_mse_moving_mnist_convention():
    reference = torch.zeros(1, 1, 2, SIZE, SIZE, dtype=torch.float64)
    video = reference.clone()
    video[0, 0, 0, :10, :10] = 1.0  # 100 pixels off by 1 in frame 0, none in frame 1
    assert mse(video, reference, per_frame=True).tolist() == [[100.0, 0.0]]
    assert mse(video, reference).item() == 50.0
    assert mae(video, reference, per_frame=True).tolist() == [[100.0, 0.0]]


def plain_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two (h w) frames from its definition (Wang et al. 2004, eq. 13), with scipy's Gaussian filter:
    sigma 1.5, 11 taps (truncate 3.5), mirrored borders, local statistics E[xy] - E[x]E[y], map averaged over every
    pixel. Written independently of torchmetrics."""
    from scipy.ndimage import gaussian_filter

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=1.5, truncate=3.5, mode="mirror")

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean())


def test_ssim_matches_a_plain_implementation_of_its_definition():
    video, reference = random_video(seed=3), random_video(seed=4)
    video = (0.7 * reference + 0.3 * video).clamp(0, 1)  # similar but not equal
    values = ssim(video, reference, per_frame=True)  # (b t); channels averaged
    for i, k in ((0, 0), (1, 4)):
        expected = np.mean([plain_ssim(video[i, c, k].numpy(), reference[i, c, k].numpy()) for c in range(3)])
        assert values[i, k].item() == pytest.approx(expected, abs=1e-6)  # ssim runs in float32


def test_ssim_is_torchmetrics_module_per_frame():  # the library call we wrap, as configured
    video, reference = random_video(seed=3), random_video(seed=4)
    video = (0.7 * reference + 0.3 * video).clamp(0, 1)  # similar but not equal
    values = ssim(video, reference, per_frame=True)
    assert values.shape == (2, 6)
    module = StructuralSimilarityIndexMeasure(data_range=1.0, gaussian_kernel=True, sigma=1.5, kernel_size=11)
    for i, k in ((0, 0), (1, 4)):
        expected = module(video[i:i + 1, :, k], reference[i:i + 1, :, k])  # float64 module: ssim runs in float32
        torch.testing.assert_close(values[i, k], expected.to(torch.float64), rtol=0, atol=1e-5)
    torch.testing.assert_close(ssim(video, reference), values.mean(dim=1))
    assert ssim(reference, reference).tolist() == pytest.approx([1.0, 1.0])


def plain_tof(video: torch.Tensor, reference: torch.Tensor, tecogan: bool) -> float:
    """tOF of one clip written the way TecoGAN's metrics.py loops: frames cutfr..n-cutfr-1 (cutfr 2) or all, OpenCV
    grey of uint8 RGB, Farneback at (0.5, 3, 15, 3, 5, 1.2, 0), crop_8x8 of each flow, per-pixel L2, means."""
    def grey(clip):  # (c t h w) float [0, 1] -> list of (h w) uint8
        rgb = (clip.expand(3, -1, -1, -1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
        return [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in rgb]

    def crop(flow):  # TecoGAN's crop_8x8, as written there
        h = (flow.shape[0] // 32) * 32
        w = (flow.shape[1] // 32) * 32
        while h > flow.shape[0] - 16:
            h -= 32
        while w > flow.shape[1] - 16:
            w -= 32
        y, x = (flow.shape[0] - h) // 2, (flow.shape[1] - w) // 2
        return flow[y:y + h, x:x + w]

    out, tar = grey(video[0]), grey(reference[0])
    cut = 2 if tecogan else 0
    values = []
    for i in range(cut, len(tar) - cut):
        if i > cut:
            flows = [cv2.calcOpticalFlowFarneback(a[i - 1], a[i], None, 0.5, 3, 15, 3, 5, 1.2, 0) for a in (tar, out)]
            if tecogan:
                flows = [crop(flow) for flow in flows]
            diff = np.absolute(flows[0] - flows[1])
            values.append(np.sqrt(np.sum(diff * diff, axis=-1)).mean())
    return float(np.mean(values))


@pytest.mark.parametrize("tecogan", [False, True])
def test_tof_matches_a_plain_loop_like_tecogans_script(tecogan):
    reference = translated_clip(2, 1, num_frames=9)
    video = translated_clip(1, 0, num_frames=9, seed=3)
    value = tof(video, reference, tecogan_protocol=tecogan)
    assert value.item() == pytest.approx(plain_tof(video, reference, tecogan), rel=1e-6)
    per_pair = tof(video, reference, per_frame=True, tecogan_protocol=tecogan)
    assert per_pair.shape == (1, 4 if tecogan else 8)  # TecoGAN: pairs (2,3) ... (5,6) of 9 frames


def test_tecogan_crop_keeps_the_central_multiple_of_32():
    from models.metrics.paired import tecogan_crop

    assert tecogan_crop(64, 64) == (slice(16, 48), slice(16, 48))
    assert tecogan_crop(100, 180) == (slice(18, 82), slice(10, 170))  # 64 of 100 (96 > 84), 160 of 180
    with pytest.raises(ValueError, match="too small"):
        tecogan_crop(40, 64)


def plain_motion_smoothness(video: torch.Tensor) -> list[float]:
    """Per rebuilt frame of one clip, written out with cv2 calls: odd frame 2j+1 rebuilt from 2j and 2j+2 by
    warping both half-way along DIS flow (Super SloMo's middle-frame flows), averaged, rounded to uint8, scored
    (255 − MAE) / 255 against the real uint8 frame."""
    clip = video[0]  # (c t h w)
    rgb = (clip.expand(3, -1, -1, -1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()  # (t h w 3)
    grey = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in rgb]
    floats = clip.expand(3, -1, -1, -1).permute(1, 2, 3, 0).numpy().astype(np.float32)  # (t h w 3)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = grey[0].shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    scores = []
    for j in range((clip.shape[1] - 1) // 2):
        a, c = 2 * j, 2 * j + 2
        f_ac, f_ca = dis.calc(grey[a], grey[c], None), dis.calc(grey[c], grey[a], None)
        mid_to_a, mid_to_c = 0.25 * (f_ca - f_ac), 0.25 * (f_ac - f_ca)
        warp = [cv2.remap(floats[k], xs + f[..., 0], ys + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                for k, f in ((a, mid_to_a), (c, mid_to_c))]
        rebuilt = np.round(np.clip(0.5 * (warp[0] + warp[1]), 0, 1) * 255.0)
        scores.append((255.0 - np.abs(rebuilt - rgb[2 * j + 1].astype(np.float64)).mean()) / 255.0)
    return scores


def test_motion_smoothness_matches_a_plain_loop():
    video = translated_clip(2, 1, num_frames=8)  # 3 rebuilt frames: 1, 3, 5 (7 has no right neighbour)
    expected = plain_motion_smoothness(video)
    assert len(expected) == 3
    np.testing.assert_allclose(motion_smoothness(video, per_frame=True)[0].numpy(), expected, rtol=0, atol=1e-6)


def test_tof_of_identical_videos_is_zero_and_positive_otherwise():
    video = translated_clip(2, 1)
    assert tof(video, video, per_frame=True).abs().max().item() == 0.0
    assert tof(translated_clip(1, 0), video).item() > 0.5  # flows differ by ~(1, 1) px


def test_grey_and_rgb_copies_agree():
    grey = translated_clip(2, 1, num_frames=5)
    rgb = grey.expand(-1, 3, -1, -1, -1).contiguous()
    for metric in (temporal_flickering, warp_error, motion_smoothness):
        torch.testing.assert_close(metric(rgb), metric(grey))
    noisy = (grey + 0.05 * torch.randn(grey.shape, generator=torch.Generator().manual_seed(0),
                                       dtype=torch.float64)).clamp(0, 1)
    for metric in (tof, mse, mae, psnr, ssim):
        torch.testing.assert_close(metric(noisy.expand_as(rgb), rgb), metric(noisy, grey))


def test_per_frame_shapes_and_means():
    video = random_video((2, 1, 7, 32, 32), seed=5)
    reference = random_video((2, 1, 7, 32, 32), seed=6)
    cases = [
        (temporal_flickering, (video,), 6), (warp_error, (video,), 6), (warp_error, (video, reference), 6),
        (motion_smoothness, (video,), 3), (tof, (video, reference), 6), (mse, (video, reference), 7),
        (mae, (video, reference), 7), (psnr, (video, reference), 7), (ssim, (video, reference), 7),
    ]
    for metric, args, length in cases:
        per_frame = metric(*args, per_frame=True)
        clip = metric(*args)
        assert per_frame.shape == (2, length) and per_frame.dtype == torch.float64, metric.__name__
        assert clip.shape == (2,) and clip.dtype == torch.float64, metric.__name__
        torch.testing.assert_close(per_frame.mean(dim=1), clip)
    assert dynamic_degree(video, fps=8, per_frame=True).shape == (2, 6)
    assert dynamic_degree(video, fps=8).shape == (2,)


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs raise
# ---------------------------------------------------------------------------------------------------------------
UNPAIRED = [temporal_flickering, warp_error, motion_smoothness, lambda v: dynamic_degree(v, fps=8)]
PAIRED = [tof, mse, mae, psnr, ssim, warp_error]  # warp_error(video, reference) checks its pair too


@pytest.mark.parametrize("metric, paired", [(m, False) for m in UNPAIRED] + [(m, True) for m in PAIRED[:-1]])
def test_bad_inputs_raise(metric, paired):
    good = random_video((1, 3, 4, 16, 16))

    def call(video):
        return metric(video, video) if paired else metric(video)

    with pytest.raises(TypeError, match="float tensor"):
        call((good * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"\(b c t h w\)"):
        call(good[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        call(good * 2 - 1)


@pytest.mark.parametrize("metric", PAIRED)
def test_mismatched_pairs_raise(metric):
    video = random_video((1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        metric(video, video[:, :, :3])


def test_too_few_frames_and_bad_fps_raise():
    two = random_video((1, 1, 2, 16, 16))
    with pytest.raises(ValueError, match="at least 3"):
        motion_smoothness(two)
    with pytest.raises(ValueError, match="at least 2"):
        temporal_flickering(two[:, :, :1])
    with pytest.raises(ValueError, match="fps=0"):
        dynamic_degree(two, fps=0)
    with pytest.raises(ValueError, match="fewer than 2"):
        dynamic_degree(two, fps=24)  # every 3rd frame: only frame 0 is kept
