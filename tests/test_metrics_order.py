"""Frame-order controls: each against a plain loop, and applied by evaluate_videos before any metric."""

from __future__ import annotations

import pytest
import torch

from models.metrics.evaluate import evaluate_videos
from models.metrics.order import reorder


def test_reorder_controls_against_plain_loops():
    video = torch.arange(2 * 1 * 5 * 2 * 2, dtype=torch.float32).reshape(2, 1, 5, 2, 2)
    torch.testing.assert_close(reorder(video, "reversed"), torch.stack([video[:, :, k] for k in range(4, -1, -1)], 2))
    torch.testing.assert_close(reorder(video, "frozen"), torch.stack([video[:, :, 0]] * 5, 2))
    torch.testing.assert_close(reorder(video, "forward"), video)
    generator = torch.Generator().manual_seed(3)
    shuffled = reorder(video, "shuffled", generator)
    replay = torch.Generator().manual_seed(3)
    for i in range(2):
        permutation = torch.randperm(5, generator=replay)
        torch.testing.assert_close(shuffled[i], video[i][:, permutation])
    with pytest.raises(ValueError, match="sideways"):
        reorder(video, "sideways")


def test_evaluate_videos_applies_the_order_control_before_scoring(tiny_mmnist):
    """Real direction clips reversed score 0 % flow direction accuracy against their labels, frozen ones 0 %."""
    forward = evaluate_videos(tiny_mmnist / "test_direction.txt", groups=["accuracy"], progress=False)
    reversed_ = evaluate_videos(tiny_mmnist / "test_direction.txt", groups=["accuracy"], progress=False,
                                frame_order="reversed")
    frozen = evaluate_videos(tiny_mmnist / "test_direction.txt", groups=["accuracy"], progress=False,
                             frame_order="frozen")
    assert forward.metrics["flow_direction_accuracy"] == 1.0
    assert reversed_.metrics["flow_direction_accuracy"] == 0.0 == frozen.metrics["flow_direction_accuracy"]
    assert reversed_.protocol["frame_order"] == "reversed"


def test_dominant_speed_and_the_speed_free_sector_on_real_and_frozen_clips(tiny_mmnist):
    """Real direction clips move at 3 px/frame, each in its sector; frozen copies do not move at all."""
    forward = evaluate_videos(tiny_mmnist / "test_direction.txt", groups=["accuracy"], progress=False)
    frozen = evaluate_videos(tiny_mmnist / "test_direction.txt", groups=["accuracy"], progress=False,
                             frame_order="frozen")
    assert 2.7 < forward.metrics["dominant_speed_dis"] < 3.3 and frozen.metrics["dominant_speed_dis"] < 0.1
    assert forward.metrics["flow_direction_accuracy_any_speed"] == 1.0
    reversed_ = evaluate_videos(tiny_mmnist / "test_direction.txt", groups=["accuracy"], progress=False,
                                frame_order="reversed")
    assert reversed_.metrics["flow_direction_accuracy_any_speed"] == 0.0  # fast, but the opposite way
