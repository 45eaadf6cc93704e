"""The multi-view test: each item holds the documented windows × crops, and scores are aggregated per video."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from data.decoding import read_clip
from data.frame_sampling import view_indices
from data.transforms import eval_transform
from models.recognition.classifier_module import VideoClassifier, aggregate_views
from tests.conftest import compose_config


def datamodule(root, cache: bool = False, **views):
    cfg = compose_config("train", [f"data.root={root}", "data.generate=null", "data.num_workers=0",
                                   f"data.cache_videos={str(cache).lower()}", "data.num_frames=4",
                                   f"data.test_views={{temporal: {views['temporal']}, spatial: {views['spatial']}}}"])
    dm = instantiate(cfg.data)
    dm.setup("test")
    return dm, cfg


def test_test_items_hold_every_window_in_order(tiny_mmnist):
    dm, cfg = datamodule(tiny_mmnist, temporal=3, spatial=1)
    dataset = dm.datasets["test"]
    item = dataset[5]
    assert item["video"].shape == (3, 3, 4, 64, 64)  # (v c t h w): 3 windows x 1 crop
    path = dataset.samples[5].path
    transform = eval_transform(cfg.data.crop_size, cfg.data.resize_size, cfg.data.mean, cfg.data.std)
    for view, window in zip(item["video"], view_indices(8, 4, 1, 3)):  # 8-frame clips: starts 0, 2, 4
        torch.testing.assert_close(view, transform(read_clip(path, window)), rtol=0, atol=0)
    assert view_indices(8, 4, 1, 3) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    cached, _ = datamodule(tiny_mmnist, cache=True, temporal=3, spatial=1)  # from memory: the same views
    torch.testing.assert_close(cached.datasets["test"][5]["video"], item["video"], rtol=0, atol=0)
    # Validation keeps one centred clip per item.
    dm.setup("fit")
    assert dm.datasets["val"][0]["video"].shape == (3, 4, 64, 64)


def test_three_by_three_views_and_bad_values(tiny_mmnist):
    dm, _ = datamodule(tiny_mmnist, temporal=3, spatial=3)
    assert dm.datasets["test"][0]["video"].shape == (9, 3, 4, 64, 64)
    with pytest.raises(Exception, match="test_views.spatial=2"):
        datamodule(tiny_mmnist, temporal=1, spatial=2)


class MeanNet(nn.Module):
    """Logits from the clip's mean intensity per channel: different views give different logits."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.proj(video.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize("aggregation", ["sum_logits", "mean_softmax"])
def test_scores_are_aggregated_per_video_not_per_batch(aggregation):
    torch.manual_seed(0)
    model = VideoClassifier(MeanNet(), optimizer=None, scheduler=None, num_classes=4, view_aggregation=aggregation)
    video = torch.rand(2, 3, 3, 2, 5, 5)  # (b v c t h w): 2 videos x 3 views
    scores = model.scores(video)
    for b in range(2):  # reference: each view of each video through the net alone
        per_view = torch.stack([model.net(video[b, v][None])[0] for v in range(3)])  # (v k)
        expected = per_view.sum(0) if aggregation == "sum_logits" else per_view.softmax(-1).mean(0).log()
        torch.testing.assert_close(scores[b], expected)
    assert not torch.allclose(scores[0], scores[1])
    torch.testing.assert_close(aggregate_views(torch.zeros(1, 2, 4), "mean_softmax"), torch.full((1, 4), 0.25).log())
    with pytest.raises(ValueError, match="view_aggregation"):
        VideoClassifier(MeanNet(), optimizer=None, scheduler=None, num_classes=4, view_aggregation="max")


def test_eval_py_multi_view_accuracy_is_the_per_video_aggregate(train_config, tmp_path):
    from eval import evaluate
    from models.run import load_run
    from train import train

    run = tmp_path / "run"
    metrics = train(train_config("debug=tiny", "trainer.max_epochs=1", "test=false", output_dir=run))
    views = "{temporal: 3, spatial: 1}"
    result = evaluate(compose_config("eval", [f"ckpt_path={metrics['best_model_path']}",
                                              f"paths.output_dir={tmp_path / 'eval'}",
                                              f"+run_overrides.data.test_views={views}",
                                              "+run_overrides.data.num_workers=0", "+trainer.limit_test_batches=1.0"]))
    # Reference: every test video's 3 windows through the trained net, logits summed per video, by hand.
    loaded = load_run(metrics["best_model_path"])
    module = loaded.build_module()
    data_cfg = OmegaConf.merge(loaded.config.data, {"test_views": {"temporal": 3, "spatial": 1}, "generate": None})
    dm = instantiate(data_cfg)
    dm.setup("test")
    dataset = dm.datasets["test"]
    assert dataset[0]["video"].shape == (3, 3, 8, 64, 64)
    with torch.no_grad():
        correct = [module.net(dataset[i]["video"]).sum(0).argmax().item() == dataset[i]["label"].item()
                   for i in range(len(dataset))]
    assert result["test/acc_top1"] == pytest.approx(sum(correct) / len(correct))
