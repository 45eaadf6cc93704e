"""The metric registry: evaluate_videos as a loop over registered metrics (the same keys, values and reasons as the
code it replaced), a metric added by registering one function, the docs table rendered from the registry, networks as
callables, and a metric library that never imports Lightning or diffusers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.metrics import identity, registry
from models.metrics.evaluate import evaluate_videos
from models.metrics.learned import classifier_accuracy, network_name
from models.metrics.registry import REGISTRY, markdown_table, register, unregister
from models.metrics.video_set import iter_batches, load_video_set
from scripts.evaluate_videos import main as evaluate_main

ROOT = Path(__file__).resolve().parents[1]

# What the hand-written evaluate_videos reported (recorded from it before the registry, on the same kind of inputs).
OLD_FLAT_SKIPPED = {
    **{key: "needs --reference videos" for key in
       ("warp_error_dis_refflow", "warp_error_dis_refflow_lai", "tof_farneback", "mse", "mae", "psnr", "ssim")},
    "fvd[i3d]": "needs --i3d (a local I3D TorchScript file) and --reference",
    "feature_consistency": "needs --encoder: a local CLIP/DINO TorchScript file or a checkpoint of ours (no weights "
                           "are downloaded)",
    "classifier_accuracy": "needs --classifier: a recognition checkpoint of this framework",
    "flow_direction_accuracy": "the videos carry no labels (use a list file or class folders)",
    "identity_consistency": "needs --digit-classifier: a per-frame recognition checkpoint (train.py "
                            "experiment=mmnist_frame_digit)",
}
OLD_FULL_KEYS = [
    "temporal_flickering", "warp_error_dis", "dynamic_degree_dis", "motion_smoothness_flowinterp",
    "warp_error_dis_refflow", "warp_error_dis_refflow_lai", "tof_farneback", "mse", "mae", "psnr", "ssim",
    "feature_consistency[mean_colour]", "flow_direction_accuracy", "flow_direction_accuracy_any_speed",
    "dominant_speed_dis", "classifier_accuracy[timesformer:cls_run]",
    "identity_consistency[frameclassifier:frame_digit]", "digit_accuracy[frameclassifier:frame_digit]",
    "fvd[timesformer:cls_run]",
]
OLD_FULL_PROTOCOL = ["videos", "num_clips", "num_frames", "frame_size", "fps", "start_frame", "frame_order",
                     "reference", "flow_direction_accuracy", "identity_consistency", "digit_labels",
                     "fvd[timesformer:cls_run]"]


@pytest.fixture
def flat(tiny_mmnist, tmp_path) -> Path:
    """4 real Moving MNIST clips (8 frames, 64×64) in a flat folder: unlabelled."""
    folder = tmp_path / "flat"
    folder.mkdir()
    for path in sorted((tiny_mmnist / "test").glob("*.mp4"))[:4]:
        shutil.copy(path, folder)
    return folder


@pytest.fixture
def toy_metrics():
    """Names registered by a test, unregistered after it whatever happens."""
    names: list[str] = []
    yield names
    for name in names:
        REGISTRY.pop(name, None)


def _decoded(source: Path) -> torch.Tensor:
    return torch.cat([video for video, _ in iter_batches(load_video_set(source), 16)])  # float32 (b 3 t h w)


# ---------------------------------------------------------------------------------------- the loop and its keys


def test_the_loop_reports_the_old_keys_and_reasons_on_an_unlabelled_folder(flat):
    result = evaluate_videos(flat, progress=False)
    assert list(result.metrics) == ["temporal_flickering", "warp_error_dis", "dynamic_degree_dis",
                                    "motion_smoothness_flowinterp"]
    assert result.skipped == OLD_FLAT_SKIPPED
    assert list(result.per_frame) == list(result.metrics) and all(len(v) == 4 for v in result.per_clip.values())
    only = evaluate_videos(flat, groups=["consistency"], progress=False)
    assert not only.metrics and only.skipped == {"feature_consistency": OLD_FLAT_SKIPPED["feature_consistency"]}


def test_the_loop_reports_the_old_keys_with_every_network(tiny_mmnist, tmp_path):
    """Every input given (reference, a run as classifier, a per-frame run, an encoder, digit labels, cuts): the keys,
    their order and the protocol entries the hand-written loop reported; the paths reach the same numbers as the
    callables the adapter builds from them."""
    from tests.test_metrics_fvd import MeanColourEncoder
    from tests.test_metrics_identity import make_frame_run
    from tests.test_metrics_recognition import make_run
    from models.recognition.scoring import classifier_from_run

    sub = tmp_path / "sub"
    sub.mkdir()
    for task in ("direction", "digit"):  # 6 clips, absolute paths, class names beside the list
        lines = (tiny_mmnist / f"test_{task}.txt").read_text().splitlines()[:6]
        (sub / f"test_{task}.txt").write_text("".join(f"{tiny_mmnist / line}\n" for line in lines))
        shutil.copy(tiny_mmnist / f"classes_{task}.txt", sub)
    lines = (sub / "test_direction.txt").read_text().splitlines()
    (sub / "ref_direction.txt").write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # clip i paired with i + 1
    make_run(tmp_path / "cls_run")
    make_frame_run(tmp_path / "frame_digit")
    torch.jit.save(torch.jit.script(MeanColourEncoder()), str(tmp_path / "mean_colour.pt"))
    common = dict(reference=sub / "ref_direction.txt", encoder=tmp_path / "mean_colour.pt", cuts=[4],
                  digit_labels=sub / "test_digit.txt", batch_size=4, progress=False)
    classifier, reader = classifier_from_run(tmp_path / "cls_run"), classifier_from_run(tmp_path / "frame_digit")
    result = evaluate_videos(sub / "test_direction.txt", classifier=classifier, digit_classifier=reader, **common)
    assert list(result.metrics) == OLD_FULL_KEYS
    assert result.skipped == {"fvd[i3d]": OLD_FLAT_SKIPPED["fvd[i3d]"]}
    assert list(result.protocol) == OLD_FULL_PROTOCOL
    assert result.protocol["identity_consistency"] == {"classifier": str(reader.ckpt_path), "cuts": [4]}
    assert result.notes["identity_consistency[frameclassifier:frame_digit]"].startswith(
        "fraction of segments per slide (cuts at [4]) whose")
    assert "±22.5°" in result.notes["flow_direction_accuracy"]  # 8 compass classes
    # The clips as decoded, the classifier called directly: the accuracy is its fraction of correct clips.
    video = _decoded(sub / "test_direction.txt")
    labels = torch.tensor(load_video_set(sub / "test_direction.txt").labels)
    expected = (classifier(video).argmax(1) == labels).double()
    assert result.per_clip["classifier_accuracy[timesformer:cls_run]"] == expected.tolist()

    by_path = evaluate_videos(sub / "test_direction.txt", classifier=tmp_path / "cls_run",
                              digit_classifier=tmp_path / "frame_digit", **common)
    assert by_path.metrics == result.metrics and by_path.protocol == result.protocol


def test_the_command_builds_networks_with_the_adapter(tiny_mmnist, tmp_path):
    from tests.test_metrics_recognition import make_run

    make_run(tmp_path / "cls_run")
    out = tmp_path / "metrics.json"
    evaluate_main(["--videos", str(tiny_mmnist / "test_direction.txt"), "--classifier", str(tmp_path / "cls_run"),
                   "--groups", "accuracy", "--num-frames", "4", "--out", str(out)])
    report = json.loads(out.read_text())
    direct = evaluate_videos(tiny_mmnist / "test_direction.txt", classifier=tmp_path / "cls_run", groups=["accuracy"],
                             num_frames=4, progress=False)
    assert report["metrics"] == direct.metrics and "classifier_accuracy[timesformer:cls_run]" in report["metrics"]


# ----------------------------------------------------------------------------------- adding a metric, its needs


def test_a_registered_metric_appears_in_the_report_and_the_table(flat, tmp_path, toy_metrics):
    toy_metrics.append("mean_brightness")

    @register("mean_brightness", group="temporal", better="none", value_range="[0, 1]",
              note="mean pixel value of the clip", source="none: a sanity check",
              formula="`mean_{c,t,h,w} x` of the [0, 1] clip", comparability="project-specific")
    def mean_brightness(batch):
        return batch.video.double().mean(dim=(1, 2, 3, 4))  # (b,) float64

    result = evaluate_videos(flat, groups=["temporal"], batch_size=3, progress=False)
    expected = _decoded(flat).double().mean(dim=(1, 2, 3, 4))
    assert result.per_clip["mean_brightness"] == pytest.approx(expected.tolist(), rel=1e-12)
    assert result.metrics["mean_brightness"] == pytest.approx(expected.mean().item(), rel=1e-12)
    assert list(result.metrics)[-1] == "mean_brightness" and result.directions["mean_brightness"] == "none"
    assert "| `mean_brightness` | `mean_{c,t,h,w} x` of the [0, 1] clip | neither | [0, 1] | project-specific |" in (
        markdown_table().splitlines())
    assert "mean_brightness" not in evaluate_videos(flat, groups=["paired"], progress=False).metrics  # its group
    out = tmp_path / "report.json"
    evaluate_main(["--videos", str(flat), "--groups", "temporal", "--out", str(out)])
    assert "| `mean_brightness` |" in out.with_suffix(".md").read_text()

    unregister("mean_brightness")
    assert "mean_brightness" not in markdown_table() and "mean_brightness" not in evaluate_videos(
        flat, groups=["temporal"], progress=False).metrics


def test_unmet_needs_skip_with_the_reason_and_extra_inputs_meet_them(flat, toy_metrics):
    toy_metrics += ["toy_paired", "toy_depth", "toy_tagged"]
    register("toy_paired", group="temporal", needs=("reference",), better="lower", value_range="≥ 0", note="toy",
             source="toy")(lambda batch: (batch.video - batch.reference).abs().mean(dim=(1, 2, 3, 4)))
    register("toy_depth", group="temporal", needs=("depth_model",), better="none", value_range="any", note="toy",
             source="toy")(lambda batch: batch["depth_model"](batch.video))
    register("toy_tagged", key="toy_tagged[{classifier}]", group="temporal", needs=("classifier",), better="none",
             value_range="any", note="toy", source="toy")(lambda batch: batch["classifier"](batch.video)[:, 0])

    result = evaluate_videos(flat, groups=["temporal"], progress=False)
    assert result.skipped == {"toy_paired": "needs --reference videos",
                              "toy_depth": "needs 'depth_model': pass evaluate_videos(..., extra={'depth_model': ...})",
                              "toy_tagged": "needs --classifier: a recognition checkpoint of this framework"}
    assert not {"toy_paired", "toy_depth"} & set(result.metrics)

    def brightness(video):  # a plain function as the classifier: (b c t h w) -> (b 2) logits
        return torch.stack([video.mean(dim=(1, 2, 3, 4)), 1 - video.mean(dim=(1, 2, 3, 4))], dim=1)

    met = evaluate_videos(flat, reference=flat, groups=["temporal"], classifier=brightness, progress=False,
                          extra={"depth_model": lambda video: torch.full((len(video),), 0.25)})
    assert met.metrics["toy_paired"] == 0.0 and met.metrics["toy_depth"] == 0.25
    assert "toy_tagged[brightness]" in met.metrics and not met.skipped  # the tag is the callable's name


def test_registration_refuses_what_the_loop_could_not_run(toy_metrics):
    with pytest.raises(ValueError, match="already registered"):
        register("temporal_flickering", group="temporal", better="higher", value_range="", note="", source="")(len)
    with pytest.raises(ValueError, match="group='vibes'"):
        register("toy_a", group="vibes", better="higher", value_range="", note="", source="")(len)
    with pytest.raises(ValueError, match="better='up'"):
        register("toy_b", group="temporal", better="up", value_range="", note="", source="")(len)
    with pytest.raises(ValueError, match="reduce="):
        register("toy_c", group="fvd", kind="set", better="lower", value_range="", note="", source="")(len)
    with pytest.raises(ValueError, match="more than one placeholder"):
        register("toy_d", key="d[{classifier}][{encoder}]", group="temporal", better="lower", value_range="",
                 note="", source="")(len)
    with pytest.raises(ValueError, match="curve="):  # a 'frames' metric's curve is its own per-frame output
        register("toy_e", group="temporal", kind="frames", better="lower", value_range="", note="", source="",
                 curve=len)(len)
    assert not {"toy_a", "toy_b", "toy_c", "toy_d", "toy_e"} & set(REGISTRY)


def test_every_metric_declares_what_the_table_and_reports_need():
    for metric in REGISTRY.values():
        assert metric.source and metric.value_range and metric.formula and metric.comparability, metric.name
        assert metric.better in registry.BETTER and metric.kind in registry.KINDS, metric.name
        for name in metric.needs + ((metric.tag,) if metric.tag else ()):
            assert name in registry.NEEDS, (metric.name, name)


# ------------------------------------------------------------------------------------------------ the docs table


def test_the_docs_table_is_the_registry_rendered():
    text = (ROOT / "docs" / "metrics.md").read_text()
    match = re.search(r"<!-- results:metric_table -->\n(.*?)<!-- /results:metric_table -->", text, re.S)
    assert match, "docs/metrics.md has no metric_table markers"
    assert match.group(1) == markdown_table()
    keys = [line.split("`")[1] for line in markdown_table().splitlines()[2:]]
    assert keys[:2] == ["temporal_flickering", "warp_error_dis"] and len(keys) == 18
    assert "classifier_accuracy[<run>]" in keys and "fvd[timesformer:<run>]" in keys and "fvd[i3d]" in keys


# --------------------------------------------------------------------------------------- networks as callables


def test_classifier_accuracy_and_identity_take_plain_callables():
    video = torch.rand(4, 1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    video[:2] *= 0.4  # dark clips: class 0; bright ones: class 1

    def bright(x):  # (b c t h w) -> (b 2): logits of "dark" and "bright"
        mean = x.mean(dim=(1, 2, 3, 4))
        return torch.stack([0.4 - mean, mean - 0.4], dim=1)

    assert classifier_accuracy(bright, video, torch.tensor([0, 0, 1, 1])) == 1.0
    assert classifier_accuracy(bright, video, torch.tensor([0, 1, 1, 1])) == 0.75
    with pytest.raises(ValueError, match=r"labels\[1\]=2 is out of range \[0, num_classes=2\) of bright"):
        classifier_accuracy(bright, video, torch.tensor([0, 2, 1, 1]))
    calls = []

    def read(frames):  # a per-frame reader sees one-frame clips: (n c 1 h w)
        calls.append(tuple(frames.shape))
        return bright(frames)

    frames = identity.frame_predictions(read, video)
    assert calls == [(12, 1, 1, 8, 8)]
    expected = torch.stack([bright(video[:, :, k:k + 1]).argmax(1) for k in range(3)], dim=1)
    torch.testing.assert_close(frames, expected)
    read.num_frames = 8
    with pytest.raises(ValueError, match="read takes clips of 8 frames"):
        identity.frame_predictions(read, video)
    assert network_name(lambda x: x) == "network" and network_name(bright) == "bright"


# ------------------------------------------------------------------------------------- what the library imports


def test_importing_the_metric_library_loads_no_lightning_diffusers_or_runs():
    """In a fresh interpreter: the metric library, its registry and evaluate_videos import no Lightning, diffusers,
    run loading or model family; the adapter does (so the probe sees what it looks for)."""
    probe = """
import json, sys
def loaded():
    return sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'lightning_fabric',
        'diffusers') or m.startswith(('models.run', 'models.recognition', 'models.diffusion')))
import models.metrics
first = loaded()
import models.metrics.registry, models.metrics.evaluate, models.metrics.learned, models.metrics.fvd
import models.metrics.consistency, models.metrics.identity, models.metrics.report, models.metrics.stats
import models.metrics.corruptions
second = loaded()
import models.recognition.scoring
print(json.dumps([first, second, loaded()]))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first, second, adapter = json.loads(done.stdout.strip().splitlines()[-1])
    assert first == [] and second == [], second
    assert "models.run" in adapter and "models.recognition.scoring" in adapter
