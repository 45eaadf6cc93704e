"""scripts/border_contact.py: first contact with the canvas border against a plain per-pixel loop and known clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data.video_writer import write_mp4
from scripts.border_contact import IDENTITY_KEY, border_contact, main


def square_clip(x0: int, step: int, frames: int = 8, side: int = 10) -> np.ndarray:
    """uint8 (t 64 64): a bright square whose left edge is at x0 + step * t, rows 27-36."""
    clip = np.zeros((frames, 64, 64), dtype=np.uint8)
    for t in range(frames):
        left = x0 + step * t
        clip[t, 27:27 + side, max(left, 0):max(min(left + side, 64), 0)] = 255
    return clip


def loop_first_contact(clip: torch.Tensor, margin: int, threshold: float) -> int:
    """The plain reference: scan every pixel of every frame."""
    t, h, w = clip.shape
    for frame in range(t):
        for y in range(h):
            for x in range(w):
                near = y < margin or x < margin or y >= h - margin or x >= w - margin
                if near and clip[frame, y, x] > threshold:
                    return frame
    return -1


def test_first_contact_matches_a_pixel_loop():
    generator = torch.Generator().manual_seed(0)
    clips = torch.zeros(6, 5, 16, 16)
    for i in range(6):  # one bright pixel per clip, somewhere at some frame (clip 5: none)
        if i < 5:
            frame, y, x = (int(v) for v in torch.randint(0, 16, (3,), generator=generator))
            clips[i, frame % 5, y, x] = 1.0
    clips[2, 4, 0, 7] = 1.0  # and a late one on the top edge
    for margin in (1, 2, 3):
        expected = [loop_first_contact(clip, margin, 0.3) for clip in clips]
        assert border_contact(clips, margin, 0.3).tolist() == expected
    assert border_contact(clips[5:], 2).tolist() == [-1]
    with pytest.raises(ValueError, match="margin=9"):
        border_contact(clips, margin=9)
    with pytest.raises(ValueError, match=r"\(n t h w\)"):
        border_contact(clips[0])


def test_cli_splits_identity_by_contact(tmp_path, capsys):
    # moving east 4 px a frame from x = 30: the square's last column 39 + 4t reaches column 62 at t = 6
    write_mp4(tmp_path / "east.mp4", square_clip(30, 4), fps=8)
    write_mp4(tmp_path / "still.mp4", square_clip(27, 0), fps=8)
    write_mp4(tmp_path / "west.mp4", square_clip(12, -3), fps=8)  # first column 12 - 3t < 2 at t = 4
    (tmp_path / "samples.txt").write_text("east.mp4 0\nstill.mp4 1\nwest.mp4 2\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"per_clip": {IDENTITY_KEY: [0.0, 1.0, 1.0]}}))
    assert main([str(tmp_path / "samples.txt"), "--metrics", str(tmp_path / "metrics.json"),
                 "--out", str(tmp_path / "contact.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    from scripts.records import rows_from_metrics_json

    written = rows_from_metrics_json(tmp_path / "contact.json")  # as records.py write --row reads it
    assert written["border_contact"]["value"] == pytest.approx(2 / 3) and written["clips"]["value"] == 3
    assert out["clips"] == 3 and out["border_contact"] == pytest.approx(2 / 3)
    assert out["first_contact_frame"] == {"4": 1, "6": 1}
    assert out["identity_touching"] == pytest.approx(0.5) and out["identity_not_touching"] == 1.0
    assert out["identity_consistency"] == pytest.approx(2 / 3)
    (tmp_path / "short.txt").write_text("east.mp4 0\n")
    (tmp_path / "few.json").write_text(json.dumps({"per_clip": {}}))
    with pytest.raises(SystemExit):
        main([str(tmp_path / "short.txt"), "--metrics", str(tmp_path / "few.json")])
