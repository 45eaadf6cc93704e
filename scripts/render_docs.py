"""Render the results tables of the README and ``docs/`` from the result records in ``results/`` (``make docs``).

Every table of figures sits between two markers in a Markdown file::

    <!-- results:TABLE -->
    ...generated; edits here are overwritten...
    <!-- /results:TABLE -->

``TABLES`` says, for each TABLE, which record it reads and which columns it shows. Rendering replaces the text
between the markers and adds a source line (the record file, whether it was measured by the script or transcribed
from an earlier README, its commit, date and machine, with the fp32 matmul peak). ``--check`` renders in memory and
fails with a diff when a file differs from what the records give, so no figure is typed by hand
(``tests/test_render_docs.py`` runs it).

    python scripts/render_docs.py            # rewrite README.md and docs/*.md
    python scripts/render_docs.py --check    # exit 1 and show the diff if anything is stale
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.records import RESULTS, ROOT, is_reference_machine, load_records

MARKER = re.compile(r"<!-- results:(?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S)


@dataclass(frozen=True)
class Column:
    """One column: its header, the metric key in each row of the record, and how the entry is written.

    ``fmt``: ``pct`` (a fraction as a percentage, one decimal), ``f1``..``f4`` (decimals), ``int``, or ``text``
    (the entry's ``text``). ``bold`` bolds the value (not its interval).
    """

    header: str
    key: str
    fmt: str = "pct"
    bold: bool = False


@dataclass(frozen=True)
class Table:
    """A rendered table: the record it reads (a name, or a pattern such as ``bench_train_*`` for the rows of every
    matching record, or a tuple of them), the header of the row-label column, and the columns."""

    record: str | tuple[str, ...]
    row_header: str
    columns: tuple[Column, ...]
    rows: tuple[str, ...] | None = None  # a subset of the record's rows, in this order (None: all, record order)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The record names or patterns, as a tuple."""
        return (self.record,) if isinstance(self.record, str) else self.record


def _number(value: float, fmt: str) -> str:
    if fmt == "pct":
        return f"{100 * value:.1f} %"
    if fmt == "int":
        return f"{value:.0f}"
    if re.fullmatch(r"f\d", fmt):
        return f"{value:.{int(fmt[1])}f}"
    raise ValueError(f"unknown format {fmt!r}")


def _bare(value: float, fmt: str) -> str:
    return _number(value, fmt).removesuffix(" %")


def format_entry(entry: Mapping[str, Any] | None, fmt: str, bold: bool = False) -> str:
    """One cell: ``v [lo, hi]`` (95 % CI), ``mean [min, max]`` (seed spread), a text, or – when absent."""
    if entry is None:
        return "–"
    if fmt == "text" or "text" in entry:
        return str(entry.get("text", "–"))
    if "mean" in entry:
        value = _number(entry["mean"], fmt)
        spread = f" [{_bare(entry['min'], fmt)}, {_bare(entry['max'], fmt)}]" if len(entry.get("values", [])) > 1 \
            else ""
        return (f"**{value}**" if bold else value) + spread
    value = _number(entry["value"], fmt)
    interval = f" [{_bare(entry['ci95'][0], fmt)}, {_bare(entry['ci95'][1], fmt)}]" if "ci95" in entry else ""
    return (f"**{value}**" if bold else value) + interval


def source_line(record: Mapping[str, Any]) -> str:
    """Where the figures come from: the record, how it was made, commit, date and machine."""
    info = record.get("machine") or {}
    parts = [f"`results/{record['name']}.json`"]
    commit = (record.get("commit") or "")[:7]
    if record["provenance"] == "transcribed":
        parts.append(f"transcribed from the README at commit {commit}" if commit else "transcribed")
    else:
        parts.append(f"measured at commit {commit}" + (" with uncommitted changes" if record.get("dirty") else "")
                     if commit else "measured")
    if record.get("date"):
        parts.append(str(record["date"])[:10])
    threads = info.get("torch_threads", "?")
    machine = f"{info.get('cpu_cores', '?')} CPU cores, {threads} thread{'' if threads == 1 else 's'}"
    if info.get("gpu"):
        machine += f", {info['gpu']}"
    if info.get("fp32_matmul_peak_gflops"):
        machine += f", fp32 matmul peak {info['fp32_matmul_peak_gflops']} GFLOP/s"
    parts.append(machine)
    if record.get("seeds"):
        seeds = record["seeds"]
        parts.append("seed " + str(seeds[0]) if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}")
    line = "Source: " + " · ".join(parts)
    if not is_reference_machine(record):
        line += " · **measured on another machine than the 2-core CPU of the other tables**"
    return line + "."


def render_table(table: Table, records: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table (header, rows) and one source line per record that has a row in it (with the record's
    notes), ending with a newline. A row whose name, label and raw entries equal one already in the table is left
    out.

    A column key ``machine.<field>`` reads the record's machine (e.g. its fp32 matmul peak).

    Raises:
        ValueError: a row the table asks for is not in the records (named).
    """
    rows = []
    used = []  # the records with a row in the table: only they get a source line
    for record in records:
        for row, metrics in record["rows"].items():
            if table.rows is None or row in table.rows:
                rows.append((row, {**metrics, **{f"machine.{k}": {"value": v} for k, v in
                                                 (record.get("machine") or {}).items()
                                                 if isinstance(v, (int, float))}}))
                if not used or used[-1] is not record:
                    used.append(record)
    if table.rows is not None:
        missing = [row for row in table.rows if row not in {name for name, _ in rows}]
        if missing:
            raise ValueError(f"results/{' or '.join(table.patterns)}.json has no rows {missing}")
        rows.sort(key=lambda item: table.rows.index(item[0]))
    lines = ["| " + " | ".join([table.row_header] + [c.header for c in table.columns]) + " |",
             "|" + "---|" * (len(table.columns) + 1)]
    shown = []
    for row, metrics in rows:
        entries = (row, [metrics.get(c.key) for c in table.columns], metrics.get("label"))
        if entries in shown:  # the same measurement in two records (e.g. the real clips) is shown once
            continue
        shown.append(entries)
        label = metrics["label"]["text"] if isinstance(metrics.get("label"), Mapping) else row
        cells = [format_entry(metrics.get(c.key), c.fmt, c.bold) for c in table.columns]
        lines.append("| " + " | ".join([label] + cells) + " |")
    sources = []
    for record in used:
        sources += [source_line(record)] + [str(note) for note in record.get("notes", [])]
    return "\n".join(lines) + "\n\n" + "\n".join(sources) + "\n"


def _pct(header: str, key: str, bold: bool = False) -> Column:
    return Column(header, key, "pct", bold)


# Columns shared by several tables: a training curve's points (identity bold), and a job's steps with their budget.
_CURVE_COLUMNS = (_pct("digit_accuracy", "digit_accuracy"),
                  _pct("identity_consistency", "identity_consistency", bold=True),
                  _pct("flow_direction_accuracy", "flow_direction_accuracy"))
_JOB_TIME_COLUMNS = (Column("seconds", "seconds", "int"), Column("budget", "budget", "text"))
_DIGITS_SEED_COLUMNS = (  # the digit-and-direction generator's seed spreads
    _pct("digit_accuracy", "digit_accuracy"), _pct("identity_consistency", "identity_consistency", bold=True),
    _pct("flow_direction_accuracy", "flow_direction_accuracy"), Column("target", "target", "text"))


# Which record each table reads, and its columns. A new table: a record name, markers in a page, an entry here.
TABLES: dict[str, Table] = {
    "recognition_seed_sweep": Table("recognition_seed_sweep", "task / attention_type", (
        _pct("test top-1, mean [min, max]", "test_acc_top1", bold=True), Column("target", "target", "text"))),
    "demo": Table("demo", "run", (_pct("test top-1", "test_acc_top1", bold=True), Column("target", "target", "text"))),
    "recognition_vivit": Table("recognition_vivit", "ViViT model", (
        _pct("test top-1", "test_acc_top1"), _pct("val top-1 after epoch 1", "val_acc_top1_epoch1"))),
    "bench_train": Table("bench_train_*", "config", (
        Column("GFLOP per step (fwd + bwd)", "gflop_per_step", "f1"),
        Column("ms per step, end to end", "ms_per_step", "int"),
        Column("% of the fp32 matmul peak, end to end", "percent_of_peak", "f1", bold=True),
        Column("peak in the same run (GFLOP/s)", "machine.fp32_matmul_peak_gflops", "int"))),
    "bench_vs_hf": Table("bench_vs_hf", "configuration", (
        Column("peak RSS (GB)", "peak_rss_gb", "f2"), Column("vs HF", "rss_vs_hf", "f2"),
        Column("step above its floor (GB)", "step_gb", "f2"), Column("s a step", "seconds_per_step", "f2"),
        Column("speed vs HF", "speed_vs_hf", "f2"))),
    "generation_rows": Table("generation_rows", "row", (
        _pct("flow_direction_accuracy", "flow_direction_accuracy", bold=True),
        _pct("classifier_accuracy", "classifier_accuracy"),
        Column("continuation SSIM", "ssim", "f3"), Column("continuation MSE", "mse", "f1"),
        Column("target", "target", "text"))),
    "generation_seeds": Table("generation_seeds", "`divided`, iid, 4000 steps", (
        _pct("flow_direction_accuracy, mean [min, max]", "flow_direction_accuracy", bold=True),
        _pct("classifier_accuracy, mean [min, max]", "classifier_accuracy", bold=True))),
    "coherence_ablation": Table("coherence_ablation", "layout, noise_prior", (
        _pct("flow_direction_accuracy", "flow_direction_accuracy"),
        _pct("same sector, any speed", "flow_direction_accuracy_any_speed"),
        Column("dominant speed (px/frame)", "dominant_speed_dis", "f2"),
        _pct("classifier_accuracy", "classifier_accuracy"),
        Column("temporal_flickering", "temporal_flickering", "f4"),
        Column("warp_error_dis", "warp_error_dis", "f4"))),
    "generation_digits": Table("generation_digits", "rung", (
        _pct("digit_accuracy", "digit_accuracy", bold=True), _pct("identity_consistency", "identity_consistency"),
        _pct("flow_direction_accuracy", "flow_direction_accuracy"), Column("target", "target", "text"),
        Column("minutes", "minutes", "f1"))),
    "generation_digits_levers": Table(
        "generation_digits*", "video stage (1,500 steps and seed 0 unless its name says)", (
        _pct("digit_accuracy", "digit_accuracy", bold=True), _pct("identity_consistency", "identity_consistency"),
        _pct("flow_direction_accuracy", "flow_direction_accuracy"),
        Column("speed (px/frame)", "dominant_speed_dis", "f2"), Column("minutes", "minutes", "f1")),
        rows=("video stage",)),
    "generation_independent_frames": Table("generation_independent_frames", "image stage (256 images, seed 0)", (
        _pct("digit_accuracy", "digit_accuracy"),
        _pct("8 independent frames: all show the digit", "all_frames_requested_digit", bold=True))),
    "generation_curves_window": Table("generation_curves_window", "run, step (80 clips, guidance 1)", (
        _pct("digit_accuracy", "digit_accuracy", bold=True), _pct("identity_consistency", "identity_consistency"),
        _pct("flow_direction_accuracy", "flow_direction_accuracy"))),
    "generation_curves_cond1": Table("generation_curves_cond1", "run, step (80 clips, guidance 1, a real frame 1)",
                                     _CURVE_COLUMNS),
    "generation_curves_cond1_all": Table(
        "generation_curves_cond1_all", "run, step (80 clips, guidance 1, a real frame 1)", _CURVE_COLUMNS),
    "generation_curves_cond1_fdrop": Table(
        "generation_curves_cond1_fdrop", "run, step (80 clips, guidance 1, a real frame 1, no frame guidance)",
        _CURVE_COLUMNS),
    "generation_curves_recipe_levers": Table(
        "generation_curves_recipe_levers", "run, step (80 clips, guidance 1, a real frame 1)", _CURVE_COLUMNS),
    "generation_border_contact": Table("generation_border_contact", "clips (make generation-digits, 50 DDIM steps)", (
        _pct("reach the border", "border_contact", bold=True), _pct("identity_consistency", "identity_consistency"),
        _pct("identity, clips that reach it", "identity_touching"),
        _pct("identity, clips that do not", "identity_not_touching"))),
    "generation_identity_by_digit": Table("generation_identity_by_digit", "identity_consistency, clips asked for", tuple(
        _pct(str(digit), f"identity_consistency_{digit}") for digit in range(10))),
    "generation_first_frame_stage": Table("generation_first_frame_stage", "stage drawing frame 1 (256 images)", (
        _pct("digit_accuracy", "digit_accuracy", bold=True), Column("minutes", "minutes", "f1"))),
    "generation_first_frame_probe": Table("generation_first_frame_probe", "video stage given frame 1 (80 clips)", (
        _pct("digit_accuracy", "digit_accuracy"), _pct("identity_consistency", "identity_consistency", bold=True),
        _pct("flow_direction_accuracy", "flow_direction_accuracy"),
        Column("speed (px/frame)", "dominant_speed_dis", "f2"))),
    "generation_digits_guidance": Table("generation_guidance_*", "run: guidance (256 clips, 25 DDIM steps unless said)", (
        _pct("digit_accuracy", "digit_accuracy", bold=True), _pct("identity_consistency", "identity_consistency"),
        _pct("flow_direction_accuracy", "flow_direction_accuracy"),
        Column("speed (px/frame)", "dominant_speed_dis", "f2"))),
    "generation_digits_headline": Table(
        "generation_digits_seeds", "`make generation-digits`, 256 clips a seed", _DIGITS_SEED_COLUMNS),
    "generation_digits_seeds_image_frame1": Table(
        "generation_digits_seeds_image_frame1", "frame 1 from the image stage, 256 clips a seed", _DIGITS_SEED_COLUMNS),
    "generation_digits_seeds_ddim50": Table(
        "generation_digits_seeds_ddim50", "sampled with 50 DDIM steps, 256 clips a seed", _DIGITS_SEED_COLUMNS),
    "generation_digits_seeds_dg6": Table(
        "generation_digits_seeds_dg6", "digit guidance 6, 256 clips a seed", _DIGITS_SEED_COLUMNS),
    "generation_still": Table("generation_still*", "still clips (256, one seed unless its name says)", (
        _pct("digit_accuracy", "digit_accuracy", bold=True), _pct("identity_consistency", "identity_consistency"),
        Column("target", "target", "text"), Column("minutes", "minutes", "f1")),
        rows=("real test clips", "video stage")),
    "loss_probe": Table("loss_probe_*", "run: input", (Column("loss, t in [0, 200)", "loss 0-200", "f4"),) + tuple(
        Column(f"ratio, t in [{lo}, {lo + 200})", f"ratio {lo}-{lo + 200}", "f2") for lo in range(0, 1000, 200))),
    "generation_image_guidance": Table("generation_image_*", "image stage", (
        _pct("digit_accuracy (requested digit)", "digit_accuracy", bold=True),)),
    "generation_digits_job_time": Table("generation_digits_job_time", "step", _JOB_TIME_COLUMNS),
    "generation_job_time": Table("generation_job_time", "step", _JOB_TIME_COLUMNS),
    "claims": Table("claims", "# claim", (Column("deciding numbers", "numbers", "text"),
                                          Column("verdict", "verdict", "text"))),
    "claims_order": Table("claims_order", "task", (
        _pct("forward", "forward"), _pct("reversed", "reversed"), _pct("shuffled", "shuffled"),
        Column("drop when shuffled (points)", "drop", "f1"))),
    "identity_real": Table("identity_real", "real test clips (1,000)", (
        Column("identity consistency", "identity_consistency", "f3"), _pct("digit accuracy", "digit_accuracy"),
        Column("temporal_flickering", "temporal_flickering", "f3"), Column("warp_error_dis", "warp_error_dis", "f4"))),
}


def _metric_table() -> str:
    from models.metrics.registry import markdown_table  # imports torch: only when a page holds the marker

    return markdown_table()


# Tables rendered from code, not from a record: name -> a function giving the table (ending with a newline).
GENERATED: dict[str, Callable[[], str]] = {"metric_table": _metric_table}


def render_text(text: str, records: Mapping[str, Mapping[str, Any]], where: str = "") -> str:
    """``text`` with every marked table re-rendered from ``records``.

    Raises:
        ValueError: a marker names an unknown table or a missing record (the file is named).
    """
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name in GENERATED:
            return f"<!-- results:{name} -->\n{GENERATED[name]()}<!-- /results:{name} -->"
        if name not in TABLES:
            raise ValueError(f"{where}: unknown results table {name!r} (known: {sorted(TABLES)})")
        table = TABLES[name]
        patterns = table.patterns
        matching = [records[key] for key in sorted(records) if any(fnmatch.fnmatchcase(key, p) for p in patterns)]
        if not matching:
            raise ValueError(f"{where}: table {name!r} needs results/{' or '.join(patterns)}.json, which does not "
                             "exist")
        return f"<!-- results:{name} -->\n{render_table(table, matching)}<!-- /results:{name} -->"

    return MARKER.sub(replace, text)


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("**/*.md"))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if a file is stale")
    parser.add_argument("--results-dir", default=str(RESULTS), help="the records (default: results/)")
    args = parser.parse_args(argv)
    try:
        records = load_records(args.results_dir)
        stale = []
        for path in doc_files():
            text = path.read_text()
            rendered = render_text(text, records, where=str(path.relative_to(ROOT)))
            if rendered == text:
                continue
            stale.append(path)
            if args.check:
                sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), rendered.splitlines(True),
                                                           str(path), f"{path} (rendered)"))
            else:
                path.write_text(rendered)
                print(f"rendered {path.relative_to(ROOT)}")
    except ValueError as error:
        print(f"render_docs.py: {error}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(f"\n{len(stale)} file(s) differ from results/: run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
