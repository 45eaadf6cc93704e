"""Recognition checkpoints as metric networks: run-folder loading, the preprocessing protocol, logits, accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from models.metrics.consistency import video_feature_consistency
from models.metrics.learned import batched_classifier_accuracy, classifier_accuracy
from models.recognition.scoring import RecognitionFrameEncoder, RecognitionModel, load_image_encoder
from tests.conftest import compose_config

NUM_CLASSES, NUM_FRAMES, CROP = 5, 4, 32
MEAN, STD = [0.1, 0.2, 0.3], [0.5, 0.4, 0.3]


def make_run(run_dir: Path, seed: int = 0, ckpt_name: str = "best.ckpt") -> torch.nn.Module:
    """A tiny TimeSformer run folder as train.py writes it: resolved config.yaml + checkpoints/<ckpt_name>.

    Returns the net whose weights were saved (in eval mode).
    """
    cfg = compose_config("train", [
        f"data.root={run_dir / 'data'}", "data.generate=null", f"data.num_classes={NUM_CLASSES}",
        f"data.num_frames={NUM_FRAMES}", f"data.crop_size={CROP}", f"data.resize_size={CROP}",
        f"data.train_scale=[{CROP},{CROP}]", f"data.mean={MEAN}", f"data.std={STD}",
        "model.net.embed_dim=32", "model.net.depth=1", "model.net.num_heads=2", f"paths.output_dir={run_dir}",
    ])
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    torch.manual_seed(seed)
    net = instantiate(cfg.model.net).eval()
    for block in net.blocks:  # the zero-initialised temporal_fc would hide temporal attention from the check
        torch.nn.init.normal_(block.temporal_fc.weight, std=0.05)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    state = {"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "epoch": 3, "global_step": 12}
    torch.save(state, run_dir / "checkpoints" / ckpt_name)
    return net


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("recognition") / "tiny_run"
    return run_dir, make_run(run_dir)


def normalise(video: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    return (video - mean) / std


def test_logits_and_features_equal_the_saved_net_on_hand_normalised_input(run):
    run_dir, net = run
    model = RecognitionModel(run_dir / "checkpoints" / "best.ckpt")
    assert not model.net.training and model.name == "timesformer:tiny_run"
    assert (model.num_classes, model.num_frames, model.crop_size, model.in_chans) == (NUM_CLASSES, NUM_FRAMES, CROP, 3)
    assert model.mean == pytest.approx(MEAN) and model.std == pytest.approx(STD) and model.class_names is None
    video = torch.rand(3, 3, NUM_FRAMES, CROP, CROP, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_logits = net(normalise(video))
        expected_features = net.forward_features(normalise(video))
    torch.testing.assert_close(model.logits(video), expected_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.features(video), expected_features, rtol=1e-5, atol=1e-5)
    assert model.features(video).shape == (3, 32)
    # a run folder resolves to its best.ckpt
    torch.testing.assert_close(RecognitionModel(run_dir).logits(video), expected_logits, rtol=1e-5, atol=1e-5)


def test_preprocess_selects_frames_resizes_and_expands_grey(run):
    run_dir, _ = run
    model = RecognitionModel(run_dir)
    gen = torch.Generator().manual_seed(2)
    long = torch.rand(2, 3, 9, CROP, CROP, generator=gen)
    torch.testing.assert_close(model.preprocess(long), normalise(long[:, :, :NUM_FRAMES]))
    strided = RecognitionModel(run_dir, frame_stride=2)
    torch.testing.assert_close(strided.preprocess(long), normalise(long[:, :, 0:7:2]))
    with pytest.raises(ValueError, match="frames"):
        strided.preprocess(long[:, :, :6])  # needs (4 - 1) * 2 + 1 = 7

    big = torch.rand(2, 3, NUM_FRAMES, 2 * CROP, 3 * CROP, generator=gen)  # short side 64 -> 32, then centre crop
    frames = big.permute(0, 2, 1, 3, 4).flatten(0, 1)
    resized = F.interpolate(frames, size=(CROP, 3 * CROP // 2), mode="bilinear", antialias=True, align_corners=False)
    by_hand = resized[..., :, (3 * CROP // 2 - CROP) // 2:][..., :CROP].unflatten(0, (2, NUM_FRAMES))
    torch.testing.assert_close(model.preprocess(big), normalise(by_hand.permute(0, 2, 1, 3, 4)), rtol=1e-5, atol=1e-5)

    grey = torch.rand(2, 1, NUM_FRAMES, CROP, CROP, generator=gen)
    torch.testing.assert_close(model.logits(grey), model.logits(grey.expand(-1, 3, -1, -1, -1)))
    with pytest.raises(ValueError, match="channels"):
        model.preprocess(torch.rand(1, 2, NUM_FRAMES, CROP, CROP))
    with pytest.raises(TypeError):
        model.preprocess((long * 255).to(torch.uint8))


def test_accuracy_is_the_fraction_of_correct_argmax(run):
    run_dir, net = run
    model = RecognitionModel(run_dir)
    video = torch.rand(8, 3, NUM_FRAMES, CROP, CROP, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        predicted = net(normalise(video)).argmax(dim=1)
    labels = predicted.clone()
    labels[[1, 4, 6]] = (labels[[1, 4, 6]] + 1) % NUM_CLASSES  # 3 wrong of 8
    assert classifier_accuracy(model, video, labels) == 5 / 8
    batches = [(video[:3], labels[:3]), (video[3:], labels[3:])]
    assert batched_classifier_accuracy(model, batches) == 5 / 8
    assert classifier_accuracy(model, video, predicted) == 1.0


def test_bad_labels_and_bad_runs_raise_clear_errors(run, tmp_path):
    run_dir, _ = run
    model = RecognitionModel(run_dir)
    video = torch.rand(2, 3, NUM_FRAMES, CROP, CROP)
    with pytest.raises(ValueError, match=r"labels\[1\]=5 is out of range"):
        classifier_accuracy(model, video, torch.tensor([0, NUM_CLASSES]))
    with pytest.raises(ValueError, match="integers"):
        classifier_accuracy(model, video, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels=None"):
        batched_classifier_accuracy(model, [(video, None)])

    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        RecognitionModel(run_dir / "checkpoints" / "missing.ckpt")
    lonely = tmp_path / "lonely" / "checkpoints"
    lonely.mkdir(parents=True)
    torch.save({"state_dict": {}}, lonely / "best.ckpt")
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        RecognitionModel(lonely / "best.ckpt")

    other = tmp_path / "other"
    make_run(other)
    cfg = OmegaConf.load(other / "config.yaml")
    cfg.model._target_ = "models.diffusion.diffusion_module.VideoDiffusion"  # the run kind comes from the class it builds
    OmegaConf.save(cfg, other / "config.yaml")
    with pytest.raises(ValueError, match="a diffusion run .*VideoDiffusion.*not a classifier run"):
        RecognitionModel(other)
    cfg.model._target_ = "models.diffusion.diffusion_module.LatentDiffusion"  # no such class
    OmegaConf.save(cfg, other / "config.yaml")
    with pytest.raises(ValueError, match="LatentDiffusion cannot be imported"):
        RecognitionModel(other)

    no_net = tmp_path / "no_net"
    make_run(no_net)
    torch.save({"state_dict": {"denoiser.weight": torch.zeros(1)}}, no_net / "checkpoints" / "best.ckpt")
    with pytest.raises(ValueError, match="no 'net.\\*' weights"):
        RecognitionModel(no_net)


def test_recognition_frame_encoder_feeds_each_frame_as_a_one_frame_clip(run):
    run_dir, net = run
    encoder = load_image_encoder(run_dir)
    assert isinstance(encoder, RecognitionFrameEncoder) and encoder.name == "timesformer:tiny_run"
    video = torch.rand(2, 3, 3, CROP, CROP, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        k = net.patch_embed.tubelet_size  # a still clip: the frame repeated over one tubelet
        by_hand = torch.stack([net.forward_features(normalise(video[:, :, i:i + 1].repeat(1, 1, k, 1, 1)))
                               for i in range(3)], dim=1)
    cos = F.cosine_similarity
    frame2 = cos(by_hand[:, 1], by_hand[:, 0], dim=-1).clamp(min=0)  # previous and first frame are the same
    frame3 = (cos(by_hand[:, 2], by_hand[:, 1], dim=-1).clamp(min=0)
              + cos(by_hand[:, 2], by_hand[:, 0], dim=-1).clamp(min=0)) / 2
    expected = (frame2 + frame3) / 2
    torch.testing.assert_close(video_feature_consistency(video, encoder), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_a_trained_run_matches_its_own_data_path_and_test_accuracy(train_config, tmp_path):
    from models.checkpointing import load_state_dict
    from models.run import load_run
    from train import train

    metrics = train(train_config("debug=tiny", "trainer.max_epochs=1", output_dir=tmp_path / "run"))
    model = RecognitionModel(metrics["best_model_path"])
    run_cfg = load_run(metrics["best_model_path"]).config
    datamodule = instantiate(run_cfg.data)
    datamodule.setup("test")
    classifier = instantiate(run_cfg.model).eval()
    classifier.load_state_dict(load_state_dict(metrics["best_model_path"]), strict=True)
    correct = total = 0
    for batch in datamodule.test_dataloader():  # normalised clips; undo the normalisation to get [0, 1] pixels
        mean = torch.tensor(model.mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(model.std).view(1, -1, 1, 1, 1)
        video = (batch["video"] * std + mean).clamp(0, 1)
        with torch.no_grad():
            expected = classifier(batch["video"])
        torch.testing.assert_close(model.logits(video), expected, rtol=1e-4, atol=1e-4)
        correct += int((model.logits(video).argmax(1) == batch["label"]).sum())
        total += len(batch["label"])
    assert correct / total == pytest.approx(metrics["test/acc_top1"], abs=1e-6)
