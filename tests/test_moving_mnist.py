"""Tests of the Moving MNIST generator: splits, trajectories, rendering, lossless files, resumable builds."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import decord
import numpy as np
import pytest

from data import moving_mnist as mm
from data import moving_mnist_build as mmb

ROOM = mm.CANVAS_SIZE - mm.DIGIT_SIZE  # 36 px of free canvas per axis
TINY = {"num_train": 6, "num_val": 3, "num_test": 3}


def random_digit(seed: int = 0) -> np.ndarray:
    """An asymmetric uint8 (28 28) test digit."""
    return np.random.default_rng(seed).integers(0, 256, size=(mm.DIGIT_SIZE, mm.DIGIT_SIZE)).astype(np.uint8)


def decode(path: Path) -> np.ndarray:
    """All frames of an mp4 as uint8 (t h w c), decoded by decord as the training data loaders will."""
    reader = decord.VideoReader(str(path), num_threads=1)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def replan(variant: str, split: str) -> list[mmb.ClipSpec]:
    """The clip specs of a TINY build, recomputed independently of the files."""
    params = mmb.dataset_parameters(variant, **TINY)
    images, labels = mm.load_mnist_digits()
    pools = mm.split_digit_images(len(images), mm.DIGIT_SPLIT_FRACTIONS, params["seed"])
    num_clips, num_frames = params["num_clips"][split], params["num_frames"]
    return mmb.plan_clips(variant, split, num_clips, pools[split], labels, num_frames, params["speed"], params["seed"])


# ---------------------------------------------------------------------------------------------------------------
# Digits and splits
# ---------------------------------------------------------------------------------------------------------------
def test_load_mnist_digits_are_real_mnist():
    images, labels = mm.load_mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.int64
    assert images.max() == 255 and images[:, 0, :].max() == 0  # white digits, black border row
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)


def test_split_digit_images_is_a_disjoint_cover():
    splits = mm.split_digit_images(5000, seed=3)
    assert [len(splits[s]) for s in mm.SPLITS] == [4000, 500, 500]
    merged = np.concatenate([splits[s] for s in mm.SPLITS])
    np.testing.assert_array_equal(np.sort(merged), np.arange(5000))  # disjoint and covering
    again = mm.split_digit_images(5000, seed=3)
    assert all(np.array_equal(splits[s], again[s]) for s in mm.SPLITS)
    assert not np.array_equal(splits["test"], mm.split_digit_images(5000, seed=4)["test"])
    with pytest.raises(ValueError, match="fractions"):
        mm.split_digit_images(100, fractions=(0.8, 0.3, 0.1))


# ---------------------------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------------------------
def test_direction_vectors_are_unit_compass_directions_in_image_coordinates():
    vectors = mm.DIRECTION_VECTORS
    angles = np.deg2rad(45.0 * np.arange(8))
    np.testing.assert_allclose(vectors, np.stack([np.cos(angles), -np.sin(angles)], axis=1), atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-15)
    assert np.array_equal(vectors[[4, 5, 6, 7, 0, 1, 2, 3]], -vectors)  # bit-exact opposites
    assert vectors[mm.DIRECTION_NAMES.index("N"), 1] < 0  # north is up: y decreases


@pytest.mark.parametrize("direction", range(8))
def test_direction_trajectory_matches_closed_form(direction):
    num_frames, speed = 8, 3.0
    half_span = (num_frames - 1) / 2 * speed
    trajectory = mm.direction_trajectory(np.random.default_rng(11), direction, num_frames, speed)
    midpoint = np.random.default_rng(11).uniform(half_span, ROOM - half_span, size=2)
    offsets = np.arange(num_frames) - (num_frames - 1) / 2
    expected = midpoint + offsets[:, None] * speed * mm.DIRECTION_VECTORS[direction]
    np.testing.assert_allclose(trajectory, expected, rtol=0, atol=1e-12)
    steps = np.diff(trajectory, axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(speed * mm.DIRECTION_VECTORS[direction], steps.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(steps, axis=1), speed, rtol=1e-12)
    assert trajectory.min() >= 0 and trajectory.max() <= ROOM


def test_midpoint_box_is_shared_by_all_directions():
    num_frames, speed = 8, 3.0
    half_span = (num_frames - 1) / 2 * speed
    midpoints = np.array(
        [
            [mm.direction_trajectory(np.random.default_rng(s), d, num_frames, speed).mean(0) for s in range(300)]
            for d in range(8)
        ]
    )  # (direction seed 2): the same rng state gives the same midpoint whatever the direction
    np.testing.assert_allclose(midpoints, np.broadcast_to(midpoints[0], midpoints.shape), atol=1e-12)
    assert midpoints.min() >= half_span and midpoints.max() <= ROOM - half_span
    assert midpoints.min() < half_span + 0.3 and midpoints.max() > ROOM - half_span - 0.3  # the whole box is used
    with pytest.raises(ValueError, match="speed=6"):
        mm.direction_trajectory(np.random.default_rng(0), 0, num_frames, 6.0)  # spans 42 px > 36 px


@pytest.mark.parametrize("direction", range(8))
def test_time_reversal_equals_opposite_direction(direction):
    digit = random_digit(direction)
    forward = mm.direction_trajectory(np.random.default_rng(5), direction, 8, 3.0)
    backward = mm.direction_trajectory(np.random.default_rng(5), (direction + 4) % 8, 8, 3.0)
    assert np.array_equal(forward[::-1], backward)
    assert np.array_equal(mm.render_frames([digit], [forward])[::-1], mm.render_frames([digit], [backward]))


def test_bouncing_trajectory_reflects_off_the_walls_at_constant_speed():
    speed = 3.0
    trajectory = mm.bouncing_trajectory(np.random.default_rng(2), 200, speed)
    assert trajectory.min() >= 0 and trajectory.max() <= ROOM
    here, there = trajectory[:-1], trajectory[1:]  # (t-1 2)
    axis_speed = np.abs(there - here).max(axis=0)  # (2,): attained on every step without a bounce
    np.testing.assert_allclose(np.linalg.norm(axis_speed), speed, rtol=1e-9)
    # A step travels axis_speed along each axis: straight, or to a wall and back (mirror reflection).
    straight = np.isclose(np.abs(there - here), axis_speed)
    off_low = np.isclose(here + there, axis_speed)
    off_high = np.isclose(2 * ROOM - here - there, axis_speed)
    assert (straight | off_low | off_high).all()
    for axis in range(2):
        bounces = np.flatnonzero(~straight[:, axis])
        assert len(bounces) >= 2
        for step in bounces[(bounces > 0) & (bounces < len(here) - 1)]:
            if straight[step - 1, axis] and straight[step + 1, axis]:
                before, after = there[[step - 1, step + 1], axis] - here[[step - 1, step + 1], axis]
                assert np.sign(before) == -np.sign(after)  # the velocity component flips at the wall


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------
def test_render_places_digit_at_integer_offset_exactly():
    digit = random_digit()
    frames = mm.render_frames([digit], [np.array([[5.0, 7.0], [ROOM, ROOM], [0.0, 0.0]])])
    assert frames.shape == (3, 64, 64) and frames.dtype == np.uint8
    for frame, (x, y) in zip(frames, [(5, 7), (ROOM, ROOM), (0, 0)]):
        assert np.array_equal(frame[y : y + 28, x : x + 28], digit)
        frame[y : y + 28, x : x + 28] = 0
        assert not frame.any()


@pytest.mark.parametrize("axis", [0, 1])
def test_render_half_pixel_is_average_of_neighbours(axis):
    digit = random_digit(1)
    position = np.array([[10.0, 20.0]])
    step = np.eye(2)[axis]
    low, high = (mm.render_frames([digit], [position + k * step]).astype(np.float64) for k in (0, 1))
    half = mm.render_frames([digit], [position + 0.5 * step])
    assert np.array_equal(half, np.rint((low + high) / 2).astype(np.uint8))


def test_render_combines_digits_by_max_and_rejects_positions_off_canvas():
    a, b = random_digit(2), random_digit(3)
    ta, tb = np.array([[3.25, 4.5]]), np.array([[9.75, 1.0]])
    both = mm.render_frames([a, b], [ta, tb])
    assert np.array_equal(both, np.maximum(mm.render_frames([a], [ta]), mm.render_frames([b], [tb])))
    with pytest.raises(ValueError, match="trajectories"):
        mm.render_frames([a], [np.array([[ROOM + 0.5, 0.0]])])


# ---------------------------------------------------------------------------------------------------------------
# Built datasets
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def direction_dir(tmp_path_factory) -> Path:
    return mmb.build_dataset(tmp_path_factory.mktemp("mm") / "direction", "direction", verbose=False, **TINY)


def read_list(path: Path) -> list[tuple[str, int]]:
    rows = [line.split(" ") for line in path.read_text().splitlines()]
    return [(relative, int(label)) for relative, label in rows]


def test_direction_build_writes_lossless_clips_and_lists(direction_dir):
    out = direction_dir
    classes = {task: (out / f"classes_{task}.txt").read_text().splitlines() for task in ("direction", "digit")}
    assert classes == {"direction": list(mm.DIRECTION_NAMES), "digit": list(mm.DIGIT_CLASSES)}
    images, labels = mm.load_mnist_digits()
    decoded_by_level: dict[int, set[int]] = {}
    used_images = {}
    for split in mm.SPLITS:
        specs = replan("direction", split)
        lists = {task: read_list(out / f"{split}_{task}.txt") for task in classes}
        with (out / f"{split}_meta.csv").open() as handle:
            meta = list(csv.DictReader(handle))
        assert len(specs) == len(meta) == TINY[f"num_{split}"]
        used_images[split] = {int(row["digit_image"]) for row in meta}
        rows = zip(specs, meta, lists["direction"], lists["digit"])
        for spec, row, (path_dir, direction), (path_digit, digit) in rows:
            assert spec.path == row["path"] == path_dir == path_digit
            assert 0 <= direction < 8 and 0 <= digit < 10
            assert direction == int(row["direction"]) and digit == int(row["digit"]) == labels[int(row["digit_image"])]
            rendered = mm.render_frames([images[k] for k in spec.digits], spec.trajectories)  # (t h w)
            clip = decode(out / spec.path)  # (t h w c)
            assert clip.shape == (8, 64, 64, 3)
            assert np.array_equal(clip[..., 0], clip[..., 1]) and np.array_equal(clip[..., 0], clip[..., 2])
            assert np.abs(clip[..., 0].astype(int) - rendered).max() <= mmb.DECODE_TOLERANCE
            for level, value in zip(rendered.ravel(), clip[..., 0].ravel()):
                decoded_by_level.setdefault(int(level), set()).add(int(value))
    # Decoding is a fixed map of the grey level, the same in every frame: nothing can reveal frame order.
    assert all(len(values) == 1 for values in decoded_by_level.values())
    assert not used_images["train"] & used_images["val"] and not used_images["train"] & used_images["test"]


def test_rebuild_skips_resumes_and_refuses_other_parameters(direction_dir, tmp_path):
    out = direction_dir
    mtimes = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    assert mmb.build_dataset(out, "direction", verbose=False, **TINY) == out
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == mtimes

    missing = out / "val" / "00001.mp4"
    original = missing.read_bytes()
    missing.unlink()
    mmb.build_dataset(out, "direction", verbose=False, **TINY)
    assert missing.read_bytes() == original  # deterministic encoder
    assert (out / "val" / "00000.mp4").stat().st_mtime_ns == mtimes[out / "val" / "00000.mp4"]

    with pytest.raises(ValueError, match="different parameters.*speed"):
        mmb.build_dataset(out, "direction", speed=2.0, verbose=False, **TINY)
    (tmp_path / "foreign.txt").write_text("not a dataset")
    with pytest.raises(ValueError, match="no dataset.json"):
        mmb.build_dataset(tmp_path, "direction", verbose=False, **TINY)


def test_output_does_not_depend_on_worker_count(direction_dir, tmp_path):
    other = mmb.build_dataset(tmp_path / "two_workers", "direction", workers=2, verbose=False, **TINY)
    for path in sorted(direction_dir.rglob("*.*")):
        assert (other / path.relative_to(direction_dir)).read_bytes() == path.read_bytes(), path.name


def test_standard_build_via_cli(tmp_path):
    spec = importlib.util.spec_from_file_location("make_moving_mnist", Path("scripts/make_moving_mnist.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "standard"
    script.main(["--out", str(out), "--variant", "standard", "--num-train", "2", "--num-val", "1", "--num-test", "1"])
    assert (out / "classes_digit.txt").read_text().splitlines() == list(mm.DIGIT_CLASSES)
    images, labels = mm.load_mnist_digits()
    for split in mm.SPLITS:
        with (out / f"{split}_meta.csv").open() as handle:
            meta = list(csv.DictReader(handle))
        for (path, label), row in zip(read_list(out / f"{split}.txt"), meta):
            assert path == row["path"] and label == labels[int(row["digit_image"])]  # first digit's class
            assert row["digit_image"] != row["digit_image_2"]
            clip = decode(out / path)
            assert clip.shape == (20, 64, 64, 3) and clip.max() > 200
    with pytest.raises(SystemExit, match="different parameters"):
        script.main(["--out", str(out), "--variant", "standard", "--num-train", "3"])


# ---------------------------------------------------------------------------------------------------------------
# Static variants: still and slides
# ---------------------------------------------------------------------------------------------------------------
def test_render_visible_ranges_draw_a_digit_in_its_frames_only():
    digit = random_digit()
    still = np.array([[4.0, 6.0]] * 4)
    frames = mm.render_frames([digit, digit], [still, still + 20], visible=[(0, 2), (2, 4)])
    alone = mm.render_frames([digit], [still])
    np.testing.assert_array_equal(frames[:2], alone[:2])  # slide 1 only
    np.testing.assert_array_equal(frames[2:], mm.render_frames([digit], [still + 20])[2:])  # slide 2 only
    with pytest.raises(ValueError, match="visible"):
        mm.render_frames([digit], [still], visible=[(0, 5)])


def test_still_trajectory_is_one_position_in_the_canvas():
    positions = np.stack([mm.still_trajectory(np.random.default_rng(k), 5) for k in range(200)])  # (n t 2)
    assert (positions == positions[:, :1]).all()
    assert positions.min() >= 0 and positions.max() <= ROOM and positions.max() > 0.9 * ROOM


@pytest.mark.parametrize("variant", ["still", "slides"])
def test_static_builds_hold_still_frames_with_the_labelled_digits(variant, tmp_path):
    out = mmb.build_dataset(tmp_path / variant, variant, verbose=False, **TINY)
    params = mmb.dataset_parameters(variant, **TINY)
    assert params["speed"] == 0.0 and params["num_frames"] == 8
    tasks = ("digit",) if variant == "still" else ("digit", "digit_2")
    assert all((out / f"classes_{task}.txt").read_text().splitlines() == list(mm.DIGIT_CLASSES) for task in tasks)
    images, labels = mm.load_mnist_digits()
    pools = mm.split_digit_images(len(images), mm.DIGIT_SPLIT_FRACTIONS, params["seed"])
    for split in mm.SPLITS:
        lists = {task: read_list(out / f"{split}_{task}.txt") for task in tasks}
        with (out / f"{split}_meta.csv").open() as handle:
            meta = list(csv.DictReader(handle))
        assert len(meta) == TINY[f"num_{split}"]
        for k, row in enumerate(meta):
            clip = decode(out / row["path"])[..., 0].astype(int)  # (t h w)
            image = int(row["digit_image"])
            assert image in pools[split] and lists["digit"][k] == (row["path"], labels[image])
            if variant == "still":
                expected = mm.render_frames([images[image]], [np.array([[float(row["x"]), float(row["y"])]] * 8)])
                assert (clip == clip[:1]).all()  # the digit never moves
            else:
                second, cut = int(row["digit_image_2"]), int(row["cut"])
                assert cut == 4 and labels[second] != labels[image] and lists["digit_2"][k][1] == labels[second]
                assert (clip[:cut] == clip[:1]).all() and (clip[cut:] == clip[cut:cut + 1]).all()
                assert np.abs(clip[cut] - clip[cut - 1]).max() > 100  # a hard cut
                spec = replan(variant, split)[k]
                expected = mm.render_frames([images[i] for i in spec.digits], spec.trajectories,
                                            visible=spec.visible)
            assert np.abs(clip - expected).max() <= mmb.DECODE_TOLERANCE
