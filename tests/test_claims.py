"""make claims: the verdict rules on constructed scores, and the smoke budget end to end (every row, resumable)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest


def load(name: str):
    """A script of scripts/ as a module (scripts/ is a package of the install)."""
    return importlib.import_module(f"scripts.{name}")


def clips(p: float, n: int = 200) -> list[float]:
    """n per-clip 0/1 values with mean p (deterministic)."""
    k = round(p * n)
    return [1.0] * k + [0.0] * (n - k)


def scores_where(motion: dict[str, float], identity: dict[str, float], digits: dict[str, float],
                 recognition: dict[str, float], whole: dict[str, float] | None = None) -> dict[str, dict]:
    """Scores of every row the verdicts read, with the given means (defaults: 1.0; slide shows scored as one segment
    default to 0.0 identity: every clip cuts to another digit)."""
    verdicts = load("claims_verdicts")
    claims = load("claims")
    rows = {**{name: {} for name in claims.GENERATION}, **{name: {} for name in claims.REAL}}
    scores = {}
    for row in rows:
        scores[row] = {"per_clip": {
            "flow_direction_accuracy": clips(motion.get(row, 1.0)),
            "classifier_accuracy[timesformer:x]": clips(motion.get(row, 1.0)),
            "identity_consistency[frameclassifier:y]": clips(identity.get(row, 1.0)),
            "digit_accuracy[frameclassifier:y]": clips(digits.get(row, 1.0)),
            "temporal_flickering": clips(1.0),
        }}
    for row in [r for r in rows if r.startswith("slides")]:
        scores[f"{row}_whole"] = {"per_clip": {"identity_consistency[frameclassifier:y]": clips((whole or {}).get(row, 0.0))}}
    for name in claims.RECOGNITION_SCORES:
        scores[f"recognition_{name}"] = {"per_clip": {"classifier_accuracy[t:x]": clips(recognition.get(name, 1.0))}}
    assert verdicts.per_clip(scores, "moving_real", "identity") == clips(1.0)
    return scores


def verdicts_of(scores) -> dict[str, str]:
    report = load("claims_verdicts").decide(scores)
    return {c["claim"]: c["verdict"] for c in report["claims"]}


def test_rules_turn_constructed_numbers_into_the_stated_verdicts():
    # The world this project measures: divided moves, space_only does not whatever the noise; per-frame generation
    # keeps still digits; direction needs order, digit doesn't.
    stuck = {f"moving_space_only_{p}": 0.15 for p in ("iid", "progressive", "shared")} | {
        "moving_space_only_none_iid": 0.1}
    order = {"direction_divided_shuffled": 0.3, "direction_divided_reversed": 0.0, "direction_space_only_forward": 0.35}
    assert verdicts_of(scores_where(stuck, {}, {}, order)) == {
        "1": "yes", "2": "no", "3": "partly", "4": "yes", "5": "partly"}
    # If shared noise alone made space_only move, Gaussian noise would guarantee coherence.
    assert verdicts_of(scores_where({**stuck, "moving_space_only_shared": 0.995}, {}, {}, order))["3"] == "yes"
    # Per-frame slides that change digit within a slide: claim 1 is false; neither task needing order: claim 5 true.
    flicker = {"slides_space_only_shared": 0.4, "still_space_only_iid": 0.3}
    got = verdicts_of(scores_where(stuck, flicker, {}, {}))
    assert got["1"] == "no" and got["4"] == "no" and got["5"] == "yes"
    # A per-frame generator that keeps slide 1 for the whole clip is consistent per slide but no slide show.
    assert verdicts_of(scores_where(stuck, {}, {}, order, whole={"slides_space_only_shared": 1.0}))["1"] == "no"
    # A generator that makes fragments gets no verdict on any generation claim.
    broken = verdicts_of(scores_where({**stuck, "moving_divided_iid": 0.2}, {}, {"still_divided_iid": 0.1}, order))
    assert all(broken[c].startswith("no verdict") for c in ("1", "3", "4")) and broken["5"] == "partly"
    # Too few clips to clear a threshold: inconclusive, never a guess.
    few = scores_where(stuck, {}, {}, order)
    few["recognition_direction_divided_forward"]["per_clip"]["classifier_accuracy[t:x]"] = [1.0, 0.0, 1.0, 0.0]
    few["recognition_direction_divided_shuffled"]["per_clip"]["classifier_accuracy[t:x]"] = [0.0, 1.0, 0.0, 1.0]
    assert verdicts_of(few)["5"] == "inconclusive"


def results_listing() -> dict[str, tuple[int, int]]:
    """The real results/ folder: file -> (size, mtime), to show a test wrote nothing there."""
    folder = Path(__file__).resolve().parents[1] / "results"
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@pytest.mark.slow  # the whole claims grid end to end, twice (resume): the fast suite's longest test by far
def test_smoke_budget_runs_every_row_and_resumes(tmp_path, monkeypatch, capsys):
    claims = load("claims")
    records = load("records")
    monkeypatch.setattr(records, "matmul_peak", lambda *args, **kwargs: 123.4e9)  # the real probe takes seconds
    before = results_listing()
    out = tmp_path / "claims"
    report = claims.run(claims.SMOKE, out)
    assert [c["claim"] for c in report["claims"]] == ["1", "2", "3", "4", "5"]
    for claim in report["claims"]:
        assert claim["rule"] and claim["verdict"].split(":")[0] in ("yes", "no", "partly", "inconclusive", "no verdict")
        for number in claim["numbers"].values():
            if isinstance(number, dict):
                low, high = number["ci95"]
                assert low <= number["value"] <= high
    assert json.loads((out / "claims.json").read_text())["claims"] == report["claims"]
    assert "| 5 | Machines don't need coherence |" in (out / "claims.md").read_text()
    assert (out / "claims_moving.png").stat().st_size > 0 and (out / "claims_static.png").stat().st_size > 0
    rows = set(claims.GENERATION) | set(claims.REAL) | {f"recognition_{n}" for n in claims.RECOGNITION_SCORES}
    rows |= {f"{row}_whole" for row in rows if row.startswith("slides")}
    assert {p.name for p in (out / "scores").iterdir()} == rows
    ckpt = out / "runs" / "moving_divided_iid" / "dit" / "checkpoints" / "last.ckpt"
    stamp = ckpt.stat().st_mtime_ns
    # everything is reused: nothing is trained or scored again; --record writes the result records (tmp results dir)
    results = tmp_path / "results"
    again = claims.main(["--budget", "smoke", "--out", str(out), "--record", "claims", "--results-dir", str(results)])
    assert again["claims"] == report["claims"] and ckpt.stat().st_mtime_ns == stamp
    assert again["seconds"] < 10
    record = json.loads((results / "claims.json").read_text())
    assert record["machine"]["fp32_matmul_peak_gflops"] == 123.4 and record["machine"]["torch_threads"] == 2
    assert record["command"] == f"python scripts/claims.py --budget smoke --out {out} --record claims " \
                                f"--results-dir {results}"
    # one row per claim, with the numbers and the verdict claims.md shows
    lines = [line for line in (out / "claims.md").read_text().splitlines() if line.startswith("| ") and
             line.split("|")[1].strip().isdigit()]
    assert len(lines) == len(record["rows"]) == 5
    for line, (row, entry) in zip(lines, record["rows"].items()):
        number, text, numbers, verdict, rule = (cell.strip() for cell in line.strip("|").split(" | "))
        assert row == f"{number}. {text}" and entry["numbers"]["text"] == numbers
        word, _, reason = verdict.strip("*").partition(": ")
        assert entry["verdict"]["text"].startswith(f"**{word}**: ")
        assert entry["verdict"]["text"].endswith(reason or rule)
    order = json.loads((results / "claims_order.json").read_text())["rows"]
    numbers = report["claims"][4]["numbers"]
    assert [row.split()[0] for row in order] == ["`direction`", "`digit`"]
    for task, row in zip(("direction", "digit"), order.values()):
        for kind in ("forward", "reversed", "shuffled"):
            assert row[kind] == {key: numbers[f"{task} top-1: {kind}"][key] for key in ("value", "ci95")}
        drop = numbers[f"{task} drop when shuffled"]
        assert row["drop"]["value"] == pytest.approx(100 * drop["value"])
        assert row["drop"]["ci95"] == pytest.approx([100 * x for x in drop["ci95"]])
    render_docs = load("render_docs")
    render_docs.render_table(render_docs.TABLES["claims"], [record])
    render_docs.render_table(render_docs.TABLES["claims_order"],
                             [json.loads((results / "claims_order.json").read_text())])
    capsys.readouterr()
    # An interrupted step (no spec.json yet) is redone, and so is every score that read its samples; make claims-smoke
    # (the smoke budget, no --record) writes no record.
    (out / "runs" / "still_divided_iid" / "spec.json").unlink()
    score_spec = (out / "scores" / "still_divided_iid" / "spec.json").read_text()
    claims.main(["--budget", "smoke", "--out", str(out)])
    assert "record:" not in capsys.readouterr().out and results_listing() == before
    assert (out / "runs" / "still_divided_iid" / "spec.json").is_file()
    assert (out / "scores" / "still_divided_iid" / "spec.json").read_text() != score_spec
    assert ckpt.stat().st_mtime_ns == stamp  # other rows untouched
