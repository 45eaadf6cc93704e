"""flow_direction_accuracy: compass parsing, closed forms on synthetic shifts, and real Moving MNIST controls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from data.annotations import read_classes, read_list_file
from data.decoding import read_clip
from data.moving_mnist import load_mnist_digits, render_frames
from models.metrics.motion import (
    compass_angles,
    direction_hits,
    dominant_motion,
    flow_direction_accuracy,
    motion_angles,
)

EIGHT = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]


def test_compass_angles_are_counter_clockwise_from_east():
    np.testing.assert_array_equal(compass_angles(EIGHT), np.arange(8) * 45.0)
    np.testing.assert_array_equal(compass_angles(["ene", " NNW ", "ssE"]), [22.5, 112.5, 292.5])
    with pytest.raises(ValueError, match="'up'"):
        compass_angles(["E", "up"])


def shifted_digit_clip(angle_deg: float, speed: float, num_frames: int = 8) -> torch.Tensor:
    """A real MNIST digit moving in a straight line at ``angle_deg`` (counter-clockwise from east, y down)."""
    digit = load_mnist_digits()[0][7]
    vx, vy = speed * math.cos(math.radians(angle_deg)), -speed * math.sin(math.radians(angle_deg))
    start = np.array([18.0, 18.0]) - 0.5 * (num_frames - 1) * np.array([vx, vy])
    trajectory = start[None] + np.arange(num_frames)[:, None] * np.array([vx, vy])[None]
    frames = render_frames([digit], [trajectory])  # uint8 (t h w)
    return torch.from_numpy(frames).float().div(255)[None, None]  # (1 1 t h w)


@pytest.mark.parametrize("estimator", ["dis", "centroid"])
@pytest.mark.parametrize("angle", [0.0, 30.0, 135.0, 200.0, 290.0])
def test_dominant_motion_recovers_a_known_shift(estimator, angle):
    motion = dominant_motion(shifted_digit_clip(angle, 3.0), estimator)[0]
    expected = torch.tensor([3.0 * math.cos(math.radians(angle)), -3.0 * math.sin(math.radians(angle))],
                            dtype=torch.float64)
    tolerance = 0.02 if estimator == "centroid" else 0.35  # the centroid is exact up to rounding to uint8
    torch.testing.assert_close(motion, expected, atol=tolerance, rtol=0)
    assert abs((motion_angles(motion[None])[0].item() - angle + 180) % 360 - 180) < 6


def test_accuracy_counts_only_the_labelled_sector_and_moving_clips():
    angles = compass_angles(EIGHT)
    clips = torch.cat([shifted_digit_clip(a, 3.0) for a in (0.0, 20.0, 25.0, 90.0)])
    hits = flow_direction_accuracy(clips, [0, 0, 0, 2], angles, estimator="centroid", per_clip=True)
    torch.testing.assert_close(hits, torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=torch.float64))  # ±22.5° sectors
    slow = shifted_digit_clip(0.0, 0.5)
    assert flow_direction_accuracy(slow, [0], angles).item() == 0.0  # below 1 px/frame: frozen, wrong
    assert flow_direction_accuracy(slow, [0], angles, estimator="centroid", min_speed=0.1).item() == 1.0
    black = torch.zeros(1, 1, 8, 64, 64)
    assert flow_direction_accuracy(black, [0], angles, min_speed=0.0).item() == 0.0  # no motion has no direction
    assert dominant_motion(black).abs().max().item() == 0.0


def test_accuracy_rejects_bad_labels_and_speeds():
    clip = shifted_digit_clip(0.0, 3.0)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        flow_direction_accuracy(clip, [8], compass_angles(EIGHT))
    with pytest.raises(ValueError, match="do not match"):
        flow_direction_accuracy(clip, [0, 1], compass_angles(EIGHT))
    with pytest.raises(ValueError, match="min_speed"):
        flow_direction_accuracy(clip, [0], compass_angles(EIGHT), min_speed=-1)
    with pytest.raises(ValueError, match="estimator"):
        dominant_motion(clip, "raft")


def test_real_direction_clips_score_high_reversed_and_frozen_low(tiny_mmnist):
    samples = read_list_file(tiny_mmnist / "test_direction.txt", root=tiny_mmnist)
    angles = compass_angles(read_classes(tiny_mmnist / "classes_direction.txt"))
    video = torch.stack([read_clip(s.path, range(8)) for s in samples]).float().div(255)  # (b 3 t h w)
    labels = [s.label for s in samples]
    assert flow_direction_accuracy(video, labels, angles).item() >= 0.98
    assert flow_direction_accuracy(video.flip(2), labels, angles).item() <= 0.05  # reversed: opposite sector
    frozen = video[:, :, :1].expand_as(video).contiguous()
    assert flow_direction_accuracy(frozen, labels, angles).item() <= 0.20


def test_direction_hits_of_measured_motions_in_closed_form():
    angles = compass_angles(["E", "NE", "N", "NW", "W", "SW", "S", "SE"])
    motion = torch.tensor([[3.0, 0.0], [0.0, -3.0], [0.5, 0.0], [2.0, 1.9], [-2.0, 2.0]], dtype=torch.float64)
    # east; north (y down, so up is -y); too slow; 43.5° below east is SE (315° ± 22.5°), not E; south-west
    hits = direction_hits(motion, [0, 2, 0, 0, 5], angles, per_clip=True)
    assert hits.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert direction_hits(motion, [0, 2, 0, 7, 5], angles).item() == pytest.approx(0.8)
