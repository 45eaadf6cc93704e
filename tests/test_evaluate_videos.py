"""The evaluation command: video-set loading and its errors, metric parity with direct calls, and the reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from data.annotations import read_list_file
from data.decoding import read_clip
from data.moving_mnist_build import write_mp4
from models.metrics import temporal
from models.metrics.evaluate import evaluate_videos
from models.metrics.video_set import iter_batches, load_video_set
from scripts.evaluate_videos import main as evaluate_main


def _write_clips(folder: Path, count: int, num_frames: int = 8, size: int = 32, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        frames = rng.integers(0, 256, size=(num_frames, size, size), dtype=np.uint8)
        paths.append(folder / f"{i:03d}.mp4")
        write_mp4(paths[-1], frames, fps=8)
    return paths


def test_a_flat_folder_is_unlabelled_and_a_list_file_is_labelled(tiny_mmnist):
    flat = load_video_set(tiny_mmnist / "test")
    assert flat.labels is None and len(flat) == 16 and (flat.num_frames, flat.height, flat.width) == (8, 64, 64)
    listed = load_video_set(tiny_mmnist / "test_direction.txt")
    expected = read_list_file(tiny_mmnist / "test_direction.txt", root=tiny_mmnist)
    assert listed.labels == [s.label for s in expected] and listed.paths == [s.path for s in expected]


def test_batches_are_the_decoded_frames_in_order(tiny_mmnist):
    videos = load_video_set(tiny_mmnist / "test_direction.txt", num_frames=5)
    batches = list(iter_batches(videos, batch_size=6))
    assert [b[0].shape[0] for b in batches] == [6, 6, 4]
    first = read_clip(videos.paths[7], range(5)).float() / 255
    torch.testing.assert_close(batches[1][0][1], first, rtol=0, atol=0)
    assert batches[1][1][1].item() == videos.labels[7]


def test_empty_missing_and_inconsistent_sets_raise_naming_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no video files"):
        load_video_set(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_video_set(tmp_path / "nowhere")
    mixed = tmp_path / "mixed"
    _write_clips(mixed, 2, size=32)
    write_mp4(mixed / "big.mp4", np.zeros((8, 48, 48), np.uint8), fps=8)
    with pytest.raises(ValueError, match="differ in frame size.*big.mp4"):
        load_video_set(mixed)
    lengths = tmp_path / "lengths"
    _write_clips(lengths, 2, num_frames=8)
    write_mp4(lengths / "short.mp4", np.zeros((5, 32, 32), np.uint8), fps=8)
    with pytest.raises(ValueError, match="differ in length.*short.mp4"):
        load_video_set(lengths)
    assert load_video_set(lengths, num_frames=5).num_frames == 5
    with pytest.raises(ValueError, match="shorter than num_frames=6.*short.mp4"):
        load_video_set(lengths, num_frames=6)


def test_a_corrupt_file_fails_before_any_metric_runs(tmp_path):
    folder = tmp_path / "videos"
    _write_clips(folder, 2)
    (folder / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(Exception, match="broken.mp4"):
        load_video_set(folder)


def test_reference_must_pair_one_to_one(tmp_path):
    _write_clips(tmp_path / "gen", 3)
    _write_clips(tmp_path / "ref", 2)
    with pytest.raises(ValueError, match="has 2 videos but --videos .* has 3"):
        evaluate_videos(tmp_path / "gen", reference=tmp_path / "ref", progress=False)
    with pytest.raises(ValueError, match="groups"):
        evaluate_videos(tmp_path / "gen", groups=["temporal", "vibes"], progress=False)


def test_reported_values_equal_direct_metric_calls(tiny_mmnist, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(tiny_mmnist / "test", videos)
    for path in sorted(videos.glob("*.mp4"))[8:]:
        path.unlink()
    result = evaluate_videos(videos, reference=videos, batch_size=3, progress=False)
    clips = torch.stack([read_clip(str(p), range(8)) for p in sorted(videos.glob("*.mp4"))]).float() / 255
    expected = temporal.temporal_flickering(clips).double().mean().item()
    assert result.metrics["temporal_flickering"] == pytest.approx(expected, abs=1e-12)
    expected = temporal.warp_error(clips).double().mean().item()
    assert result.metrics["warp_error_dis"] == pytest.approx(expected, rel=1e-9)
    # Paired with itself: no error, no flow difference.
    assert result.metrics["mse"] == 0 and result.metrics["mae"] == 0 and result.metrics["tof_farneback"] == 0
    assert result.metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert len(result.per_frame["temporal_flickering"]) == 7
    assert "fvd[i3d]" in result.skipped and "feature_consistency" in result.skipped


def test_the_command_writes_json_markdown_and_a_figure(tiny_mmnist, tmp_path):
    out = tmp_path / "report" / "metrics.json"
    evaluate_main(["--videos", str(tiny_mmnist / "val_direction.txt"), "--out", str(out), "--batch-size", "8"])
    report = json.loads(out.read_text())
    assert report["protocol"]["num_clips"] == 16 and report["protocol"]["num_frames"] == 8
    assert {"temporal_flickering", "warp_error_dis", "dynamic_degree_dis", "motion_smoothness_flowinterp"} <= set(
        report["metrics"])
    assert "classifier_accuracy" in report["skipped"]
    table = out.with_suffix(".md").read_text()
    assert "| `warp_error_dis` |" in table and "lower" in table
    figure = out.with_name("metrics_per_frame.png")
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
