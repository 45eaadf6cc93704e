"""Published TimeSformer weights: logit parity with HF transformers on random weights, and the key maps round-trip."""

from __future__ import annotations

import pytest
import torch

from models.recognition.pretrained import (hf_to_ours, init_from_pretrained, load_pretrained, official_state_dict,
                                           ours_to_hf, timesformer_from_hf, vivit_from_hf)
from models.recognition.timesformer import TimeSformer

transformers = pytest.importorskip("transformers")


# HF's space_only returns one logit row per frame, (b·t, k), where the official code averages the frames' CLS tokens
# before the final norm: there is no HF counterpart to match for it.
@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time"])
def test_logits_equal_hf_timesformer_on_the_same_clip(attention_type, tmp_path):
    torch.manual_seed(0)
    config = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                            num_labels=5, attention_type=attention_type)
    hf = transformers.TimesformerForVideoClassification(config).eval()
    with torch.no_grad():  # HF zero-inits nothing we rely on, but make every weight matter
        for param in hf.parameters():
            param.add_(0.02 * torch.randn_like(param))
    hf.save_pretrained(tmp_path / "hf")
    ours = timesformer_from_hf(tmp_path / "hf")
    video = torch.randn(2, 3, 4, 32, 32)  # (b c t h w)
    with torch.no_grad():
        expected = hf(pixel_values=video.permute(0, 2, 1, 3, 4)).logits  # HF takes (b t c h w)
        torch.testing.assert_close(ours(video), expected, atol=1e-4, rtol=0)


def test_logits_equal_hf_vivit_on_the_same_clip(tmp_path):
    """HF ViViT is model 1 with gelu_fast; its files keep separate query/key/value, fused into our qkv."""
    torch.manual_seed(0)
    config = transformers.VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 8, 8], hidden_size=32,
                                      num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, num_labels=5)
    hf = transformers.VivitForVideoClassification(config).eval()
    with torch.no_grad():
        for param in hf.parameters():
            param.add_(0.02 * torch.randn_like(param))
    hf.save_pretrained(tmp_path / "hf")
    ours = vivit_from_hf(tmp_path / "hf")
    assert ours.variant == 1 and ours.patch_embed.tubelet_size == 2
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = hf(pixel_values=video.permute(0, 2, 1, 3, 4)).logits
        torch.testing.assert_close(ours(video), expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="expected 'timesformer'"):
        timesformer_from_hf(tmp_path / "hf")
    with torch.no_grad():  # the entry point dispatches on the folder's model_type
        torch.testing.assert_close(load_pretrained(tmp_path / "hf")(video), expected, atol=1e-4, rtol=0)


def test_key_maps_round_trip_and_refuse_foreign_keys(tmp_path):
    model = TimeSformer(img_size=32, patch_size=8, num_classes=5, num_frames=4, embed_dim=16, depth=2, num_heads=2)
    for key in model.state_dict():
        assert hf_to_ours(ours_to_hf(key)) == key
    with pytest.raises(KeyError):
        hf_to_ours("timesformer.encoder.layer.0.mystery.weight")
    # official checkpoints: our names under a "model." prefix load back exactly
    path = tmp_path / "official.pyth"
    torch.save({"model_state": {f"model.{k}": v for k, v in model.state_dict().items()}, "epoch": 15}, path)
    reloaded = TimeSformer(img_size=32, patch_size=8, num_classes=5, num_frames=4, embed_dim=16, depth=2, num_heads=2)
    reloaded.load_state_dict(official_state_dict(path), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    # Fine-tuning from it (model.pretrained=...pyth): every weight but a head of another class count is copied.
    target = TimeSformer(img_size=32, patch_size=8, num_classes=3, num_frames=4, embed_dim=16, depth=2, num_heads=2)
    head = target.head.weight.clone()
    assert init_from_pretrained(target, path) == ["head.weight", "head.bias"]
    assert torch.equal(target.head.weight, head) and torch.equal(target.blocks[1].attn.qkv.weight,
                                                                  model.blocks[1].attn.qkv.weight)


def test_a_folder_that_does_not_fit_names_the_keys(tmp_path):
    config = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=16,
                                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                            num_labels=3)
    hf = transformers.TimesformerForVideoClassification(config)
    hf.save_pretrained(tmp_path / "hf")
    config_file = tmp_path / "hf" / "config.json"
    config_file.write_text(config_file.read_text().replace('"num_hidden_layers": 1', '"num_hidden_layers": 2'))
    with pytest.raises(ValueError, match="missing.*blocks.1"):
        timesformer_from_hf(tmp_path / "hf")
    with pytest.raises(FileNotFoundError, match="config.json"):
        timesformer_from_hf(tmp_path)


def test_fine_tuning_from_hf_weights_replaces_only_a_head_of_another_size(tmp_path, train_config):
    """train.py model.pretrained=<HF folder>: every weight but the 5-class head is HF's, and training runs."""
    from hydra.utils import instantiate

    from train import train

    config = transformers.TimesformerConfig(image_size=64, patch_size=16, num_frames=8, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                            num_labels=5)
    transformers.TimesformerForVideoClassification(config).save_pretrained(tmp_path / "hf")
    overrides = ("~experiment", f"model.pretrained={tmp_path / 'hf'}", "model.net.depth=2", "model.net.num_heads=4",
                 "model.net.tubelet_size=1", "model.net.attention_type=divided_space_time", "data.num_workers=0")
    cfg = train_config(*overrides)
    module = instantiate(cfg.model)
    source = timesformer_from_hf(tmp_path / "hf").state_dict()
    for key, value in module.net.state_dict().items():
        assert torch.equal(value, source[key]) != key.startswith("head."), key  # 8 classes here, 5 in the source
    assert "train/loss" in train(train_config(*overrides, "debug=fast_dev_run"))


def _predict_module():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("predict", Path("scripts/predict.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_predict_ranks_the_classes_of_a_run_with_its_evaluation_clip(tiny_mmnist, tmp_path):
    from data.decoding import read_clip
    from models.recognition.scoring import RecognitionModel
    from tests.test_metrics_recognition import make_run

    make_run(tmp_path / "run")  # a 4-frame, 5-class TimeSformer run (random weights)
    video = tiny_mmnist / "test" / "00000.mp4"  # 8 frames: the centred 4-frame clip is frames 2-5
    ranking = _predict_module().predict(tmp_path / "run", video, topk=5)
    model = RecognitionModel(tmp_path / "run")
    expected = model.logits(read_clip(str(video), range(2, 6)).float()[None] / 255)[0].softmax(dim=-1)
    assert [name for name, _ in ranking] == [str(int(k)) for k in expected.argsort(descending=True)]
    torch.testing.assert_close(torch.tensor([p for _, p in ranking]), expected.sort(descending=True).values)


def test_predict_names_the_classes_of_an_hf_folder(tiny_mmnist, tmp_path):
    config = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=16,
                                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                            id2label={0: "archery", 1: "bowling", 2: "yoga"})
    transformers.TimesformerForVideoClassification(config).save_pretrained(tmp_path / "hf")
    ranking = _predict_module().predict(tmp_path / "hf", tiny_mmnist / "test" / "00000.mp4", topk=3)
    assert sorted(name for name, _ in ranking) == ["archery", "bowling", "yoga"]
    assert sum(p for _, p in ranking) == pytest.approx(1.0) and ranking[0][1] >= ranking[-1][1]
    with pytest.raises(FileNotFoundError, match="not found"):
        _predict_module().predict(tmp_path / "hf", tmp_path / "missing.mp4")


def test_the_sources_input_protocol_is_used_and_recorded(tmp_path, train_config):
    """An HF folder's preprocessor_config.json sets data.mean/std/crop/resize; the run's config.yaml records them."""
    import json

    from omegaconf import OmegaConf

    from models.recognition.pretrained import source_preprocessing
    from train import train

    config = transformers.TimesformerConfig(image_size=64, patch_size=16, num_frames=8, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                            num_labels=8)
    transformers.TimesformerForVideoClassification(config).save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "preprocessor_config.json").write_text(json.dumps({
        "image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.25, 0.3], "crop_size": {"height": 64, "width": 64},
        "size": {"shortest_edge": 72}, "image_processor_type": "VideoMAEImageProcessor"}))
    assert source_preprocessing(tmp_path / "hf") == {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3],
                                                     "crop_size": 64, "resize_size": 72}
    run = tmp_path / "run"
    train(train_config("~experiment", f"model.pretrained={tmp_path / 'hf'}", "model.net.depth=2",
                       "model.net.num_heads=4", "data.num_workers=0", "debug=fast_dev_run", output_dir=run))
    saved = OmegaConf.load(run / "config.yaml").data
    assert list(saved.mean) == [0.5, 0.4, 0.3] and list(saved.std) == [0.2, 0.25, 0.3] and saved.resize_size == 72
    # A run of ours states its own protocol; a file without one states nothing.
    assert source_preprocessing(run)["resize_size"] == 72
    assert source_preprocessing(tmp_path / "hf" / "model.safetensors") == {}
