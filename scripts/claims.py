"""The five coherence claims, answered by one command: every run they need, then a table of verdicts with 95 % CIs.

    python scripts/claims.py --budget smoke --out /tmp/claims          # plumbing check: tiny models, ~1 min
    python scripts/claims.py --budget full --reuse-gen outputs/gen \
        --reuse direction_divided=outputs/demo/divided                  # the README's table (make claims)

The grid (``RECOGNITION``, ``GENERATION``, ``REAL``) is declared below; the claims, the numbers that decide them and
the verdict rules are in ``scripts/claims_verdicts.py``. Every run lives in ``<out>/runs/<name>/`` with the spec it was
made from (``spec.json``); a finished run whose spec matches is reused, so an interrupted run continues where it
stopped: an interruption costs the step in progress (a training restarts from its beginning), never a finished one,
and a step whose input was rewritten (its file's size or time changed) is redone. Stage 1 (one per-frame autoencoder) and the recognition checkpoints are shared by all rows.

Budgets:

* ``smoke``: tiny datasets (16/8/8 clips), a random-weight autoencoder, 1-2 step trainings, 8 samples with 1 DDIM
  step. It checks the plumbing (every row present, intervals ordered, rules applied); its verdicts mean nothing.
* ``full``: the datasets of ``make demo`` (6000/500/1000 clips), the generation job's stage 1 and stage-2 recipe,
  256 samples with 50 DDIM steps, 1000 real test clips. ``--reuse-gen DIR`` takes the stage-1 autoencoder and the
  moving-data rows from the generation job (``scripts/generation_rows.sh`` and ``scripts/coherence_ablation.sh``)
  instead of training them again; their samples are rescored here. Without it the moving rows are trained here too,
  each as long as a generation-table row. ``--reuse NAME=RUN_DIR`` does the same for a recognition run (e.g. the main
  job's ``outputs/demo/divided``).

Writes ``<out>/claims.md``, ``<out>/claims.json`` and ``<out>/claims_{moving,static}.png``; the full budget also
writes the result records ``results/claims.json`` (one row per claim: its deciding numbers and its verdict, as
claims.md shows them) and ``results/claims_order.json`` (claim 5's recognition with frame order destroyed), with the
machine and its fp32 matmul peak measured in the same run (``scripts/records.py``), which the README and
docs/claims.md are rendered from. ``--record NAME`` names them ``NAME`` and ``NAME_order`` (``none``: no records,
the smoke budget's default, so ``make claims-smoke`` never replaces a measured record); ``--results-dir`` moves them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


import torch

from data.files import write_text_atomic
from data.moving_mnist_build import build_dataset
from models.metrics.evaluate import evaluate_videos
from models.metrics.report import write_report

log = logging.getLogger("claims")
ROOT = Path(__file__).resolve().parents[1]
SLIDE_CUTS = (4,)  # the slides variant cuts at t // 2 = 4 of 8 frames


@dataclass(frozen=True)
class Budget:
    """Everything a budget fixes: data sizes, model sizes, steps, sample counts (see the module docstring)."""

    name: str
    num_clips: dict[str, int]
    recognition: tuple[str, ...]   # overrides of every recognition run
    frame_digit: tuple[str, ...]   # overrides of the per-frame digit classifier
    autoencoder: tuple[str, ...] | None  # overrides of stage 1; None: random weights (smoke)
    dit: tuple[str, ...]           # overrides of every stage-2 run
    dit_static: tuple[str, ...]    # further overrides of the static-data (still, slides) stage-2 runs
    num_samples: int
    ddim_steps: int
    threads: int = 2


SMOKE = Budget(
    name="smoke",
    num_clips={"num_train": 16, "num_val": 8, "num_test": 8},
    recognition=("trainer.max_epochs=1", "++trainer.max_steps=1", "++trainer.limit_val_batches=1", "data.batch_size=8",
                 "model.net.embed_dim=32", "model.net.depth=1", "model.net.num_heads=2"),
    frame_digit=("trainer.max_epochs=1", "++trainer.max_steps=1", "++trainer.limit_val_batches=1", "data.batch_size=8"),
    autoencoder=None,
    dit=("trainer.max_steps=2", "trainer.limit_val_batches=1", "trainer.check_val_every_n_epoch=1",
         "++trainer.num_sanity_val_steps=0", "data.batch_size=8",
         "model.net.embed_dim=32", "model.net.depth=1", "model.net.num_heads=2", "model.num_log_samples=0",
         "~callbacks.motion_curve"),
    dit_static=(),
    num_samples=8,
    ddim_steps=1,
)
FULL = Budget(
    name="full",
    num_clips={"num_train": 6000, "num_val": 500, "num_test": 1000},
    recognition=(),
    frame_digit=(),
    autoencoder=(),
    dit=(),                            # moving rows: the generation job's recipe (4000 steps)
    dit_static=("trainer.max_steps=2000",),  # static rows: half of it (nothing moves; it keeps make claims in budget)
    num_samples=256,
    ddim_steps=50,
)
BUDGETS = {"smoke": SMOKE, "full": FULL}

# name -> (dataset, experiment): the recognition checkpoints. The per-frame digit classifier is "frame_digit".
RECOGNITION = {
    "direction_divided": ("direction", "mmnist_direction_divided"),
    "direction_space_only": ("direction", "mmnist_direction_space_only"),
    "digit_divided": ("direction", "mmnist_digit_divided"),
}
# Recognition scores: name -> (checkpoint, list file in the direction dataset, frame order).
RECOGNITION_SCORES = {
    f"{ckpt}_{order}": (ckpt, list_file, order)
    for ckpt, list_file, orders in (
        ("direction_divided", "test_direction.txt", ("forward", "reversed", "shuffled")),
        ("direction_space_only", "test_direction.txt", ("forward",)),
        ("digit_divided", "test_digit.txt", ("forward", "reversed", "shuffled")),
    )
    for order in orders
}
_SPACE_ONLY = ("model.net.layout=space_only", "model.net.tubelet_size=1")
_LAYOUTS = {"divided": ("model.net.layout=divided",), "space_only": _SPACE_ONLY,
            "space_only_none": (*_SPACE_ONLY, "model.net.temporal_pos_embed=none")}
# Stage-2 rows: name -> (dataset, layout, noise prior). Moving rows decide claims 2-4, static rows claims 1, 3, 4.
GENERATION = {
    f"{data}_{layout}_{prior}": (data, layout, prior)
    for data, layout, prior in (
        ("moving", "divided", "iid"), ("moving", "space_only", "iid"), ("moving", "space_only_none", "iid"),
        ("moving", "divided", "progressive"), ("moving", "space_only", "progressive"),
        ("moving", "divided", "shared"), ("moving", "space_only", "shared"),
        ("still", "divided", "iid"), ("still", "space_only", "iid"), ("still", "space_only", "shared"),
        ("slides", "divided", "iid"), ("slides", "space_only", "iid"), ("slides", "space_only", "shared"),
    )
}
# The generation job's row folders (under --reuse-gen) that are the same configs as moving rows here.
REUSE_ROWS = {"moving_divided_iid": "divided", "moving_space_only_iid": "space_only_sincos",
              "moving_space_only_none_iid": "space_only_none",
              **{f"moving_{layout}_{prior}": f"ablation_{layout}_{prior}"
                 for layout in ("divided", "space_only") for prior in ("progressive", "shared")}}
DATASETS = {"moving": "direction", "still": "still", "slides": "slides"}
REAL = {f"{data}_real": data for data in DATASETS}  # real test clips, scored like generated ones


@dataclass
class Grid:
    """Where everything of one ``claims.py`` run lives, and what it has measured so far."""

    out: Path
    budget: Budget
    data_dir: Path
    reuse_gen: Path | None = None
    reuse_runs: dict[str, Path] = field(default_factory=dict)  # recognition run name -> an existing run folder
    scores: dict[str, dict] = field(default_factory=dict)  # score name -> evaluation result (as JSON)

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / name

    def dataset(self, data: str) -> Path:
        return self.data_dir / f"moving_mnist_{DATASETS[data]}"


@contextlib.contextmanager
def timed(what: str):
    """Log how long a step took (the full budget's timings in the README come from these lines)."""
    start = time.perf_counter()
    yield
    log.info("%s: %.1f s", what, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------------------------
# Resumable steps
# --------------------------------------------------------------------------------------------------------------------
DONE_FILE = "spec.json"  # written when a step has finished, never before


def done(folder: Path, spec: dict) -> bool:
    """True when the step in ``folder`` finished with this ``spec`` (its ``spec.json``, written last by :func:`finish`,
    equals it). Otherwise the folder, a different or an unfinished step, is cleared so the step starts afresh: an
    interruption costs the step in progress, never a finished one."""
    spec_file = folder / DONE_FILE
    if spec_file.is_file() and json.loads(spec_file.read_text()) == spec:
        return True
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return False


def finish(folder: Path, spec: dict) -> None:
    """Mark the step in ``folder`` finished (atomically), after everything it writes is written."""
    write_text_atomic(folder / DONE_FILE, json.dumps(spec, indent=2) + "\n")


def fingerprint(path: Path) -> str:
    """``path`` with its size and modification time, so a step whose input was rewritten (a retrained checkpoint, new
    samples) no longer matches the spec it finished with."""
    stat = Path(path).stat()
    return f"{path}@{stat.st_size}:{stat.st_mtime_ns}"


def train_run(folder: Path, overrides: list[str], threads: int) -> Path:
    """``train.py`` in this process with ``overrides``; returns the checkpoint the run's metric uses."""
    from hydra import compose, initialize_config_dir

    from train import train

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, f"paths.output_dir={folder}",
                                                      f"num_threads={threads}", "test=false"])
    metrics = train(cfg)
    return Path(metrics["best_model_path"] or folder / "checkpoints" / "last.ckpt")


def build_data(grid: Grid) -> None:
    for data in DATASETS:
        build_dataset(grid.dataset(data), DATASETS[data], verbose=grid.budget.name == "full", **grid.budget.num_clips)


def recognition_checkpoints(grid: Grid) -> dict[str, Path]:
    """Train (or reuse) the recognition runs and the per-frame digit classifier; name -> checkpoint."""
    ckpts = {}
    direction = grid.dataset("moving")
    runs = {name: [f"experiment={exp}", *grid.budget.recognition] for name, (_, exp) in RECOGNITION.items()}
    runs["frame_digit"] = ["experiment=mmnist_frame_digit", *grid.budget.frame_digit]
    for name, overrides in runs.items():
        if name in grid.reuse_runs:
            ckpt = grid.reuse_runs[name] / "checkpoints" / "best.ckpt"
            if not ckpt.is_file():
                raise FileNotFoundError(f"--reuse {name}={grid.reuse_runs[name]}: no checkpoint at {ckpt}")
            ckpts[name] = ckpt
            continue
        overrides = [*overrides, f"data.root={direction}", "data.generate=null"]
        folder = grid.run_dir(name)
        if not done(folder, {"overrides": overrides}):
            with timed(f"recognition run {name}"):
                train_run(folder, overrides, grid.budget.threads)
            finish(folder, {"overrides": overrides})
        best = folder / "checkpoints" / "best.ckpt"
        ckpts[name] = best if best.is_file() else folder / "checkpoints" / "last.ckpt"
    return ckpts


def stage_one(grid: Grid) -> Path:
    """The shared per-frame autoencoder: reused from ``--reuse-gen``, random (smoke) or trained."""
    if grid.reuse_gen is not None:
        ckpt = grid.reuse_gen / "autoencoder" / "checkpoints" / "best.ckpt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"--reuse-gen {grid.reuse_gen}: no stage-1 checkpoint at {ckpt}")
        return ckpt
    folder = grid.run_dir("autoencoder")
    if grid.budget.autoencoder is None:
        from models.diffusion.autoencoder import FrameAutoencoder

        if not done(folder, {"random": True}):
            torch.manual_seed(0)
            FrameAutoencoder(block_out_channels=(8, 8, 8), norm_num_groups=4, latent_channels=4,
                             mid_block_add_attention=False).save_pretrained(folder / "vae")
            finish(folder, {"random": True})
        return folder / "vae"
    overrides = ["experiment=mmnist_autoencoder", f"data.root={grid.dataset('moving')}", "data.generate=null",
                 *grid.budget.autoencoder]
    if not done(folder, {"overrides": overrides}):
        train_run(folder, overrides, grid.budget.threads)
        finish(folder, {"overrides": overrides})
    return folder / "checkpoints" / "best.ckpt"


def latent_caches(grid: Grid, autoencoder: Path) -> dict[str, Path]:
    """One latent cache per dataset, encoded by the shared stage 1."""
    from scripts import cache_latents

    caches = {}
    reused = set(REUSE_ROWS) if grid.reuse_gen is not None else set()
    for data in sorted({data for name, (data, _, _) in GENERATION.items() if name not in reused}):  # rows to train
        folder = grid.run_dir(f"latents_{data}")
        caches[data] = folder
        weights = autoencoder / "config.json" if autoencoder.is_dir() else autoencoder
        spec = {"autoencoder": fingerprint(weights), "dataset": fingerprint(grid.dataset(data) / "dataset.json")}
        if done(folder, spec):
            continue
        with timed(f"latent cache {data}"):
            cache_latents.main(["--autoencoder", str(autoencoder), "--out", str(folder), "--data", "mmnist_generation",
                                "--num-threads", str(grid.budget.threads), f"data.root={grid.dataset(data)}",
                                "data.num_workers=0", *([] if data == "moving" else ["data.train=train_digit.txt",
                                "data.val=val_digit.txt", "data.test=test_digit.txt", "data.num_classes=10"])])
        finish(folder, spec)
    return caches


def samples_of_row(grid: Grid, name: str, autoencoder: Path, caches: dict[str, Path]) -> Path:
    """Train (or reuse) one stage-2 row and sample it; returns its ``samples.txt``."""
    from models.diffusion.generate import generate_to_folder

    data, layout, prior = GENERATION[name]
    if grid.reuse_gen is not None and name in REUSE_ROWS:
        samples = grid.reuse_gen / REUSE_ROWS[name] / "samples" / "samples.txt"
        if not (samples.parent / "classes.txt").is_file():  # written after samples.txt: the sampling finished
            raise FileNotFoundError(f"--reuse-gen: row {name} needs {samples.parent} (finished); run "
                                    "scripts/generation_rows.sh and scripts/coherence_ablation.sh, or drop --reuse-gen")
        return samples
    folder = grid.run_dir(name)
    overrides = ["experiment=mmnist_dit", f"data.root={caches[data]}", f"model.autoencoder_path={autoencoder}",
                 f"model.noise_prior={prior}", *_LAYOUTS[layout], *grid.budget.dit]
    if data != "moving":  # digit labels; a reversed slide show is not a slide show of the same label
        overrides = [*overrides, "data.num_classes=10", "data.time_reversal=false", *grid.budget.dit_static]
    spec = {"overrides": overrides, "num_samples": grid.budget.num_samples, "ddim_steps": grid.budget.ddim_steps,
            "latents": fingerprint(caches[data] / DONE_FILE)}
    if not done(folder, spec):
        with timed(f"stage 2 {name}"):
            train_run(folder / "dit", overrides, grid.budget.threads)
        with timed(f"sampling {name}"):
            generate_to_folder(folder / "dit" / "checkpoints" / "last.ckpt", folder / "samples",
                               grid.budget.num_samples, steps=grid.budget.ddim_steps, grey=True,
                               progress=grid.budget.name == "full")
        finish(folder, spec)
    return folder / "samples" / "samples.txt"


def score(grid: Grid, name: str, videos: Path, spec: dict, **kwargs) -> dict:
    """Evaluate ``videos`` once (reused when ``spec`` matches) and keep the result under ``name``."""
    folder = grid.out / "scores" / name
    inputs = {k: fingerprint(Path(v)) for k, v in kwargs.items() if k in ("classifier", "digit_classifier")}
    spec = {"videos": fingerprint(videos), **spec, **{k: str(v) for k, v in kwargs.items()}, **inputs}
    if not done(folder, spec):
        with timed(f"scoring {name}"):
            result = evaluate_videos(videos, progress=False, **kwargs)
            write_report(result, folder / "metrics.json")
        finish(folder, spec)
    grid.scores[name] = json.loads((folder / "metrics.json").read_text())
    return grid.scores[name]


def score_all(grid: Grid, ckpts: dict[str, Path], samples: dict[str, Path]) -> None:
    direction = grid.dataset("moving")
    for name, (ckpt, list_file, order) in RECOGNITION_SCORES.items():
        score(grid, f"recognition_{name}", direction / list_file, {}, classifier=ckpts[ckpt], groups=["accuracy"],
              frame_order=order)
    lists = {"moving": direction / "test_direction.txt", "still": grid.dataset("still") / "test_digit.txt",
             "slides": grid.dataset("slides") / "test_digit.txt"}
    rows = {**{name: (data, lists[data]) for name, data in REAL.items()},
            **{name: (GENERATION[name][0], path) for name, path in samples.items()}}
    for name, (data, videos) in rows.items():
        classifier = {"classifier": ckpts["direction_divided"]} if data == "moving" else {}
        score(grid, name, videos, {}, digit_classifier=ckpts["frame_digit"], groups=["temporal", "accuracy"],
              cuts=list(SLIDE_CUTS) if data == "slides" else [], **classifier)
        if data == "slides":  # the same clips as one segment: does the clip cut to another digit at all?
            score(grid, f"{name}_whole", videos, {}, digit_classifier=ckpts["frame_digit"], groups=["accuracy"])


def run(budget: Budget, out: Path, data_dir: Path | None = None, reuse_gen: Path | None = None,
        reuse_runs: dict[str, Path] | None = None) -> dict:
    """Make every run of the grid that is missing, score everything, and write the claims table."""
    from scripts import claims_verdicts

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(reuse_runs or {}) - {*RECOGNITION, "frame_digit"}
    if unknown:
        raise ValueError(f"--reuse {sorted(unknown)}: only recognition runs can be reused: {[*RECOGNITION, 'frame_digit']}")
    grid = Grid(out, budget, data_dir or (out / "data" if budget.name == "smoke" else ROOT / "datasets"), reuse_gen,
                dict(reuse_runs or {}))
    torch.set_num_threads(budget.threads)
    with timed("datasets"):
        build_data(grid)
    ckpts = recognition_checkpoints(grid)
    autoencoder = stage_one(grid)
    caches = latent_caches(grid, autoencoder)
    samples = {name: samples_of_row(grid, name, autoencoder, caches) for name in GENERATION}
    score_all(grid, ckpts, samples)
    report = claims_verdicts.decide(grid.scores)
    report["budget"] = asdict(budget)
    report["seconds"] = round(time.perf_counter() - start, 1)
    claims_verdicts.write(report, grid.scores, out)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="full", help="default: %(default)s")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/claims[_smoke]")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the datasets are built or found (default: datasets/, smoke: <out>/data)")
    parser.add_argument("--reuse-gen", type=Path, default=None,
                        help="the generation job's folder (outputs/gen): its stage 1 and moving rows are reused")
    parser.add_argument("--reuse", nargs="*", default=[], metavar="NAME=RUN_DIR",
                        help="use an existing recognition run instead of training it, e.g. "
                             "direction_divided=outputs/demo/divided (names: direction_divided, direction_space_only, "
                             "digit_divided, frame_digit)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: 2)")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="write results/NAME.json and results/NAME_order.json (default: claims for the full "
                             "budget, none for smoke; 'none': no records)")
    parser.add_argument("--results-dir", type=Path, default=None, help="where the records go (default: results/)")
    return parser.parse_args(argv)


def _verdict_text(claim: dict) -> str:
    """'**word**: reason': the verdict word in bold, then why (the reason it states, else the rule that gave it)."""
    word, _, reason = claim["verdict"].partition(": ")
    return f"**{word}**: {reason}" if reason else f"**{word}**: rule: {claim['rule']}"


def claims_rows(report: dict) -> dict[str, dict]:
    """One record row per claim: ``numbers`` (the deciding numbers with their intervals, as in claims.md) and
    ``verdict`` (:func:`_verdict_text`), both text."""
    from scripts.claims_verdicts import _fmt

    return {f"{c['claim']}. {c['text']}": {
        "numbers": {"text": "<br>".join(f"{key}: {_fmt(value)}" for key, value in c["numbers"].items())},
        "verdict": {"text": _verdict_text(c)},
    } for c in report["claims"]}


def order_rows(report: dict) -> dict[str, dict]:
    """Claim 5's recognition with frame order destroyed, one row per task: top-1 ``forward`` / ``reversed`` /
    ``shuffled`` (fractions) and the ``drop`` when shuffled (points, paired over clips), with their 95 % intervals."""
    from scripts.claims_verdicts import ORDER_DROP

    numbers = next(c for c in report["claims"] if c["claim"] == "5")["numbers"]
    rows = {}
    for task in ("direction", "digit"):
        drop = numbers[f"{task} drop when shuffled"]
        low, high = drop["ci95"]
        needs = "needs order" if low > ORDER_DROP else "does not" if high < ORDER_DROP else "undecided"
        row = {order: {"value": numbers[f"{task} top-1: {order}"]["value"],
                       "ci95": list(numbers[f"{task} top-1: {order}"]["ci95"])}
               for order in ("forward", "reversed", "shuffled")}
        row["drop"] = {"value": 100 * drop["value"], "ci95": [100 * low, 100 * high]}
        rows[f"`{task}` ({needs})"] = row
    return rows


def write_records(report: dict, name: str, command: str, threads: int, results_dir: Path | None = None,
                  reuse_gen: Path | None = None, reuse_runs: dict[str, Path] | None = None,
                  peak_flops: float | None = None) -> list[Path]:
    """``results/<name>.json`` (:func:`claims_rows`) and ``results/<name>_order.json`` (:func:`order_rows`), with this
    machine and its fp32 matmul peak (measured now, in this run, unless ``peak_flops`` is given)."""
    from scripts.records import machine, write_record

    info = machine(peak_flops=peak_flops, threads=threads)
    where = {"results_dir": results_dir} if results_dir else {}
    reused = []
    if reuse_gen is not None:
        reused.append(f"the generation job's stage 1 and moving rows ({reuse_gen})")
    if reuse_runs:
        reused.append("the recognition runs " + ", ".join(f"{k} ({v})" for k, v in sorted(reuse_runs.items())))
    budget = report.get("budget", {})
    notes = [f"Mean [95 % CI] over clips, one training seed per row; the rules are in `scripts/claims_verdicts.py`. "
             f"Budget `{budget.get('name', '?')}`, {report.get('seconds', 0):.0f} s"
             + (f"; reused {' and '.join(reused)}." if reused else ".")]
    paths = [write_record(name, title="The five coherence claims: verdicts of make claims", command=command,
                          rows=claims_rows(report), seeds=[0], notes=notes, machine_info=info, **where)]
    paths.append(write_record(
        f"{name}_order", title="Claim 5: recognition with frame order destroyed (the test clips)", command=command,
        rows=order_rows(report), seeds=[0], machine_info=info, **where,
        notes=["Top-1 of the `direction_divided` and `digit_divided` recognition runs on the test clips played "
               "forward, reversed and shuffled; drops are paired over clips. A reversed `direction` clip is a clip "
               "of the opposite direction."]))
    return paths


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    budget = BUDGETS[args.budget]
    if args.threads:
        budget = Budget(**{**asdict(budget), "threads": args.threads})
    out = args.out or ROOT / "outputs" / ("claims" if budget.name == "full" else "claims_smoke")
    bad = [item for item in args.reuse if "=" not in item]
    if bad:
        raise SystemExit(f"claims.py: error: --reuse {bad} must look like NAME=RUN_DIR")
    reuse_runs = {name: Path(folder) for name, folder in (item.split("=", 1) for item in args.reuse)}
    unknown = set(reuse_runs) - {*RECOGNITION, "frame_digit"}
    if unknown:
        raise SystemExit(f"claims.py: error: --reuse {sorted(unknown)}: only these runs can be reused: "
                         f"{[*RECOGNITION, 'frame_digit']}")
    record = args.record or ("claims" if budget.name == "full" else "none")
    report = run(budget, out, args.data_dir, args.reuse_gen, reuse_runs)
    print((out / "claims.md").read_text())
    print(f"{budget.name} budget finished in {report['seconds']:.0f} s -> {out}")
    if record != "none":
        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        for path in write_records(report, record, f"python scripts/claims.py {argv_text}".strip(), budget.threads,
                                  args.results_dir, args.reuse_gen, reuse_runs):
            print(f"record: {path}")
    return report


if __name__ == "__main__":
    main()
