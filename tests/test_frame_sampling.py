"""Frame-index samplers against their closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from data.frame_sampling import clip_span, dense_indices, segment_indices, view_indices, view_starts


def test_dense_eval_is_the_centred_clip():
    # 100 frames, 8 x 4: span 29, free room 71, centred start 35
    assert dense_indices(100, 8, 4, train=False) == [35 + 4 * i for i in range(8)]
    assert clip_span(8, 4) == 29


def test_dense_train_covers_every_valid_start_uniformly_and_is_seeded():
    rng = np.random.default_rng(0)
    starts = [dense_indices(20, 4, 3, train=True, rng=rng)[0] for _ in range(4000)]
    assert set(starts) == set(range(20 - 10 + 1))  # span 10 -> starts 0..10
    counts = np.bincount(starts)
    assert counts.min() > 4000 / 11 * 0.8
    a = [dense_indices(50, 8, 2, train=True, rng=np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    clip = a[0]
    assert np.all(np.diff(clip) == 2)


@pytest.mark.parametrize("video_len", [1, 3, 7])
def test_short_videos_loop_or_clamp_and_never_crash(video_len):
    looped = dense_indices(video_len, 8, 2, train=False, short_video="loop")
    assert looped == [(2 * i) % video_len for i in range(8)]
    clamped = dense_indices(video_len, 8, 2, train=True, rng=np.random.default_rng(0), short_video="clamp")
    assert clamped == [min(2 * i, video_len - 1) for i in range(8)]


def test_segment_eval_takes_segment_centres():
    # 80 frames, 8 segments of 10: centres 5, 15, ...
    assert segment_indices(80, 8, train=False) == [5 + 10 * k for k in range(8)]


def test_segment_train_draws_one_frame_per_segment():
    rng = np.random.default_rng(0)
    for _ in range(200):
        clip = segment_indices(37, 8, train=True, rng=rng)
        for k, i in enumerate(clip):
            assert np.floor(k * 37 / 8) <= i < np.ceil((k + 1) * 37 / 8)


def test_segment_short_video_repeats_frames_in_range():
    clip = segment_indices(3, 8, train=False)
    assert len(clip) == 8 and all(0 <= i < 3 for i in clip) and clip == sorted(clip)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dense_indices(0, 8, 1, train=False), "empty video"),
        (lambda: dense_indices(10, 0, 1, train=False), "num_frames=0"),
        (lambda: dense_indices(10, 8, 0, train=False), "frame_stride=0"),
        (lambda: dense_indices(10, 8, 1, train=False, short_video="wrap"), "short_video"),
        (lambda: dense_indices(10, 8, 1, train=True), "rng"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(("video_len", "views", "expected"), [
    (100, 1, [(100 - 15) // 2]),          # one view: the centred evaluation clip
    (100, 3, [0, 42, 85]),               # spread from the first to the last possible start (span 15 = 8 at stride 2)
    (10, 4, [0, 0, 0, 0]),               # shorter than the span: every view starts at 0
])
def test_view_starts_spread_uniformly(video_len, views, expected):
    assert view_starts(video_len, 8, 2, views) == expected
    windows = view_indices(video_len, 8, 2, views)
    assert [w[0] for w in windows] == [min(s, video_len - 1) for s in expected]
    if views == 1:
        assert windows == [dense_indices(video_len, 8, 2, train=False)]
