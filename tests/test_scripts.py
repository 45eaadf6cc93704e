"""The reporting scripts: bench_train's last line, sweep summaries, curve plots, target verdicts, reconstructions."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
import yaml

from scripts import bench_train, generation_table, plot_curves, results_table, summarize_sweep

BENCH_LINE = re.compile(r"^train step: ([\d.]+) GFLOP/s end to end = ([\d.]+)% of the fp32 matmul peak "
                        r"\(([\d.]+) GFLOP/s measured in this run\)$")


def test_bench_train_prints_the_throughput_line(tiny_mmnist, capsys, tmp_path):
    figures = bench_train.main([
        f"data.root={tiny_mmnist}", "data.generate=null", "data.batch_size=8", "model.net.embed_dim=32",
        "model.net.depth=1", "~callbacks.progress_bar", "num_threads=1", "--steps", "3", "--warmup", "2",
        "--model-steps", "1", "--profile", "1", "--results-dir", str(tmp_path), "--record",
    ])
    out = capsys.readouterr().out
    assert "Self CPU" in out and "aten::" in out  # the profiler's operator table
    last = out.strip().splitlines()[-1]
    match = BENCH_LINE.match(last)
    assert match, last
    rate, percent, peak = (float(group) for group in match.groups())
    # The line prints one decimal: allow its rounding (± 0.05), not a relative margin that a slow machine exceeds.
    assert rate == pytest.approx(figures["flops_per_step"] / figures["seconds"] / 1e9, abs=0.051)
    assert percent == pytest.approx(100 * rate / peak, abs=100 * 0.051 / peak + 0.051)
    assert figures["flops_per_step"] > 0 and peak > 0
    # ... and the same figures, with the peak of this run, in its result record
    (path,) = tmp_path.glob("bench_train_*.json")
    record = json.loads(path.read_text())
    (row,) = record["rows"].values()
    assert row["percent_of_peak"]["value"] == pytest.approx(100 * figures["flops_per_step"] / figures["seconds"]
                                                             / figures["peak"])
    assert record["machine"]["fp32_matmul_peak_gflops"] == round(figures["peak"] / 1e9, 1)
    assert record["machine"]["torch_threads"] == 1 and record["provenance"] == "measured"
    assert record["command"].startswith("python scripts/bench_train.py data.root=")
    path.unlink()  # without --record, the figures are printed and nothing is written
    bench_train.main([f"data.root={tiny_mmnist}", "data.generate=null", "data.batch_size=8", "model.net.embed_dim=32",
                      "model.net.depth=1", "~callbacks.progress_bar", "num_threads=1", "--steps", "1", "--warmup", "1",
                      "--model-steps", "1", "--results-dir", str(tmp_path)])
    assert not list(tmp_path.glob("*.json"))
    with pytest.raises(SystemExit):  # --record before an override would take it as the record's name
        bench_train.main(["--record", "experiment=mmnist_dit", "--steps", "1"])
    assert "a record name has no '='" in capsys.readouterr().err


def fake_run(folder: Path, overrides: list[str], value: float) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "train_metrics.json").write_text(json.dumps({"test/acc_top1": value}))


def test_summarize_sweep_groups_by_overrides_apart_from_the_seed(tmp_path):
    values = {"divided": [0.99, 1.0, 0.97], "space_only": [0.31, 0.37, 0.29]}
    for name, runs in values.items():
        for seed, value in enumerate(runs):
            fake_run(tmp_path / f"{name}_{seed}", [f"experiment=mmnist_direction_{name}", f"seed={seed}",
                                                   "callbacks.progress_bar.refresh_rate=50"], value)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "train_metrics.json").write_text(json.dumps({"val/loss": 1.0}))
    groups, missing = summarize_sweep.group_runs(summarize_sweep.find_runs([tmp_path]), "test/acc_top1")
    assert missing == [tmp_path / "broken"]
    by_name = {group.name: group for group in groups}
    assert set(by_name) == {"experiment=mmnist_direction_divided", "experiment=mmnist_direction_space_only"}
    stats = by_name["experiment=mmnist_direction_space_only"].stats()
    assert stats["n"] == 3 and stats["min"] == 0.29 and stats["max"] == 0.37
    assert stats["mean"] == pytest.approx(statistics.fmean(values["space_only"]))
    assert stats["std"] == pytest.approx(statistics.stdev(values["space_only"]))
    paths = summarize_sweep.write_summary(groups, "test/acc_top1", tmp_path / "out")
    assert all(path.is_file() for path in paths.values())
    assert "| experiment=mmnist_direction_divided | 3 | 98.7% |" in paths["md"].read_text()


def test_plot_curves_reads_both_curve_files_and_names_missing_metrics(tmp_path):
    run = tmp_path / "run"
    (run / "csv" / "version_0").mkdir(parents=True)
    (run / "csv" / "version_0" / "metrics.csv").write_text(
        "epoch,step,val/acc_top1,train/loss\n0,10,,2.0\n0,187,0.5,\n1,374,0.9,\n")
    assert plot_curves.read_curve(run, "val/acc_top1", "epoch") == [(0.0, 0.5), (1.0, 0.9)]
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "motion_curve.csv").write_text("step,flow_direction_accuracy,speed_px_per_frame\n500,0.3,1.1\n1000,0.6,2\n")
    assert plot_curves.read_curve(gen, "flow_direction_accuracy", "step") == [(500.0, 0.3), (1000.0, 0.6)]
    out = plot_curves.plot([gen], "flow_direction_accuracy", "step", tmp_path / "curve.png", target=0.8)
    assert out.is_file() and out.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match="'val/psnr'"):
        plot_curves.read_curve(run, "val/psnr", "epoch")
    with pytest.raises(FileNotFoundError, match="no motion_curve.csv"):
        plot_curves.read_curve(tmp_path, "val/acc_top1", "epoch")


def test_results_table_says_whether_each_run_met_its_target(tmp_path, monkeypatch):
    from scripts import records

    monkeypatch.setattr(records, "matmul_peak", lambda *args, **kwargs: 123.4e9)  # the probe takes seconds
    for name, value in (("divided", 0.94), ("space_only", 0.37)):
        (tmp_path / name / "eval").mkdir(parents=True)
        (tmp_path / name / "eval" / "test_metrics.json").write_text(json.dumps({"test/acc_top1": value}))
    targets = [results_table.parse_target("divided:test/acc_top1>=0.95"),
               results_table.parse_target("space_only:test/acc_top1<=0.55")]
    text = results_table.table(sorted(tmp_path.glob("*/eval/test_metrics.json")), ["test/acc_top1"], targets)
    assert "| divided | 94.0% | **below the 95.0% target** |" in text
    assert "| space_only | 37.0% | meets the ≤ 55.0% bound |" in text
    with pytest.raises(ValueError, match="RUN:KEY>=VALUE"):
        results_table.parse_target("divided")
    # --record writes the same figures and verdicts as a result record
    records = tmp_path / "results"
    results_table.main([*map(str, sorted(tmp_path.glob("*/eval/test_metrics.json"))), "--keys", "test/acc_top1",
                        "--target", "divided:test/acc_top1>=0.95", "--record", "demo", "--command", "make demo",
                        "--seeds", "0", "--results-dir", str(records)])
    record = json.loads((records / "demo.json").read_text())
    assert record["rows"]["divided"] == {"test_acc_top1": {"value": 0.94},
                                         "target": {"text": "**below the 95.0% target**"}}
    assert record["rows"]["space_only"]["test_acc_top1"] == {"value": 0.37}
    assert record["command"] == "make demo" and record["seeds"] == [0] and record["provenance"] == "measured"


def test_reconstructions_are_written_in_order_with_their_classes_and_score_against_the_originals(tiny_mmnist,
                                                                                                    tmp_path):
    import torch

    from data.annotations import read_list_file
    from data.decoding import read_clip
    from models.diffusion.autoencoder import FrameAutoencoder
    from models.metrics.evaluate import evaluate_videos
    from scripts import reconstruct_videos

    torch.manual_seed(0)
    autoencoder = FrameAutoencoder(block_out_channels=(8, 8, 8), norm_num_groups=4, mid_block_add_attention=False)
    autoencoder.save_pretrained(tmp_path / "vae")
    originals = tiny_mmnist / "test_direction.txt"
    list_file = reconstruct_videos.main(["--autoencoder", str(tmp_path / "vae"), "--videos", str(originals),
                                         "--out", str(tmp_path / "recon"), "--grey", "--batch-size", "5"])
    written, source = read_list_file(list_file, list_file.parent), read_list_file(originals, tiny_mmnist)
    assert [s.label for s in written] == [s.label for s in source]
    assert (list_file.parent / "classes.txt").read_text() == (tiny_mmnist / "classes_direction.txt").read_text()
    with torch.no_grad():  # the first clip, by hand: [0, 1] -> [-1, 1] -> posterior mean -> decode -> grey uint8
        clip = read_clip(source[0].path, range(8)).float()[None] / 255
        expected = autoencoder.eval().decode(autoencoder.encode(clip * 2 - 1))
        expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().mean(dim=1).round()  # (1 t h w)
    assert (read_clip(written[0].path, range(8))[0].float() - expected[0]).abs().max() <= 2
    result = evaluate_videos(list_file, reference=originals, groups=["paired", "accuracy"], progress=False)
    assert {"flow_direction_accuracy", "psnr", "ssim"} <= result.metrics.keys()


def test_generation_table_reads_the_switches_from_the_stage_2_config_and_the_continuation_scores(tmp_path, capsys):
    def write_run(name: str, layout: str, k: int, metrics: dict, paired: dict | None = None) -> Path:
        run = tmp_path / name
        (run / "dit").mkdir(parents=True)
        model = {"net": {"layout": layout, "temporal_pos_embed": "sincos"}, "noise_prior": "iid", "num_cond_frames": k}
        (run / "dit" / "config.yaml").write_text(yaml.safe_dump({"model": model}))
        (run / "samples_metrics.json").write_text(json.dumps({"metrics": metrics}))
        if paired is not None:
            (run / "continuation_metrics.json").write_text(json.dumps({"metrics": paired}))
        return run / "samples_metrics.json"

    plain = write_run("divided", "divided", 0, {"flow_direction_accuracy": 0.8125, "classifier_accuracy[x]": 0.5,
                                                "temporal_flickering": 0.97})
    cond = write_run("cond2", "space_only", 2, {"flow_direction_accuracy": 0.25}, {"ssim": 0.8123, "mse": 41.26, "flow_direction_accuracy": 0.5})
    generation_table.main([str(plain), str(cond)])
    lines = capsys.readouterr().out.strip().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {cells[0]: dict(zip(header, cells)) for cells in
            ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])}
    assert rows["divided"]["flow_direction_accuracy ↑"] == "81.2%"
    assert rows["divided"]["classifier_accuracy ↑"] == "50.0%"
    assert rows["divided"]["continuation SSIM ↑"] == "–" and rows["divided"]["temporal_flickering"] == "0.9700"
    assert rows["cond2"]["layout"] == "space_only" and rows["cond2"]["num_cond_frames"] == "2"
    assert rows["cond2"]["continuation SSIM ↑"] == "0.812" and rows["cond2"]["continuation MSE ↓"] == "41.3"
    assert rows["cond2"]["classifier_accuracy ↑"] == "–"
    assert rows["cond2"]["flow_direction_accuracy, generated frames ↑"] == "50.0%"
    assert rows["divided"]["flow_direction_accuracy, generated frames ↑"] == "–"


def results_listing() -> dict[str, tuple[int, int]]:
    """The real results/ folder: file -> (size, mtime), to show a test wrote nothing there."""
    folder = Path(__file__).resolve().parents[1] / "results"
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.mark.slow  # two ViT-B processes
def test_bench_memory_prints_both_configurations_and_the_ratio_and_records_them(tmp_path, capsys, monkeypatch):
    from scripts import bench_memory, records

    monkeypatch.setattr(records, "matmul_peak", lambda *args, **kwargs: 123.4e9)  # the real probe takes seconds
    before = results_listing()
    results = bench_memory.main(["--img-size", "32", "--num-frames", "2", "--steps", "1", "--threads", "1",
                                 "--record", "bench_memory", "--results-dir", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "fp32 matmul peak: 123.4 GFLOP/s (1 threads)"
    assert "grad_checkpointing off: peak RSS" in lines[1] and "grad_checkpointing on: peak RSS" in lines[2]
    assert lines[3].startswith("checkpointing: ") and "x the memory" in lines[3]
    record = json.loads((tmp_path / "bench_memory.json").read_text())
    assert results_listing() == before
    assert record["machine"]["fp32_matmul_peak_gflops"] == 123.4 and record["machine"]["torch_threads"] == 1
    for mode, line in (("off", lines[1]), ("on", lines[2])):
        row = record["rows"][f"`grad_checkpointing={'true' if mode == 'on' else 'false'}`"]
        assert row["peak_rss_gb"]["value"] == results[mode]["peak_rss_gb"]
        assert f"peak RSS {row['peak_rss_gb']['value']:.2f} GB, {row['seconds_per_step']['value']:.2f} s a step" in line
    on = record["rows"]["`grad_checkpointing=true`"]
    assert lines[3] == (f"checkpointing: {on['rss_vs_off']['value']:.2f}x the memory, "
                        f"{on['time_vs_off']['value']:.2f}x the time")
    # a quick check at other sizes writes no record unless asked; the documented configuration does
    assert bench_memory.record_name(bench_memory.parse_args(["--img-size", "32"])) == "none"
    assert bench_memory.record_name(bench_memory.parse_args([])) == "bench_memory"


@pytest.mark.slow  # five ViT-B processes: about 30 s
def test_bench_vs_hf_ratios_follow_from_the_measured_rounds(tmp_path, capsys, monkeypatch):
    import re

    from scripts import bench_vs_hf, records, render_docs

    monkeypatch.setattr(records, "matmul_peak", lambda *args, **kwargs: 123.4e9)  # the real probe takes seconds
    before = results_listing()
    bench_vs_hf.main(["--img-size", "32", "--num-frames", "2", "--steps", "1", "--rounds", "1", "--threads", "1",
                      "--record", "bench_vs_hf", "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    peak = {m[1]: float(m[2]) for m in re.finditer(r"round 1/1 (\S+)\s+peak RSS ([\d.]+) GB", out)}
    assert set(peak) == {"ours", "hf", "ours+ckpt", "floor", "hf-floor"}
    summary = {line.split()[0]: line for line in out.split("median of 1 rounds")[1].strip().splitlines()}
    hf_step = peak["hf"] - peak["hf-floor"]
    for config in ("ours", "ours+ckpt"):
        step = peak[config] - peak["floor"]
        printed = re.search(r"step above its floor ([\d.]+) GB \(([\d.]+)x HF's\)", summary[config])
        assert float(printed[1]) == pytest.approx(step, abs=0.0061)  # rounds are printed to 0.001 GB, the summary 0.01
        ratio = step / hf_step
        assert float(printed[2]) == pytest.approx(ratio, abs=0.001 * (1 + ratio) / hf_step + 0.0051)
        assert f"({peak[config] / peak['hf']:.2f}x HF)" in summary[config]
    assert "step above" not in summary["floor"] and "step above" not in summary["hf-floor"]
    # the record holds the summary's figures, with the peak measured in this run, and the docs table renders it
    record = json.loads((tmp_path / "bench_vs_hf.json").read_text())
    assert results_listing() == before
    assert record["machine"]["fp32_matmul_peak_gflops"] == 123.4 and record["machine"]["torch_threads"] == 1
    for config, row in bench_vs_hf.ROW_NAMES.items():
        entry = {key: value["value"] for key, value in record["rows"][row].items()}
        assert f"peak RSS {entry['peak_rss_gb']:.2f} GB ({entry['rss_vs_hf']:.2f}x HF)" in summary[config]
        if config in bench_vs_hf.FLOOR_OF:
            assert (f"step above its floor {entry['step_gb']:.2f} GB ({entry['step_vs_hf']:.2f}x HF's), "
                    f"{entry['seconds_per_step']:.2f} s a step, speed {entry['speed_vs_hf']:.2f}x HF"
                    ) in summary[config]
    render_docs.render_table(render_docs.TABLES["bench_vs_hf"], [record])
    assert bench_vs_hf.record_name(bench_vs_hf.parse_args(["--img-size", "32"])) == "none"
    assert bench_vs_hf.record_name(bench_vs_hf.parse_args([])) == "bench_vs_hf"
