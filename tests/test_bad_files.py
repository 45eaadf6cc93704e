"""Missing and corrupt video files: clear errors that name the files, bounded retries, nothing silent."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from data.annotations import Sample, read_folder_tree, read_list_file
from data.datamodule import VideoDataModule
from data.dataset import VideoClipDataset, check_files
from data.decoding import VideoDecodeError


def datamodule(root: Path, **overrides) -> VideoDataModule:
    config = dict(root=str(root), train="train_direction.txt", val="val_direction.txt", test="test_direction.txt",
                  num_classes=8, num_frames=8, crop_size=64, train_scale=(64, 64), resize_size=64, flip=False,
                  batch_size=4, num_workers=0)
    config.update(overrides)
    return VideoDataModule(**config)


@pytest.fixture
def copy_of_tiny(tiny_mmnist, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_mmnist, tmp_path / "data"))


def test_missing_files_fail_at_setup_with_a_count_and_names(copy_of_tiny):
    for name in ("00003.mp4", "00007.mp4", "00011.mp4"):
        (copy_of_tiny / "train" / name).unlink()
    dm = datamodule(copy_of_tiny)
    with pytest.raises(FileNotFoundError, match=r"3 of 64 video files are missing") as err:
        dm.setup("fit")
    assert "train/00003.mp4" in str(err.value) and "data.on_missing=skip" in str(err.value)


def test_missing_files_can_be_skipped_with_a_warning(copy_of_tiny, caplog):
    (copy_of_tiny / "train" / "00003.mp4").unlink()
    dm = datamodule(copy_of_tiny, on_missing="skip")
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert len(dm.datasets["train"]) == 63
    assert "1 of 64 video files are missing" in caplog.text


def corrupt(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x13" * 500)


def test_corrupt_file_in_training_is_retried_counted_and_logged(copy_of_tiny, caplog):
    corrupt(copy_of_tiny / "train" / "00005.mp4")
    samples = read_list_file(copy_of_tiny / "train_direction.txt", copy_of_tiny)
    dataset = VideoClipDataset(samples, num_frames=8, train=True, max_decode_failures=3)
    with caplog.at_level(logging.WARNING):
        item = dataset[(5, 0)]
    assert item["decode_failures"] == 1 and item["index"] != 5
    assert item["video"].shape == (3, 8, 64, 64)
    assert "00005.mp4" in caplog.text
    # the replacement is seeded: the same key gives the same clip
    assert torch.equal(dataset[(5, 0)]["video"], item["video"])


def test_too_many_corrupt_files_stop_the_run_naming_them(copy_of_tiny):
    for i in range(4):
        corrupt(copy_of_tiny / "train" / f"{i:05d}.mp4")
    samples = read_list_file(copy_of_tiny / "train_direction.txt", copy_of_tiny)
    dataset = VideoClipDataset(samples, num_frames=8, train=True, max_decode_failures=2)
    with pytest.raises(RuntimeError, match="max_decode_failures=2") as err:
        for i in range(4):
            dataset[(i, 0)]
    assert "00000.mp4" in str(err.value)


def test_corrupt_file_in_evaluation_raises_at_once(copy_of_tiny):
    corrupt(copy_of_tiny / "test" / "00002.mp4")
    samples = read_list_file(copy_of_tiny / "test_direction.txt", copy_of_tiny)
    dataset = VideoClipDataset(samples, num_frames=8, train=False)
    with pytest.raises(VideoDecodeError, match="00002.mp4"):
        dataset[2]


def test_short_videos_loop_instead_of_crashing(tiny_mmnist):
    samples = read_list_file(tiny_mmnist / "val_direction.txt", tiny_mmnist)
    dataset = VideoClipDataset(samples, num_frames=12, frame_stride=2, train=True)  # 23-frame span, 8-frame videos
    video = dataset[(0, 0)]["video"]
    assert video.shape == (3, 12, 64, 64)
    torch.testing.assert_close(video[:, 4], video[:, 0])  # index 8 wraps to 0


def test_annotation_errors_name_the_file_and_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("a.mp4 1\nbroken-line\n")
    with pytest.raises(ValueError, match=r"list.txt:2"):
        read_list_file(listing, tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_list_file(tmp_path / "nope.txt", tmp_path)
    with pytest.raises(ValueError, match="no video files"):
        check_files([], source="empty.txt")
    assert check_files([Sample(str(listing), 0)]) == [Sample(str(listing), 0)]


def test_csv_and_folder_tree_formats(tmp_path):
    (tmp_path / "walk").mkdir()
    (tmp_path / "run").mkdir()
    for name in ("walk/a.mp4", "walk/b.mp4", "run/c.mp4"):
        (tmp_path / name).touch()
    samples, classes = read_folder_tree(tmp_path)
    assert classes == ["run", "walk"]
    assert [(Path(s.path).name, s.label) for s in samples] == [("c.mp4", 0), ("a.mp4", 1), ("b.mp4", 1)]
    csv = tmp_path / "k.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\nrun,abc,5,15,train\nwalk,xyz,0,10,train\n")
    rows = read_list_file(csv, tmp_path)
    assert rows[0].path == str(tmp_path / "run" / "abc_000005_000015.mp4") and rows[1].label == 1
    plain = tmp_path / "p.csv"
    plain.write_text("path,label\nwalk/a.mp4,3\n")
    assert read_list_file(plain, tmp_path) == [Sample(str(tmp_path / "walk/a.mp4"), 3)]


@pytest.mark.parametrize("train", [True, False])
def test_video_cache_gives_the_same_items_and_decodes_each_file_once(tiny_mmnist, monkeypatch, train):
    import data.dataset as dataset_module

    samples = read_list_file(tiny_mmnist / "val_direction.txt", tiny_mmnist)
    transform = datamodule(tiny_mmnist).train_tf if train else None
    plain = VideoClipDataset(samples, num_frames=4, frame_stride=2, train=train, transform=transform)
    cached = VideoClipDataset(samples, num_frames=4, frame_stride=2, train=train, transform=transform,
                              cache_videos=True)
    keys = [(i, epoch) for epoch in (0, 1) for i in range(4)] if train else list(range(4)) * 2
    reads = []
    decode = dataset_module.read_sampled_clip
    monkeypatch.setattr(dataset_module, "read_sampled_clip", lambda path, sample: reads.append(path) or
                        decode(path, sample))
    for key in keys:
        torch.testing.assert_close(cached[key]["video"], plain[key]["video"], rtol=0, atol=0)
    assert len(reads) == len(keys) + 4  # the plain dataset decodes every time, the cache once per file


def test_video_cache_still_reports_corrupt_files(copy_of_tiny):
    corrupt(copy_of_tiny / "test" / "00002.mp4")
    samples = read_list_file(copy_of_tiny / "test_direction.txt", copy_of_tiny)
    with pytest.raises(VideoDecodeError, match="00002.mp4"):
        VideoClipDataset(samples, num_frames=8, train=False, cache_videos=True)[2]


def test_time_reversal_plays_training_clips_backwards_with_the_opposite_label(tiny_mmnist):
    plain = datamodule(tiny_mmnist)
    reversed_ = datamodule(tiny_mmnist, time_reversal=True)
    plain.setup("fit")
    reversed_.setup("fit")
    flipped = 0
    for index in range(16):
        base, item = plain.datasets["train"][(index, 2)], reversed_.datasets["train"][(index, 2)]
        if item["label"] == base["label"]:
            torch.testing.assert_close(item["video"], base["video"], rtol=0, atol=0)
        else:
            flipped += 1
            assert item["label"] == (base["label"] + 4) % 8  # E <-> W: classes_direction.txt is E NE N NW W ...
            torch.testing.assert_close(item["video"], base["video"].flip(1), rtol=0, atol=0)
    assert 2 <= flipped <= 14
    assert torch.equal(reversed_.datasets["val"][3]["video"], plain.datasets["val"][3]["video"])  # eval: never
    digits = datamodule(tiny_mmnist, train="train_digit.txt", num_classes=10, time_reversal=True)
    with pytest.raises(ValueError, match="time_reversal=true: class name '0' is not a compass point"):
        digits.setup("fit")
