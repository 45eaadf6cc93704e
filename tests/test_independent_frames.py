"""scripts/independent_frames.py: the closed form against clips simulated from independent frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scripts.independent_frames import DIGIT_KEY, independent_frames_bound, main


def test_closed_form_matches_simulated_clips_of_independent_frames():
    rng = np.random.default_rng(0)
    shares = np.array([1.0, 0.9, 0.6, 0.3])  # p_d for four requested digits
    digits = np.repeat(np.arange(4), 250)
    per_image = (rng.random(digits.size) < shares[digits]).astype(float)
    bound = independent_frames_bound(per_image, digits, frames=5)
    measured = np.array([per_image[digits == d].mean() for d in range(4)])
    # clips of 5 frames drawn independently with the measured shares: the share whose frames all show the digit
    clips = rng.random((4, 200_000, 5)) < measured[:, None, None]
    assert bound["all_frames_requested_digit"] == pytest.approx(clips.all(axis=2).mean(), abs=3e-3)
    assert bound["digit_accuracy"] == pytest.approx(per_image.mean())
    assert independent_frames_bound(per_image, digits, frames=1)["all_frames_requested_digit"] == pytest.approx(
        measured.mean())
    with pytest.raises(ValueError, match="frames >= 1"):
        independent_frames_bound(per_image, digits, frames=0)


def test_cli_reads_a_guidance_folder(tmp_path, capsys):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "samples.txt").write_text("a.mp4 0\nb.mp4 0\nc.mp4 1\nd.mp4 1\n")
    (tmp_path / "samples_metrics.json").write_text(json.dumps({"per_clip": {DIGIT_KEY: [1, 1, 1, 0]}}))
    assert main([str(tmp_path), "--frames", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["all_frames_requested_digit"] == pytest.approx((1.0 + 0.25) / 2)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
