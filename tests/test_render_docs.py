"""Result records and the docs rendered from them: no figure in README.md or docs/ is typed by hand."""

from __future__ import annotations

import json

import pytest

from scripts import records, render_docs

RECORD_ROWS = {
    "divided": {"test_acc_top1": records.seed_entry([1.0, 0.998, 0.996]), "target": {"text": "met"}},
    "space_only": {"test_acc_top1": records.metric_entry(0.352, [0.336, 0.371])},
}
MACHINE = {"cpu_cores": 2, "torch_threads": 2, "gpu": None, "fp32_matmul_peak_gflops": 207.6}


@pytest.fixture(autouse=True)
def fixed_peak(monkeypatch):
    """The fp32 peak probe takes seconds on a loaded machine; a record written here says 123.4 GFLOP/s."""
    monkeypatch.setattr(records, "matmul_peak", lambda *args, **kwargs: 123.4e9)


def test_the_committed_docs_equal_what_the_records_render(capsys):
    """README.md and docs/*.md hold exactly the tables `make docs` renders from results/ (else: run `make docs`)."""
    assert render_docs.main(["--check"]) == 0, capsys.readouterr().out[-3000:]


def test_every_marker_names_a_known_table_and_every_table_reads_a_record():
    known = set(render_docs.TABLES) | set(render_docs.GENERATED)
    loaded = records.load_records()
    used = set()
    for path in render_docs.doc_files():
        for match in render_docs.MARKER.finditer(path.read_text()):
            assert match.group("name") in known, (path, match.group("name"))
            used.add(match.group("name"))
    assert used, "no results tables in the docs"
    for name in used - set(render_docs.GENERATED):
        import fnmatch
        for pattern in render_docs.TABLES[name].patterns:  # each one names a record
            assert any(fnmatch.fnmatchcase(key, pattern) for key in loaded), (name, pattern)


def test_a_record_round_trips_and_renders_intervals_and_seed_spreads(tmp_path):
    path = records.write_record("toy", title="a toy", command="python train.py seed=0,1,2", rows=RECORD_ROWS,
                                seeds=[0, 1, 2], machine_info=MACHINE, results_dir=tmp_path)
    record = json.loads(path.read_text())
    assert record["provenance"] == "measured" and record["machine"] == MACHINE and record["date"]
    assert records.load_records(tmp_path)["toy"] == record
    table = render_docs.Table("toy", "run", (render_docs.Column("top-1", "test_acc_top1", "pct", bold=True),
                                             render_docs.Column("target", "target", "text")))
    text = render_docs.render_table(table, [record])
    lines = text.splitlines()
    assert lines[0] == "| run | top-1 | target |"
    # seed spread: mean (1.0 + 0.998 + 0.996) / 3 = 0.998 -> 99.8 %, then [min, max]
    assert lines[2] == "| divided | **99.8 %** [99.6, 100.0] | met |"
    assert lines[3] == "| space_only | **35.2 %** [33.6, 37.1] | – |"
    assert "seeds 0, 1, 2" in text and "fp32 matmul peak 207.6 GFLOP/s" in text and "another machine" not in text
    # a second record with the same space_only measurement and a new row: the repeated row is shown once
    other = {**record, "rows": {"space_only": RECORD_ROWS["space_only"],
                                "joint": {"test_acc_top1": records.metric_entry(0.5, [0.4, 0.6])}}}
    lines = render_docs.render_table(table, [record, other]).splitlines()
    assert [line.split(" |")[0] for line in lines[2:5]] == ["| divided", "| space_only", "| joint"]
    assert lines[5] == ""


def test_rendering_replaces_only_the_marked_text_and_check_catches_a_stale_figure(tmp_path, monkeypatch):
    records.write_record("toy", title="a toy", command="c", rows=RECORD_ROWS, machine_info=MACHINE,
                         results_dir=tmp_path)
    monkeypatch.setitem(render_docs.TABLES, "toy", render_docs.Table("toy", "run", (
        render_docs.Column("top-1", "test_acc_top1"),)))
    page = "intro\n<!-- results:toy -->\nold text\n<!-- /results:toy -->\noutro\n"
    rendered = render_docs.render_text(page, records.load_records(tmp_path))
    assert rendered.startswith("intro\n<!-- results:toy -->\n| run | top-1 |") and rendered.endswith("outro\n")
    assert "old text" not in rendered and "99.8 %" in rendered
    assert render_docs.render_text(rendered, records.load_records(tmp_path)) == rendered  # idempotent
    # a changed record changes the table, so a hand edit or a stale page is caught
    records.write_record("toy", title="a toy", command="c", machine_info=MACHINE, results_dir=tmp_path,
                         rows={"divided": {"test_acc_top1": records.metric_entry(0.5)}})
    assert render_docs.render_text(rendered, records.load_records(tmp_path)) != rendered
    # a table of several named records shows their rows in name order, and nothing of a record it does not name
    records.write_record("toy_b", title="another toy", command="c", machine_info=MACHINE, results_dir=tmp_path,
                         rows={"space_only": {"test_acc_top1": records.metric_entry(0.25)}})
    records.write_record("toy_c", title="left out", command="c", machine_info=MACHINE, results_dir=tmp_path,
                         rows={"joint": {"test_acc_top1": records.metric_entry(0.75)}})
    monkeypatch.setitem(render_docs.TABLES, "toys", render_docs.Table(("toy_b", "toy"), "run", (
        render_docs.Column("top-1", "test_acc_top1"),)))
    both = render_docs.render_text("<!-- results:toys -->\n<!-- /results:toys -->", records.load_records(tmp_path))
    assert both.index("| divided | 50.0 % |") < both.index("| space_only | 25.0 % |") and "joint" not in both
    with pytest.raises(ValueError, match="unknown results table 'nope'"):
        render_docs.render_text("<!-- results:nope -->\n<!-- /results:nope -->", {}, where="page.md")


def test_records_say_where_they_come_from_and_reject_bad_input(tmp_path):
    other = {**MACHINE, "cpu_cores": 16, "gpu": "NVIDIA H200"}
    records.write_record("gpu", title="t", command="c", rows=RECORD_ROWS, machine_info=other, results_dir=tmp_path)
    record = records.load_records(tmp_path)["gpu"]
    assert not records.is_reference_machine(record)
    assert "measured on another machine" in render_docs.source_line(record)
    transcribed = records.write_record("old", title="t", command="c", rows=RECORD_ROWS, machine_info=MACHINE,
                                       provenance="transcribed", commit="0123456789abcdef", results_dir=tmp_path)
    assert "transcribed from the README at commit 0123456" in render_docs.source_line(json.loads(
        transcribed.read_text()))
    with pytest.raises(ValueError, match="provenance"):
        records.write_record("x", title="t", command="c", rows=RECORD_ROWS, provenance="guessed",
                             machine_info=MACHINE, results_dir=tmp_path)
    with pytest.raises(ValueError, match="lower-case"):
        records.write_record("Bad Name", title="t", command="c", rows=RECORD_ROWS, machine_info=MACHINE,
                             results_dir=tmp_path)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        records.load_records(tmp_path)


def test_rows_come_from_an_evaluate_videos_report_with_their_intervals(tmp_path):
    report = {"metrics": {"flow_direction_accuracy": 0.25, "digit_accuracy[frameclassifier:frame_digit]": 0.5},
              "ci95": {"flow_direction_accuracy": [0.2, 0.3], "digit_accuracy[frameclassifier:frame_digit]":
                       [0.4, 0.6]}}
    (tmp_path / "m.json").write_text(json.dumps(report))
    rows = records.rows_from_metrics_json(tmp_path / "m.json")
    assert rows["flow_direction_accuracy"] == {"value": 0.25, "ci95": [0.2, 0.3]}
    assert rows["digit_accuracy"] == {"value": 0.5, "ci95": [0.4, 0.6], "component": "frameclassifier:frame_digit"}
    assert records.main(["write", "cli", "--title", "t", "--command", "c", "--row", f"video stage={tmp_path / 'm.json'}",
                         "--value", "video stage:minutes=41.5", "--text", "video stage:target=>= 90 %",
                         "--results-dir", str(tmp_path / "r")]) == 0
    record = records.load_records(tmp_path / "r")["cli"]
    row = record["rows"]["video stage"]
    assert row["minutes"] == {"value": 41.5} and row["target"] == {"text": ">= 90 %"}
    assert record["machine"]["fp32_matmul_peak_gflops"] == 123.4  # measured (here: the fixture) when written
    assert records.main(["write", "cli", "--title", "t", "--command", "c", "--row", "x=/nowhere.json"]) == 2


def test_every_defined_table_is_shown_on_some_page():
    """A table defined in render_docs but missing from every page means an edit dropped it (or it is dead code)."""
    shown = {match.group("name") for path in render_docs.doc_files()
             for match in render_docs.MARKER.finditer(path.read_text())}
    assert set(render_docs.TABLES) | set(render_docs.GENERATED) <= shown, \
        sorted((set(render_docs.TABLES) | set(render_docs.GENERATED)) - shown)


def _one_seed_record(tmp_path, name, seed, identity, date, gpu=None):
    rows = {"video stage": {"identity_consistency": records.metric_entry(identity, [identity - 0.05, identity + 0.05]),
                            "digit_accuracy": records.metric_entry(0.9), "label": {"text": "a row"}}}
    machine = {**MACHINE, "fp32_matmul_peak_gflops": 100.0 + seed, "gpu": gpu}
    return records.write_record(name, title=name, command=f"seed={seed}", rows=rows, seeds=[seed], date=date,
                                machine_info=machine, results_dir=tmp_path, commit=f"{seed:040d}", dirty=seed == 1)


def test_a_seed_spread_record_takes_mean_min_max_over_one_seed_records(tmp_path):
    _one_seed_record(tmp_path, "run_s0", 0, 0.773, "2026-12-07T05:22:36+00:00")
    _one_seed_record(tmp_path, "run_s1", 1, 0.70, "2026-12-07T11:00:00+00:00")
    _one_seed_record(tmp_path, "run_s2", 2, 0.80, "2026-12-06T11:00:00+00:00")
    assert records.main(["spread", "spread", "--from", "run_s0", "run_s1", "run_s2", "--row", "video stage",
                         "--metrics", "identity_consistency", "digit_accuracy", "--title", "t", "--command", "c",
                         "--text", "target=≥ 85 %", "--results-dir", str(tmp_path)]) == 0
    record = records.load_records(tmp_path)["spread"]
    row = record["rows"]["mean over seeds 0, 1, 2 [min, max]"]
    assert row["identity_consistency"]["mean"] == pytest.approx((0.773 + 0.70 + 0.80) / 3)
    assert (row["identity_consistency"]["min"], row["identity_consistency"]["max"]) == (0.70, 0.80)
    assert row["identity_consistency"]["values"] == [0.773, 0.70, 0.80]
    assert row["target"] == {"text": "≥ 85 %"}
    assert record["rows"]["seed 1"]["identity_consistency"]["ci95"] == pytest.approx([0.65, 0.75])
    assert record["seeds"] == [0, 1, 2]
    assert record["date"] == "2026-12-07T11:00:00+00:00" and record["machine"]["fp32_matmul_peak_gflops"] == 101.0
    assert record["commit"] == f"{1:040d}" and record["dirty"] is True  # the newest source's, seed 1
    table = render_docs.Table("spread", "row", (render_docs.Column("identity", "identity_consistency"),))
    assert "| mean over seeds 0, 1, 2 [min, max] | 75.8 % [70.0, 80.0] |" in render_docs.render_table(table, [record])


def test_a_seed_spread_refuses_a_repeated_seed_a_missing_metric_or_one_record(tmp_path, capsys):
    _one_seed_record(tmp_path, "a", 0, 0.7, "2026-12-07")
    _one_seed_record(tmp_path, "b", 0, 0.8, "2026-12-07")
    with pytest.raises(ValueError, match="repeat a seed"):
        records.spread_record("s", ["a", "b"], row="video stage", metrics=["identity_consistency"], title="t",
                              command="c", results_dir=tmp_path)
    _one_seed_record(tmp_path, "c", 1, 0.8, "2026-12-07")
    with pytest.raises(ValueError, match="a.json: row 'video stage' lacks \\['flow_direction_accuracy'\\]"):
        records.spread_record("s", ["a", "c"], row="video stage", metrics=["flow_direction_accuracy"], title="t",
                              command="c", results_dir=tmp_path)
    with pytest.raises(ValueError, match="lacks \\['label'\\] \\(as numbers\\)"):
        records.spread_record("s", ["a", "c"], row="video stage", metrics=["label"], title="t", command="c",
                              results_dir=tmp_path)
    _one_seed_record(tmp_path, "gpu", 2, 0.8, "2026-12-07", gpu="NVIDIA H100")
    with pytest.raises(ValueError, match="different machines"):
        records.spread_record("s", ["a", "gpu"], row="video stage", metrics=["identity_consistency"], title="t",
                              command="c", results_dir=tmp_path)
    with pytest.raises(ValueError, match="two or more"):
        records.spread_record("s", ["a"], row="video stage", metrics=["identity_consistency"], title="t",
                              command="c", results_dir=tmp_path)
    assert records.main(["spread", "s", "--from", "a", "missing", "--row", "video stage", "--metrics",
                         "identity_consistency",
                         "--title", "t", "--command", "c", "--results-dir", str(tmp_path)]) == 2
    assert "missing.json: no such record" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_a_record_without_a_row_in_a_pattern_table_gets_no_source_line(tmp_path):
    """A pattern (``toy*``) can match records that hold none of the table's rows, e.g. a timing record beside the
    result records: their source lines and notes would misattribute the table's figures."""
    with_row = records.write_record("toy_a", title="a", command="c", rows={"video stage": {"x": 0.5}},
                                    machine_info=MACHINE, results_dir=tmp_path, notes=["note of a"])
    without = records.write_record("toy_time", title="t", command="c", rows={"step": {"seconds": 3.0}},
                                   machine_info=MACHINE, results_dir=tmp_path, notes=["note of the timing"])
    table = render_docs.Table("toy*", "row", (render_docs.Column("x", "x"),), rows=("video stage",))
    text = render_docs.render_table(table, [json.loads(with_row.read_text()), json.loads(without.read_text())])
    assert "results/toy_a.json" in text and "note of a" in text
    assert "toy_time" not in text and "note of the timing" not in text
