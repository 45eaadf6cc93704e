"""scripts/metric_by_label.py: per-label means of a per-clip metric against a hand count, and its errors."""

from __future__ import annotations

import json

import pytest

from scripts.metric_by_label import by_label, main, per_clip_values
from scripts.records import rows_from_metrics_json

KEY = "identity_consistency[frameclassifier:frame_digit]"


def test_by_label_matches_a_hand_count():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    labels = [8, 8, 3, 9, 9, 9, 3]
    groups = by_label(values, labels)
    assert list(groups) == [3, 8, 9]
    assert groups[3] == {"clips": 2, "mean": 1.0, "zeros": 0}
    assert groups[8] == {"clips": 2, "mean": 0.5, "zeros": 1}
    assert groups[9]["clips"] == 3 and groups[9]["zeros"] == 2 and groups[9]["mean"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="7 metric values but 6 labels"):
        by_label(values, labels[:6])


def test_per_clip_values_finds_the_tagged_key_and_names_what_is_missing():
    report = {"per_clip": {KEY: [1, 0], "digit_accuracy[frameclassifier:frame_digit]": [0.5, 1.0]}}
    assert per_clip_values(report, "identity_consistency") == [1.0, 0.0]
    assert per_clip_values(report, KEY) == [1.0, 0.0]
    with pytest.raises(ValueError, match="warp_error_dis"):
        per_clip_values(report, "warp_error_dis", "r.json")
    with pytest.raises(ValueError, match="r.json: no per_clip"):
        per_clip_values({"metrics": {}}, "identity_consistency", "r.json")


def write_run(folder, identity, digits, listed=None):
    """A sampler's folder (samples.txt, samples_digit.txt, classes_digit.txt) and evaluate_videos.py's report."""
    names = [f"videos/{i:05d}.mp4" for i in range(len(digits))]
    (folder / "samples.txt").write_text("".join(f"{name} 0\n" for name in (listed or names)))
    (folder / "samples_digit.txt").write_text("".join(f"{name} {d}\n" for name, d in zip(names, digits)))
    (folder / "classes_digit.txt").write_text("".join(f"{d}\n" for d in range(10)))
    report = {"metrics": {KEY: sum(identity) / len(identity)}, "per_clip": {KEY: identity},
              "protocol": {"videos": str(folder / "samples.txt")}}
    (folder / "metrics.json").write_text(json.dumps(report))


def test_cli_writes_a_report_that_records_reads(tmp_path, capsys):
    write_run(tmp_path, identity=[1.0, 0.0, 0.0, 1.0], digits=[9, 9, 8, 8])
    out = tmp_path / "by_digit.json"
    assert main([str(tmp_path / "metrics.json"), "--labels", str(tmp_path / "samples_digit.txt"),
                 "--out", str(out)]) == 0
    assert "scoring 0" in capsys.readouterr().out
    rows = rows_from_metrics_json(out)
    assert rows["identity_consistency_8"]["value"] == 0.5
    assert rows["identity_consistency_9"]["value"] == 0.5
    assert set(rows) == {"identity_consistency_8", "identity_consistency_9"}


def test_cli_refuses_labels_of_other_clips_or_a_missing_report(tmp_path, capsys):
    others = [f"videos/{i:05d}.mp4" for i in (1, 0, 2)]  # the report scored the clips in another order
    write_run(tmp_path, identity=[1.0, 0.0, 1.0], digits=[1, 2, 3], listed=others)
    assert main([str(tmp_path / "metrics.json"), "--labels", str(tmp_path / "samples_digit.txt")]) == 2
    assert "in the same order" in capsys.readouterr().err
    assert main([str(tmp_path / "nothing.json"), "--labels", str(tmp_path / "samples_digit.txt")]) == 2
    assert "nothing.json: no such report" in capsys.readouterr().err
