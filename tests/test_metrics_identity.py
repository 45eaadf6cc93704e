"""Identity consistency and digit accuracy: closed forms, the per-frame path against a plain loop, real slide shows."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from models.recognition.frame_classifier import FrameClassifier
from models.metrics.evaluate import evaluate_videos
from models.metrics.identity import digit_accuracy, frame_predictions, identity_consistency, segments_of
from models.metrics.video_set import load_video_set
from models.recognition.scoring import RecognitionModel
from tests.conftest import compose_config


def test_segments_and_closed_forms():
    assert segments_of(8) == [(0, 8)] and segments_of(8, [4]) == [(0, 4), (4, 8)]
    for bad in ([0], [8], [5, 3], [4, 4]):
        with pytest.raises(ValueError, match="cuts"):
            segments_of(8, bad)
    predictions = torch.tensor([
        [3, 3, 3, 3, 3, 3],  # one digit throughout
        [3, 3, 3, 7, 7, 7],  # a clean cut at frame 3: inconsistent as one clip, consistent per slide
        [3, 1, 3, 7, 7, 7],  # slide 1 flickers
        [2, 2, 2, 2, 2, 5],  # the last frame changes
    ])
    torch.testing.assert_close(identity_consistency(predictions), torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(identity_consistency(predictions, [3]),
                               torch.tensor([1.0, 1.0, 0.5, 0.5], dtype=torch.float64))
    labels = torch.tensor([3, 3, 3, 3])
    torch.testing.assert_close(digit_accuracy(predictions, labels), torch.tensor([1, 3 / 6, 2 / 6, 0], dtype=torch.float64))
    torch.testing.assert_close(digit_accuracy(predictions, labels, [3]), torch.tensor([1, 1, 2 / 3, 0], dtype=torch.float64))
    hits = digit_accuracy(predictions, labels, per_frame=True)  # (b t): which frames show the label
    torch.testing.assert_close(hits, torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 0, 0],
                                                   [0, 0, 0, 0, 0, 0]], dtype=torch.float64))
    torch.testing.assert_close(digit_accuracy(predictions, labels, [3], per_frame=True), hits[:, :3])  # slide 1 only


def test_frame_classifier_averages_the_logits_of_frames_classified_alone():
    torch.manual_seed(0)
    net = FrameClassifier("resnet10t", num_classes=4).eval()
    video = torch.randn(2, 3, 5, 32, 32)
    with torch.no_grad():
        alone = torch.stack([torch.stack([net.backbone(video[i, :, k][None])[0] for k in range(5)]) for i in range(2)])
        torch.testing.assert_close(net.forward_frames(video), alone, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(net(video), alone.mean(dim=1), atol=1e-5, rtol=1e-5)
        assert net.forward_features(video).shape == (2, net.backbone.num_features)
    with pytest.raises(ValueError, match="b c t h w"):
        net(video[:, :, 0])
    with pytest.raises(RuntimeError):
        FrameClassifier("no_such_model", num_classes=4)
    assert isinstance(net.backbone, timm.models.ResNet)


def make_frame_run(run_dir: Path, num_frames: int = 1) -> FrameClassifier:
    """A per-frame digit classifier's run folder (random weights), as train.py writes it."""
    cfg = compose_config("train", ["experiment=mmnist_frame_digit", f"data.num_frames={num_frames}",
                                   f"data.root={run_dir / 'data'}", "data.generate=null", f"paths.output_dir={run_dir}"])
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    torch.manual_seed(0)
    net = instantiate(cfg.model.net).eval()
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, run_dir / "checkpoints" / "best.ckpt")
    return net


def test_frame_predictions_classify_every_frame_with_the_runs_protocol(tmp_path):
    net = make_frame_run(tmp_path / "frame_digit")
    model = RecognitionModel(tmp_path / "frame_digit")
    video = torch.rand(3, 1, 4, 64, 64)  # grey
    normalised = (video.expand(-1, 3, -1, -1, -1) - 0.0) / 0.5  # mmnist data.mean 0, std 0.5
    with torch.no_grad():
        expected = torch.stack([net(normalised[:, :, k:k + 1]).argmax(dim=1) for k in range(4)], dim=1)
    torch.testing.assert_close(frame_predictions(model, video), expected)
    make_frame_run(tmp_path / "clip_model", num_frames=8)
    with pytest.raises(ValueError, match="per-frame classifier"):
        frame_predictions(RecognitionModel(tmp_path / "clip_model"), video)


def test_evaluate_videos_scores_identity_per_slide_on_real_slide_shows(tmp_path):
    """Real slide shows (two stills, cut at frame 4): per slide every frame is one image, so any deterministic
    per-frame classifier is consistent on every slide; as one segment, a clip is consistent only where the
    classifier happens to give both slides the same digit."""
    from data.moving_mnist_build import build_dataset

    root = build_dataset(tmp_path / "slides", "slides", num_train=0, num_val=0, num_test=6, verbose=False)
    make_frame_run(tmp_path / "frame_digit")
    ckpt = tmp_path / "frame_digit" / "checkpoints" / "best.ckpt"
    per_slide = evaluate_videos(root / "test_digit.txt", digit_classifier=ckpt, cuts=[4], groups=["accuracy"],
                                progress=False)
    key = "identity_consistency[frameclassifier:frame_digit]"
    assert per_slide.metrics[key] == 1.0 and per_slide.per_clip[key] == [1.0] * 6
    assert "digit_accuracy[frameclassifier:frame_digit]" in per_slide.metrics  # labels are digits 0-9
    whole = evaluate_videos(root / "test_digit.txt", digit_classifier=ckpt, groups=["accuracy"], progress=False)
    predictions = frame_predictions(RecognitionModel(ckpt), _decode_all(root))
    torch.testing.assert_close(torch.tensor(whole.per_clip[key], dtype=torch.float64),
                               (predictions[:, 0] == predictions[:, 4]).double())
    # digit accuracy's per-frame curve: the share of clips whose frame k the classifier reads as the label
    labels = torch.tensor(load_video_set(root / "test_digit.txt").labels)
    accuracy = "digit_accuracy[frameclassifier:frame_digit]"
    torch.testing.assert_close(torch.tensor(whole.per_frame[accuracy], dtype=torch.float64),
                               (predictions == labels[:, None]).double().mean(dim=0))
    assert len(per_slide.per_frame[accuracy]) == 4  # the first slide's frames
    assert key not in whole.per_frame  # identity is one value a clip, with no curve


def _decode_all(root: Path) -> torch.Tensor:
    from models.metrics.video_set import iter_batches, load_video_set

    return torch.cat([video for video, _ in iter_batches(load_video_set(root / "test_digit.txt"), 16)])

