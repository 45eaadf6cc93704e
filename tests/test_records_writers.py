"""The producers of the result records (results/*.json) write the figures they print, and only where they are told.

The shell producers (seed_sweep.sh, generation_demo.sh, generation_rows.sh) run with a stub interpreter (``PY``):
training, sampling and dataset builds are skipped, ``scripts/evaluate_videos.py`` writes a small report of known
numbers, and the reporting scripts (summarize_sweep.py, generation_table.py, the records CLI) run for real. Every
record goes to a temporary results folder; the fp32 matmul peak probe is replaced by a fixed number (the real one
takes 2-20 s), which also shows that each record's machine is measured by the producer's own run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import bench_metrics, records, summarize_sweep

ROOT = Path(__file__).resolve().parents[1]
FAKE_PEAK = 123.4e9  # FLOP/s: what the stubbed probe "measures"


def results_listing() -> dict[str, tuple[int, int]]:
    """The real results/ folder: file -> (size, mtime), to show a test wrote nothing there."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted((ROOT / "results").iterdir())}


@pytest.fixture
def untouched_results():
    before = results_listing()
    yield
    assert results_listing() == before, "a test wrote into the real results/ folder"


@pytest.fixture
def fast_peak(monkeypatch):
    monkeypatch.setattr(records, "matmul_peak", lambda *args, **kwargs: FAKE_PEAK)


# --------------------------------------------------------------------------------------------------------------------
# A stub interpreter for the shell producers
# --------------------------------------------------------------------------------------------------------------------
FAKE_EVALUATE = '''
import json, sys, zlib
args = sys.argv[1:]
out = args[args.index("--out") + 1]
__import__("os").makedirs(__import__("os").path.dirname(out) or ".", exist_ok=True)
base = 0.5 + (zlib.crc32(out.encode()) % 400) / 1000  # different numbers for every report
metrics = {"flow_direction_accuracy": base, "classifier_accuracy[timesformer:divided]": base - 0.1,
           "temporal_flickering": 0.97}
if "--reference" in args:
    metrics |= {"ssim": 0.8123, "mse": 41.26}
ci95 = {key: [value - 0.02, value + 0.02] for key, value in metrics.items()}
with open(out, "w") as handle:
    json.dump({"metrics": metrics, "ci95": ci95}, handle)
'''
FAKE_TRAIN = '''
import json, os, sys
opts = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
folder = opts.get("hydra.run.dir")
if folder:  # the stage-2 config generation_table.py reads (JSON is YAML)
    os.makedirs(folder, exist_ok=True)
    model = {"net": {"layout": opts.get("model.net.layout", "divided"),
                     "temporal_pos_embed": opts.get("model.net.temporal_pos_embed", "sincos")},
             "noise_prior": opts.get("model.noise_prior", "iid"),
             "num_cond_frames": int(opts.get("model.num_cond_frames", 0))}
    config = {"seed": 0, "num_threads": int(opts.get("num_threads", 2)), "model": model,
              "trainer": {"max_steps": int(opts.get("trainer.max_steps", 4000))}}
    with open(os.path.join(folder, "config.yaml"), "w") as handle:
        json.dump(config, handle)
'''
FAST_RECORDS = ("import sys, scripts.records as r; r.matmul_peak = lambda *a, **k: {peak}; "
                "sys.exit(r.main(sys.argv[2:]))")
FAST_SCRIPT = ("import runpy, sys, scripts.records as r; r.matmul_peak = lambda *a, **k: {peak}; "
               "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture
def stub_python(tmp_path) -> Path:
    """A ``PY`` for the shell scripts: the reporting scripts run for real (fast peak), the rest is stubbed; every
    call is logged to ``<tmp>/stub/calls``."""
    folder = tmp_path / "stub"
    folder.mkdir()
    (folder / "evaluate.py").write_text(FAKE_EVALUATE)
    (folder / "train.py").write_text(FAKE_TRAIN)
    stub = folder / "python"
    stub.write_text(f'''#!/usr/bin/env bash
printf '%s\\n' "$*" >> {folder}/calls
case "$1" in
  scripts/records.py) exec {sys.executable} -c "{FAST_RECORDS.format(peak=FAKE_PEAK)}" "$@" ;;
  scripts/summarize_sweep.py|scripts/generation_table.py)
    exec {sys.executable} -c "{FAST_SCRIPT.format(peak=FAKE_PEAK)}" "$@" ;;
  scripts/evaluate_videos.py) exec {sys.executable} {folder}/evaluate.py "$@" ;;
  train.py) exec {sys.executable} {folder}/train.py "$@" ;;
esac
exit 0
''')
    stub.chmod(0o755)
    return stub


def run_script(script: str, stub: Path, **env: str) -> str:
    """Run ``scripts/<script>`` from the repository root with the stub interpreter; returns its stdout."""
    done = subprocess.run(["bash", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PY": str(stub), **env})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def table_cells(markdown: str) -> dict[str, dict[str, str]]:
    """A Markdown table as {first cell: {header: cell}}."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])
    return {cells[0]: dict(zip(header, cells)) for cells in rows}


# --------------------------------------------------------------------------------------------------------------------
# 1. The seed sweep
# --------------------------------------------------------------------------------------------------------------------
SWEEP = {"divided_space_time": [1.0, 0.96], "space_only": [0.37, 0.6]}  # seeds 0, 1; space_only seed 1 too high


def fake_sweep(out: Path) -> None:
    """The folders Hydra's multirun leaves: ``experiment=...,seed=N`` with its overrides, config and metrics."""
    for attention, values in SWEEP.items():
        experiment = "mmnist_direction_" + ("divided" if attention == "divided_space_time" else "space_only")
        for seed, value in enumerate(values):
            run = out / f"experiment={experiment},seed={seed}"
            (run / ".hydra").mkdir(parents=True)
            (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
                [f"experiment={experiment}", f"seed={seed}", "num_threads=1"]))
            (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({
                "seed": seed, "num_threads": 1, "data": {"generate": {"variant": "direction"}},
                "model": {"net": {"attention_type": attention}}}))
            (run / "train_metrics.json").write_text(json.dumps({"test/acc_top1": value}))


def test_seed_sweep_writes_its_spreads_and_targets_as_a_record(tmp_path, stub_python, untouched_results):
    out, results = tmp_path / "seeds", tmp_path / "results"
    fake_sweep(out)
    printed = run_script("seed_sweep.sh", stub_python, OUT=str(out), SEEDS="0,1", THREADS="1",
                         RECORD="recognition_seed_sweep", RESULTS_DIR=str(results))
    record = json.loads((results / "recognition_seed_sweep.json").read_text())
    assert record["provenance"] == "measured" and record["seeds"] == [0, 1]
    assert record["command"] == "SEEDS=0,1 THREADS=1 bash scripts/seed_sweep.sh"
    assert record["machine"]["fp32_matmul_peak_gflops"] == FAKE_PEAK / 1e9 and record["machine"]["torch_threads"] == 1
    assert set(record["rows"]) == {"direction / divided_space_time", "direction / space_only"}
    for attention, values in SWEEP.items():
        assert record["rows"][f"direction / {attention}"]["test_acc_top1"] == records.seed_entry(values)
    # the same figures and verdicts as the printed summary
    summary = table_cells(printed)
    divided = summary["experiment=mmnist_direction_divided"]
    space_only = summary["experiment=mmnist_direction_space_only"]
    spread = record["rows"]["direction / divided_space_time"]["test_acc_top1"]
    assert divided["mean"] == f"{100 * spread['mean']:.1f}%" and divided["min"] == f"{100 * spread['min']:.1f}%"
    assert record["rows"]["direction / divided_space_time"]["target"]["text"] == divided["target"] == \
        "≥ 95 % on every seed: met"
    assert record["rows"]["direction / space_only"]["target"]["text"] == space_only["target"] == \
        "≤ 55 % on every seed: **missed** (seed 1: 60.0 %)"
    # ... and the docs table renders from it
    from scripts import render_docs

    text = render_docs.render_table(render_docs.TABLES["recognition_seed_sweep"], [record])
    assert "| direction / divided_space_time | **98.0 %** [96.0, 100.0] | ≥ 95 % on every seed: met |" in text


def test_a_partial_seed_sweep_writes_no_record_unless_asked(tmp_path, stub_python, untouched_results):
    out, results = tmp_path / "seeds", tmp_path / "results"
    fake_sweep(out)
    run_script("seed_sweep.sh", stub_python, OUT=str(out), SEEDS="0,1", RESULTS_DIR=str(results))
    assert not results.exists()  # non-default SEEDS: the full sweep's record is not replaced


def test_summarize_sweep_writes_no_record_by_default_and_names_rows_after_groups(tmp_path, fast_peak,
                                                                                  untouched_results, capsys):
    fake_sweep(tmp_path / "seeds")
    summarize_sweep.main([str(tmp_path / "seeds"), "--results-dir", str(tmp_path / "results")])
    assert not (tmp_path / "results").exists()
    summarize_sweep.main([str(tmp_path / "seeds"), "--record", "sweep", "--results-dir", str(tmp_path / "results")])
    record = json.loads((tmp_path / "results" / "sweep.json").read_text())
    assert set(record["rows"]) == {"experiment=mmnist_direction_divided", "experiment=mmnist_direction_space_only"}
    assert record["command"].startswith("python scripts/summarize_sweep.py ")
    assert "record: " in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------------------------
# 2. The generation job and its table
# --------------------------------------------------------------------------------------------------------------------
STEP_LINE = re.compile(r"^   step: (?P<label>.+): (?P<seconds>\d+) s \(\d+ s so far\)$", re.M)


def test_generation_job_records_its_scores_and_the_seconds_of_every_step(tmp_path, stub_python, untouched_results):
    gen, results = tmp_path / "gen", tmp_path / "results"
    (gen / "autoencoder" / "latents").mkdir(parents=True)
    (gen / "autoencoder" / "latents" / "test.pt").write_text("")  # a latent cache made earlier: reused
    printed = run_script("generation_demo.sh", stub_python, GEN=str(gen), RESULTS_DIR=str(results),
                         CLASSIFIER=str(tmp_path / "clf" / "checkpoints" / "best.ckpt"))
    job = json.loads((results / "generation_job.json").read_text())
    ae, out = gen / "autoencoder", gen / "divided"
    assert job["rows"] == {"real test clips": records.rows_from_metrics_json(ae / "originals_metrics.json"),
                           "stage-1 reconstructions of them": records.rows_from_metrics_json(
                               ae / "reconstructions_metrics.json"),
                           "`divided` samples (256 clips)": records.rows_from_metrics_json(
                               out / "samples_metrics.json")}
    samples = json.loads((out / "samples_metrics.json").read_text())
    assert job["rows"]["`divided` samples (256 clips)"]["flow_direction_accuracy"] == {
        "value": samples["metrics"]["flow_direction_accuracy"], "ci95": samples["ci95"]["flow_direction_accuracy"]}
    assert job["command"] == "make generation" and job["seeds"] == [0]
    assert job["machine"]["fp32_matmul_peak_gflops"] == FAKE_PEAK / 1e9

    timing = json.loads((results / "generation_job_time.json").read_text())
    steps = {m["label"]: int(m["seconds"]) for m in STEP_LINE.finditer(printed)}
    total = int(re.search(r"generation job \(divided\) finished in (\d+) s", printed)[1])
    assert list(steps) == ["dataset and recognition model (made when missing)", "stage 1 (frame autoencoder)",
                           "what stage 1 keeps (reconstructions scored)", "latent cache",
                           "stage 2 (video DiT, motion curve)", "sampling 256 clips", "scoring and the curve"]
    assert {row: entry["seconds"]["value"] for row, entry in timing["rows"].items()} == {
        **steps, "**generation job (divided), in all**": total}
    assert timing["rows"]["latent cache"]["budget"]["text"] == "reused (already made)"
    assert "budget" not in timing["rows"]["stage 1 (frame autoencoder)"]  # trained in this run (by the stub)
    assert timing["rows"]["stage 2 (video DiT, motion curve)"]["budget"]["text"] == "≤ 45 min: met"
    assert timing["rows"]["**generation job (divided), in all**"]["budget"]["text"] == "≤ 75 min: met"
    assert timing["machine"]["fp32_matmul_peak_gflops"] == FAKE_PEAK / 1e9
    from scripts import render_docs

    render_docs.render_table(render_docs.TABLES["generation_job_time"], [timing])


@pytest.mark.parametrize("base_seconds", [600, None])
def test_the_digits_recipe_chains_its_image_stage_and_records_both_image_runs_minutes(tmp_path, stub_python,
                                                                                      untouched_results, base_seconds):
    """make generation-digits' IMAGE_BASE: the base image run (made earlier: 600 s, or by hand, untimed) starts the
    image stage, which starts the video stage; the record's image-stage minutes are both runs' (none when the base
    run's time is unknown) and its command names IMAGE_BASE."""
    gen, results = tmp_path / "gen", tmp_path / "results"
    base = gen / "image"
    base.mkdir(parents=True)
    (base / "train_metrics.json").write_text("{}")
    if base_seconds is not None:
        (base / "seconds.txt").write_text(f"{base_seconds}\n")
    run_script("generation_digits.sh", stub_python, GEN=str(gen), RESULTS_DIR=str(results), SCALES="4",
               IMAGE_BASE=str(base), IMAGE=str(gen / "image_5k"), ROW="toy", SEED="1", FIRST_FRAME="6",
               VIDEO_ARGS="trainer.max_steps=1500", DIGITS=str(tmp_path / "clf" / "checkpoints" / "best.ckpt"))
    trains = [line for line in (tmp_path / "stub" / "calls").read_text().splitlines() if line.startswith("train.py")]
    assert [line.split()[1] for line in trains] == [
        "experiment=mmnist_frame_digit", "experiment=mmnist_autoencoder", "experiment=mmnist_dit_image",
        "experiment=mmnist_dit_digits"]  # the base image run is not trained again
    assert f"model.init_from={base}/checkpoints/last.ckpt" in trains[2].split()
    assert f"hydra.run.dir={gen}/image_5k" in trains[2].split()
    assert f"model.init_from={gen}/image_5k/checkpoints/last.ckpt" in trains[3].split()
    assert "seed=1" in trains[3].split() and "trainer.max_steps=1500" in trains[3].split()
    record = json.loads((results / "generation_toy.json").read_text())
    if base_seconds is None:
        assert "minutes" not in record["rows"]["image stage"]
    else:
        minutes = (base_seconds + int((gen / "image_5k" / "seconds.txt").read_text())) / 60
        assert record["rows"]["image stage"]["minutes"]["value"] == pytest.approx(round(minutes, 1))
    assert record["command"].startswith(f"SCALES=4 IMAGE_BASE={base} IMAGE={gen}/image_5k ")
    assert record["seeds"] == [1]


def test_a_first_frame_stage_is_trained_from_the_image_stage_and_draws_frame_one(tmp_path, stub_python,
                                                                                 untouched_results):
    """FIRST_FRAME_STAGE: an image stage trained on the clips' first frames (asked for digit and direction), started
    from IMAGE, draws frame 1 in place of IMAGE; the record's command and note name it."""
    gen, results = tmp_path / "gen", tmp_path / "results"
    stage = gen / "first_frame"
    run_script("generation_digits.sh", stub_python, GEN=str(gen), RESULTS_DIR=str(results), SCALES="4", ROW="toy",
               FIRST_FRAME="6", FIRST_FRAME_STAGE=str(stage), VIDEO_ARGS="model.num_cond_frames=1",
               DIGITS=str(tmp_path / "clf" / "checkpoints" / "best.ckpt"))
    calls = (tmp_path / "stub" / "calls").read_text().splitlines()
    trains = [line.split() for line in calls if line.startswith("train.py experiment=mmnist_dit")]
    assert [t[1] for t in trains] == ["experiment=mmnist_dit_image", "experiment=mmnist_dit_first_frame",
                                      "experiment=mmnist_dit_digits"]
    assert {f"hydra.run.dir={stage}", f"model.init_from={gen}/image/checkpoints/last.ckpt",
            f"data.root={gen}/autoencoder/latents_sets"} <= set(trains[1])
    assert f"model.init_from={gen}/image/checkpoints/last.ckpt" in trains[2]  # the video stage: the image stage's
    sampled = next(line.split() for line in calls  # the video stage's samples (the image stage's come first)
                   if line.startswith(f"scripts/sample_videos.py --ckpt {gen}/toy/dit/"))
    assert sampled[sampled.index("--first-frame-from") + 1] == f"{stage}/checkpoints/last.ckpt"
    record = json.loads((results / "generation_toy.json").read_text())
    assert f"FIRST_FRAME=6 FIRST_FRAME_STAGE={stage} bash" in record["command"]
    assert any("experiment=mmnist_dit_first_frame" in note and "min of training" in note for note in record["notes"])
    assert "frame 1 by the first-frame stage at guidance 6" in record["rows"]["video stage"]["label"]["text"]

    failed = subprocess.run(["bash", "scripts/generation_digits.sh"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PY": str(stub_python), "GEN": str(gen), "ROW": "toy2",
                                              "RESULTS_DIR": str(results), "FIRST_FRAME_STAGE": str(stage),
                                              "DIGITS": str(tmp_path / "clf" / "checkpoints" / "best.ckpt")})
    assert failed.returncode == 2 and "FIRST_FRAME_STAGE needs FIRST_FRAME" in failed.stderr


def test_sampler_switch_reaches_the_sampling_call_and_the_record(tmp_path, stub_python, untouched_results):
    """SAMPLER=dpmpp_2m samples with DPM-Solver++(2M) and SAMPLE_SEED=3 with noise seed 3, and the record's command
    and label say so; a sampler the project lacks, or a seed that is no integer, stops the script before any work,
    naming the variable."""
    gen, results = tmp_path / "gen", tmp_path / "results"
    run_script("generation_digits.sh", stub_python, GEN=str(gen), RESULTS_DIR=str(results), SCALES="4", ROW="toy",
               SAMPLER="dpmpp_2m", VIDEO_STEPS="25", SAMPLE_SEED="3",
               DIGITS=str(tmp_path / "clf" / "checkpoints" / "best.ckpt"))
    sampled = next(line.split() for line in (tmp_path / "stub" / "calls").read_text().splitlines()
                   if line.startswith(f"scripts/sample_videos.py --ckpt {gen}/toy/dit/"))
    assert sampled[sampled.index("--sampler") + 1] == "dpmpp_2m"
    assert sampled[sampled.index("--steps") + 1] == "25"
    assert sampled[sampled.index("--seed") + 1] == "3"
    record = json.loads((results / "generation_toy.json").read_text())
    assert record["command"].endswith(" SAMPLER=dpmpp_2m SAMPLE_SEED=3 bash scripts/generation_digits.sh")
    assert "25 DPM-Solver++(2M) steps" in record["rows"]["video stage"]["label"]["text"]
    assert record["rows"]["video stage"]["label"]["text"].endswith(", sampler seed 3")

    for row, bad, message in (("toy2", {"SAMPLER": "euler"}, "SAMPLER=euler: must be ddim, ddpm or dpmpp_2m"),
                              ("toy3", {"SAMPLE_SEED": "one"}, "SAMPLE_SEED=one: must be a non-negative integer")):
        failed = subprocess.run(["bash", "scripts/generation_digits.sh"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60, env={**os.environ, "PY": str(stub_python), "GEN": str(gen), "ROW": row,
                                                 **bad})
        assert failed.returncode == 2 and message in failed.stderr
        assert not (tmp_path / "stub" / "calls").read_text().count(row)


def test_the_still_row_trains_its_video_stage_on_still_latents_asked_for_the_digit_only(tmp_path, stub_python,
                                                                                          untouched_results):
    """VARIANT=still (make generation-still): stage 1 and the image stage read the moving clips, the video stage a
    cache of still clips with their digit, without time reversal or a direction; the record's real row scores real
    still clips and its target is the still row's."""
    gen, results = tmp_path / "gen", tmp_path / "results"
    run_script("generation_digits.sh", stub_python, GEN=str(gen), RESULTS_DIR=str(results), SCALES="4", VARIANT="still",
               ROW="still_toy", FIRST_FRAME="6", GUIDANCE="6", VIDEO_ARGS="model.num_cond_frames=1",
               DIGITS=str(tmp_path / "clf" / "checkpoints" / "best.ckpt"))
    calls = (tmp_path / "stub" / "calls").read_text().splitlines()
    builds = [line.split() for line in calls if line.startswith("scripts/make_moving_mnist.py")]
    assert [(b[b.index("--out") + 1], b[b.index("--variant") + 1]) for b in builds] == [
        ("datasets/moving_mnist_direction", "direction"), ("datasets/moving_mnist_still", "still")]
    caches = [line.split() for line in calls if line.startswith("scripts/cache_latents.py")]
    assert caches[0][caches[0].index("--out") + 1] == f"{gen}/autoencoder/latents_sets"
    still = caches[1]
    assert still[still.index("--out") + 1] == f"{gen}/autoencoder/latents_still"
    assert {"data.root=datasets/moving_mnist_still", "data.train=train_digit.txt", "data.num_classes=10"} <= set(still)
    assert still[still.index("--label-sets") + 1] == "digit"
    image, video = [line.split() for line in calls if line.startswith("train.py experiment=mmnist_dit")]
    assert f"data.root={gen}/autoencoder/latents_sets" in image
    assert {f"data.root={gen}/autoencoder/latents_still", "data.num_classes=10", "data.time_reversal=false",
            "model.conditioning=[digit]", "~model.num_classes.direction", "model.num_cond_frames=1"} <= set(video)
    assert sum(arg.startswith("data.root=") for arg in video) == 1
    scored = [line.split() for line in calls if line.startswith("scripts/evaluate_videos.py")]
    real = f"{gen}/autoencoder/originals_still_digit_metrics.json"
    assert ["datasets/moving_mnist_still/test_digit.txt", real] in [[s[s.index("--videos") + 1], s[s.index("--out") + 1]]
                                                                  for s in scored]
    record = json.loads((results / "generation_still_toy.json").read_text())
    assert record["rows"]["real test clips"]["label"]["text"] == "real still test clips (1,000)"
    assert record["rows"]["real test clips"]["flow_direction_accuracy"]["value"] == json.loads(
        Path(real).read_text())["metrics"]["flow_direction_accuracy"]  # the still clips' report, not the moving one
    assert record["rows"]["video stage"]["target"]["text"] == "≥ 90 % / ≥ 90 % / –"
    assert record["command"].startswith("VARIANT=still SCALES=4 ") and "still clips" in record["title"]


def test_an_unknown_variant_stops_before_any_work(tmp_path, stub_python):
    done = subprocess.run(["bash", "scripts/generation_digits.sh"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PY": str(stub_python), "GEN": str(tmp_path / "gen"), "VARIANT": "slides"})
    assert done.returncode == 2 and "VARIANT=slides: must be direction or still" in done.stderr
    assert not (tmp_path / "stub" / "calls").exists()


def test_another_generation_row_writes_no_job_record(tmp_path, stub_python, untouched_results):
    run_script("generation_demo.sh", stub_python, GEN=str(tmp_path / "gen"), ROW="space_only",
               DIT_ARGS="model.net.layout=space_only", RESULTS_DIR=str(tmp_path / "results"),
               CLASSIFIER=str(tmp_path / "clf.ckpt"))
    assert not (tmp_path / "results").exists()


def test_generation_rows_records_the_table_it_prints(tmp_path, stub_python, untouched_results):
    gen, results = tmp_path / "gen", tmp_path / "results"
    run_script("generation_rows.sh", stub_python, GEN=str(gen), ROWS="divided cond2_divided", JOBS="1",
               RECORD="generation_rows", RESULTS_DIR=str(results), CLASSIFIER=str(tmp_path / "clf.ckpt"))
    assert sorted(p.name for p in results.iterdir()) == ["generation_rows.json"]  # the rows' jobs wrote none
    record = json.loads((results / "generation_rows.json").read_text())
    printed = (gen / "generation_table.md").read_text()
    assert "record:" not in printed
    table = table_cells(printed)
    assert list(record["rows"]) == ["real test clips", "stage-1 reconstructions of them", "divided", "cond2_divided"]
    for row in ("divided", "cond2_divided"):
        report = json.loads((gen / row / "samples_metrics.json").read_text())
        entry = record["rows"][row]
        assert entry["flow_direction_accuracy"]["value"] == report["metrics"]["flow_direction_accuracy"]
        assert entry["classifier_accuracy"]["ci95"] == report["ci95"]["classifier_accuracy[timesformer:divided]"]
        value, (low, high) = entry["flow_direction_accuracy"]["value"], entry["flow_direction_accuracy"]["ci95"]
        assert table[row]["flow_direction_accuracy ↑"] == f"{value:.1%} [{100 * low:.1f}, {100 * high:.1f}]"
        assert entry["target"]["text"] == table[row]["target"]
    assert record["rows"]["divided"]["label"]["text"] == "`divided` (divided, sincos, iid, 4000 steps)"
    assert record["rows"]["cond2_divided"]["num_cond_frames"]["value"] == 2
    real = json.loads((gen / "autoencoder" / "originals_metrics.json").read_text())
    assert record["rows"]["real test clips"]["flow_direction_accuracy"]["value"] == \
        real["metrics"]["flow_direction_accuracy"]
    assert record["command"] == 'ROWS="divided cond2_divided" bash scripts/generation_rows.sh'
    assert record["machine"]["fp32_matmul_peak_gflops"] == FAKE_PEAK / 1e9
    assert record["machine"]["torch_threads"] == 1  # THREADS of the rows
    from scripts import render_docs

    text = render_docs.render_table(render_docs.TABLES["generation_rows"], [record])
    assert "| `divided` (divided, sincos, iid, 4000 steps) | **" in text


# --------------------------------------------------------------------------------------------------------------------
# 4. bench_metrics (bench_memory and bench_vs_hf: tests/test_scripts.py)
# --------------------------------------------------------------------------------------------------------------------
def test_bench_metrics_records_the_throughput_it_prints(tmp_path, fast_peak, capsys, untouched_results):
    rows = bench_metrics.main(["--clips", "2", "--frames", "4", "--size", "32", "--project", "8",
                               "--record", "bench_metrics", "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "bench_metrics.json").read_text())
    assert record["rows"] == {row: {key: {"value": value} for key, value in metrics.items()}
                              for row, metrics in rows.items()}
    printed = {line[:30].strip(): line[30:].split() for line in out.splitlines() if line[:30].strip() in rows}
    assert len(printed) == len(rows) == 11
    for metric, cells in printed.items():
        entry = record["rows"][metric]
        if metric == bench_metrics.TOTAL_ROW:
            assert cells == [f"{entry['seconds_projected']['value']:.2f}"]
        else:
            assert cells == [f"{entry['clips_per_second']['value']:.1f}", f"{entry['seconds_projected']['value']:.2f}"]
    assert record["machine"]["fp32_matmul_peak_gflops"] == FAKE_PEAK / 1e9 and record["machine"]["torch_threads"] == 1
    # other clip shapes write no record unless asked (the default record holds the default shape)
    assert bench_metrics.record_name(bench_metrics.parse_args(["--clips", "2"])) == "none"
    assert bench_metrics.record_name(bench_metrics.parse_args([])) == "bench_metrics"
