"""Clip transforms: shapes, dtypes, ranges, and that every frame gets the same crop/flip."""

from __future__ import annotations

import pytest
import torch

from data.transforms import eval_transform, spatial_view_transform, train_transform

MEAN, STD = [0.45] * 3, [0.225] * 3


def ramp_clip(t: int = 4, h: int = 48, w: int = 64) -> torch.Tensor:
    """uint8 (c t h w) whose frames are identical horizontal ramps, so crops and flips are visible."""
    ramp = torch.linspace(0, 255, w).round().to(torch.uint8)
    return ramp.expand(3, t, h, w).clone()


def test_eval_transform_shape_dtype_range_and_normalisation():
    clip = ramp_clip()
    out = eval_transform(32, 32, MEAN, STD)(clip)
    assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32
    pixels = out * 0.225 + 0.45  # undo normalisation: back to [0, 1]
    assert pixels.min() >= -1e-4 and pixels.max() <= 1 + 1e-4
    # centre crop of a short-side-resized ramp is symmetric about 0.5
    torch.testing.assert_close(pixels.mean(), torch.tensor(0.5), atol=0.02, rtol=0)


def test_train_transform_uses_one_crop_and_flip_for_all_frames():
    torch.manual_seed(0)
    transform = train_transform(32, 36, 48, True, MEAN, STD)
    flipped = 0
    for _ in range(20):
        out = transform(ramp_clip())
        assert out.shape == (3, 4, 32, 32)
        assert torch.equal(out[:, :1].expand_as(out), out)  # identical frames stay identical
        flipped += bool(out[0, 0, 0, 0] > out[0, 0, 0, -1])
    assert 0 < flipped < 20  # flip happens sometimes, never per frame


def test_flip_off_never_flips():
    torch.manual_seed(0)
    transform = train_transform(32, 36, 48, False, MEAN, STD)
    for _ in range(20):
        out = transform(ramp_clip())
        assert out[0, 0, 0, 0] < out[0, 0, 0, -1]


def test_bad_inputs_and_settings_raise():
    with pytest.raises(ValueError, match="uint8"):
        eval_transform(32, 32, MEAN, STD)(torch.zeros(3, 4, 32, 32))
    with pytest.raises(ValueError, match="crop_size"):
        train_transform(64, 32, 48, False, MEAN, STD)
    with pytest.raises(ValueError, match="resize_size"):
        eval_transform(64, 32, MEAN, STD)


def coordinate_clip(h: int, w: int, t: int = 2) -> torch.Tensor:
    """uint8 (3 t h w): channel 0 holds the column index, channel 1 the row index, channel 2 the frame index."""
    cols = torch.arange(w).expand(h, w)
    rows = torch.arange(h)[:, None].expand(h, w)
    frames = [torch.stack([cols, rows, torch.full((h, w), k)]) for k in range(t)]
    return torch.stack(frames, dim=1).to(torch.uint8)


@pytest.mark.parametrize(("h", "w", "expected"), [
    (4, 10, [(0, 0), (0, 3), (0, 6)]),   # landscape: left, centre, right; vertically centred
    (10, 4, [(0, 0), (3, 0), (6, 0)]),   # portrait: top, centre, bottom
])
def test_three_spatial_views_are_the_start_centre_and_end_of_the_long_side(h, w, expected):
    views = spatial_view_transform(4, 4, [0, 0, 0], [1 / 255] * 3, num_crops=3)(coordinate_clip(h, w))
    assert views.shape == (3, 3, 2, 4, 4)  # (v c t h w)
    for view, (top, left) in zip(views, expected):
        assert view[0, 0, 0, 0].item() == left and view[1, 0, 0, 0].item() == top  # the crop's top-left pixel
    centre = spatial_view_transform(4, 4, [0, 0, 0], [1 / 255] * 3, num_crops=1)(coordinate_clip(h, w))
    torch.testing.assert_close(centre[0], views[1])  # one view is the centre crop
    torch.testing.assert_close(centre[0], eval_transform(4, 4, [0, 0, 0], [1 / 255] * 3)(coordinate_clip(h, w)))
    with pytest.raises(ValueError, match="test_views.spatial=2"):
        spatial_view_transform(4, 4, [0, 0, 0], [1, 1, 1], num_crops=2)
