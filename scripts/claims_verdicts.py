"""The five claims, the numbers that decide them, and the rules that turn numbers into verdicts (for ``claims.py``).

Every number is a mean over clips with a 95 % percentile-bootstrap interval (``models.metrics.stats``); a comparison
is the interval of a difference of means (paired over clips where both rows score the same clips). The rules were written before the full run and are printed beside every
verdict, so a reader can disagree with a rule rather than with the numbers. Honesty rules:

* a verdict needs its interval to clear the rule's threshold; otherwise it is ``inconclusive``;
* generated clips are read against real clips of the same data (the ``*_real`` rows);
* flicker and warp error reward frozen video, so no verdict rests on them alone: they are reported beside motion
  accuracy or identity consistency, never as the deciding number;
* a generation claim gets no verdict while the generator does not work: the temporal model (``divided``) must reach
  the issue-8 target on moving data (motion accuracy CI low ≥ 0.8) and make the requested digit on still data
  (digit accuracy CI low ≥ 0.5). Otherwise layouts and priors would be compared "noise with noise".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from data.files import write_text_atomic
from models.metrics.stats import Interval, difference_ci, mean_ci

CHANCE_DIRECTION = 1 / 8
MARGIN = 0.05  # "as good as": a difference whose interval stays above −MARGIN
ORDER_DROP = 0.10  # a task "needs order" when destroying order costs more than this much accuracy
MOVING_GATE = 0.8  # divided's motion accuracy (CI low) before any generation verdict on moving data
STATIC_GATE = 0.5  # divided's digit accuracy on still data (CI low) before any verdict on static data
NO_VERDICT = "no verdict"


def per_clip(scores: dict[str, dict], row: str, prefix: str) -> list[float]:
    """The per-clip values of the first metric of ``row`` whose key starts with ``prefix``.

    Raises:
        KeyError: the row was not scored or has no such metric (the message names both).
    """
    if row not in scores:
        raise KeyError(f"row {row!r} was not scored")
    for key, values in scores[row].get("per_clip", {}).items():
        if key.startswith(prefix):
            return values
    raise KeyError(f"row {row!r} has no per-clip metric {prefix}* (has {sorted(scores[row].get('per_clip', {}))})")


def ci(scores, row, prefix) -> Interval:
    return mean_ci(per_clip(scores, row, prefix))


def diff(scores, row_a, row_b, prefix, paired: bool = False) -> Interval:
    """Difference of means; ``paired`` when both rows score the same clips (the order controls)."""
    return difference_ci(per_clip(scores, row_a, prefix), per_clip(scores, row_b, prefix), paired=paired)


def _gate(s, moving: bool = False, static: bool = False) -> str | None:
    """Why the generator cannot answer yet (see the module docstring), or None when it can."""
    reasons = []
    if moving:
        works = ci(s, "moving_divided_iid", "flow_direction_accuracy")
        if works.low < MOVING_GATE:
            reasons.append(f"divided's motion accuracy {works} has CI low < {MOVING_GATE}")
    if static:
        works = ci(s, "still_divided_iid", "digit_accuracy")
        if works.low < STATIC_GATE:
            reasons.append(f"divided's digit accuracy on still data {works} has CI low < {STATIC_GATE}")
    return f"{NO_VERDICT}: the generator does not work yet ({'; '.join(reasons)})" if reasons else None


def _claim_1(s) -> tuple[str, dict[str, Interval], str]:
    numbers = {
        "identity per slide: space_only + shared noise": ci(s, "slides_space_only_shared", "identity_consistency"),
        "identity per slide: divided (temporal)": ci(s, "slides_divided_iid", "identity_consistency"),
        "identity per slide: real slides": ci(s, "slides_real", "identity_consistency"),
        "identity, space_only shared − divided": diff(s, "slides_space_only_shared", "slides_divided_iid",
                                                      "identity_consistency"),
        "digit accuracy, space_only shared − divided": diff(s, "slides_space_only_shared", "slides_divided_iid",
                                                            "digit_accuracy"),
        "flicker: space_only shared / divided / real": _triple(s, "slides", "temporal_flickering"),
        "clips that cut to another digit: real slides": _cut_rate(s, "slides_real"),
        "cuts, space_only shared − divided": difference_ci(*(_cuts(s, row) for row in (
            "slides_space_only_shared", "slides_divided_iid"))),
    }
    gaps = [numbers[key] for key in ("identity, space_only shared − divided",
                                     "digit accuracy, space_only shared − divided", "cuts, space_only shared − divided")]
    rule = (f"yes if all three differences have CI low ≥ −{MARGIN} (per-frame generation with shared noise keeps each "
            f"slide's digit, makes the requested digit and still cuts to a new slide, as well as the temporal model; "
            f"identity alone would reward a clip that never cuts); no if any has CI high < −{MARGIN}; else inconclusive")
    verdict = ("yes" if min(g.low for g in gaps) >= -MARGIN else "no" if min(g.high for g in gaps) < -MARGIN
               else "inconclusive")
    return _gate(s, static=True) or verdict, numbers, rule


def _cuts(s, row: str) -> list[float]:
    """Per clip, 1 when its frames do not all show one digit (scored as one segment: ``<row>_whole``), else 0."""
    return [1.0 - v for v in per_clip(s, f"{row}_whole", "identity_consistency")]


def _cut_rate(s, row: str) -> Interval:
    return mean_ci(_cuts(s, row))


def _triple(s, data: str, prefix: str) -> str:
    rows = (f"{data}_space_only_shared", f"{data}_divided_iid", f"{data}_real")
    return " / ".join(f"{ci(s, row, prefix).value:.3f}" for row in rows)


def _claim_2(s):
    numbers = {
        "recognition top-1: divided": ci(s, "recognition_direction_divided_forward", "classifier_accuracy"),
        "recognition top-1: space_only": ci(s, "recognition_direction_space_only_forward", "classifier_accuracy"),
        "generation motion accuracy: divided": ci(s, "moving_divided_iid", "flow_direction_accuracy"),
        "generation motion accuracy: space_only": ci(s, "moving_space_only_iid", "flow_direction_accuracy"),
        "generation, divided − space_only": diff(s, "moving_divided_iid", "moving_space_only_iid",
                                                 "flow_direction_accuracy"),
    }
    recognition, generation = numbers["recognition top-1: divided"], numbers["generation motion accuracy: divided"]
    rule = ("a task is won when divided's CI low ≥ 0.8 (in generation, also beating space_only: difference CI low "
            "> 0); no (transformers can) if both tasks are won; yes if divided's CI high ≤ chance + 0.1 in both; "
            "partly if exactly one is won; else inconclusive")
    wins = [recognition.low >= 0.8, generation.low >= MOVING_GATE and numbers["generation, divided − space_only"].low > 0]
    fails = [x.high <= CHANCE_DIRECTION + 0.1 for x in (recognition, generation)]
    verdict = "no" if all(wins) else "yes" if all(fails) else "partly" if any(wins) else "inconclusive"
    return verdict, numbers, rule


def _claim_3(s):
    numbers = {f"motion accuracy: space_only + {p}": ci(s, f"moving_space_only_{p}", "flow_direction_accuracy")
               for p in ("iid", "progressive", "shared")}
    numbers["motion accuracy: divided + iid"] = ci(s, "moving_divided_iid", "flow_direction_accuracy")
    gaps = {p: diff(s, f"moving_space_only_{p}", "moving_divided_iid", "flow_direction_accuracy")
            for p in ("iid", "progressive", "shared")}
    numbers |= {f"moving, space_only {p} − divided iid": gap for p, gap in gaps.items()}
    static = diff(s, "still_space_only_shared", "still_divided_iid", "identity_consistency")
    static_digits = diff(s, "still_space_only_shared", "still_divided_iid", "digit_accuracy")
    numbers["still identity, space_only shared − divided iid"] = static
    numbers["still digit accuracy, space_only shared − divided iid"] = static_digits
    numbers["still flicker: space_only shared / divided / real"] = _triple(s, "still", "temporal_flickering")
    rule = (f"yes if some noise prior lets space_only reach divided's motion accuracy (difference CI low ≥ −{MARGIN}); "
            f"no if every prior leaves it below (CI high < −{MARGIN}) and shared noise does not reach divided's "
            f"identity and digit accuracy on still data either; partly if moving data fails but still data reaches "
            f"both (CI low ≥ −{MARGIN}; identity alone would reward a repeated garbage frame); else inconclusive")
    if any(g.low >= -MARGIN for g in gaps.values()):
        verdict = "yes"
    elif all(g.high < -MARGIN for g in gaps.values()):
        lows, highs = (min(static.low, static_digits.low), min(static.high, static_digits.high))
        verdict = "partly" if lows >= -MARGIN else "no" if highs < -MARGIN else "inconclusive"
    else:
        verdict = "inconclusive"
    return _gate(s, moving=True, static=True) or verdict, numbers, rule


def _claim_4(s):
    numbers = {
        "still identity: space_only": ci(s, "still_space_only_iid", "identity_consistency"),
        "still identity: real": ci(s, "still_real", "identity_consistency"),
        "still identity, space_only − real": diff(s, "still_space_only_iid", "still_real", "identity_consistency"),
        "still digit accuracy: space_only": ci(s, "still_space_only_iid", "digit_accuracy"),
        "moving motion accuracy: space_only (sincos) / (none)": " / ".join(
            f"{ci(s, row, 'flow_direction_accuracy')}" for row in ("moving_space_only_iid", "moving_space_only_none_iid")),
        "moving motion accuracy: real": ci(s, "moving_real", "flow_direction_accuracy"),
    }
    gap, digits = numbers["still identity, space_only − real"], numbers["still digit accuracy: space_only"]
    rule = ("yes if on still data space_only's identity consistency is within 0.1 of real clips (difference CI low ≥ "
            "−0.1) and its digit accuracy CI low ≥ 0.5; no if the difference CI high < −0.1 or digit accuracy CI "
            "high < 0.5; else inconclusive (the moving numbers are the contrast, not part of the rule)")
    verdict = ("yes" if gap.low >= -0.1 and digits.low >= 0.5 else
               "no" if gap.high < -0.1 or digits.high < 0.5 else "inconclusive")
    return _gate(s, static=True) or verdict, numbers, rule


def _claim_5(s):
    numbers, needs = {}, {}
    for task in ("direction", "digit"):
        forward = f"recognition_{task}_divided_forward"
        numbers[f"{task} top-1: forward"] = ci(s, forward, "classifier_accuracy")
        for order in ("reversed", "shuffled"):
            numbers[f"{task} top-1: {order}"] = ci(s, f"recognition_{task}_divided_{order}", "classifier_accuracy")
        drop = diff(s, forward, f"recognition_{task}_divided_shuffled", "classifier_accuracy", paired=True)
        numbers[f"{task} drop when shuffled"] = drop
        needs[task] = True if drop.low > ORDER_DROP else False if drop.high < ORDER_DROP else None
    numbers["generated clips (divided): classifier / flow motion accuracy"] = " / ".join(
        str(ci(s, "moving_divided_iid", prefix)) for prefix in ("classifier_accuracy", "flow_direction_accuracy"))
    rule = (f"a task needs order when shuffling costs more than {ORDER_DROP:.0%} top-1 (drop CI low > {ORDER_DROP}) and "
            f"does not when the drop CI high < {ORDER_DROP}; yes if neither task needs order, no if both do, partly if "
            "exactly one does; inconclusive if either is undecided")
    if None in needs.values():
        verdict = "inconclusive"
    else:
        verdict = {0: "yes", 1: "partly", 2: "no"}[sum(needs.values())]
    return verdict, numbers, rule


CLAIMS: dict[str, tuple[str, Callable]] = {
    "1": ("Slide-show (PPT-style) video needs no temporal coherence", _claim_1),
    "2": ("Transformers can't model video", _claim_2),
    "3": ("Gaussian noise guarantees coherence", _claim_3),
    "4": ("Per-frame generation works for static sequences", _claim_4),
    "5": ("Machines don't need coherence", _claim_5),
}


def _as_json(value):
    if isinstance(value, Interval):
        return {"value": value.value, "ci95": [value.low, value.high], "n": value.n}
    return value


def decide(scores: dict[str, dict]) -> dict:
    """Apply every claim's rule to the scores; returns ``{"claims": [...]}`` (JSON-serialisable)."""
    claims = []
    for number, (text, rule_fn) in CLAIMS.items():
        verdict, numbers, rule = rule_fn(scores)
        claims.append({"claim": number, "text": text, "verdict": verdict, "rule": rule,
                       "numbers": {k: _as_json(v) for k, v in numbers.items()}})
    return {"claims": claims}


def _fmt(value) -> str:
    if isinstance(value, dict):
        return f"{value['value']:.3f} [{value['ci95'][0]:.3f}, {value['ci95'][1]:.3f}]"
    return str(value)


def markdown(report: dict) -> str:
    lines = ["| # | claim | numbers (mean [95 % CI] over clips) | verdict | rule |", "|---|---|---|---|---|"]
    for c in report["claims"]:
        numbers = "<br>".join(f"{k}: {_fmt(v)}" for k, v in c["numbers"].items())
        lines.append(f"| {c['claim']} | {c['text']} | {numbers} | **{c['verdict']}** | {c['rule']} |")
    budget = report.get("budget", {})
    lines += ["", f"Budget `{budget.get('name', '?')}`, {report.get('seconds', 0):.0f} s. Intervals: percentile "
              "bootstrap over clips, 2000 resamples, seed 0."]
    return "\n".join(lines) + "\n"


def plot(scores: dict[str, dict], out: Path) -> list[Path]:
    """Bar charts of motion accuracy / identity consistency and flicker by layout × noise prior, moving and static."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {
        "moving": [("flow_direction_accuracy", "motion accuracy (flow)"), ("temporal_flickering", "flicker score")],
        "static": [("identity_consistency", "identity consistency"), ("temporal_flickering", "flicker score")],
    }
    written = []
    for kind, metrics in panels.items():
        datas = ("moving",) if kind == "moving" else ("still", "slides")
        rows = [r for r in scores if r.split("_")[0] in datas and not r.endswith("_whole")]
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
        for ax, (prefix, label) in zip(axes[0], metrics):
            intervals = [ci(scores, row, prefix) for row in rows]
            ax.barh(range(len(rows)), [i.value for i in intervals],
                    xerr=[[i.value - i.low for i in intervals], [i.high - i.value for i in intervals]],
                    color=["grey" if r.endswith("_real") else "tab:blue" for r in rows], capsize=2)
            ax.set_yticks(range(len(rows)), rows, fontsize=7)
            ax.set_xlabel(f"{label} (95 % CI)")
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle(f"{kind} data: layout × noise prior (grey: real clips)", fontsize=10)
        fig.tight_layout()
        path = out / f"claims_{kind}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write(report: dict, scores: dict[str, dict], out: Path) -> None:
    """``claims.md``, ``claims.json`` (atomically) and the two PNGs."""
    for name, text in (("claims.md", markdown(report)), ("claims.json", json.dumps(report, indent=2) + "\n")):
        write_text_atomic(out / name, text)
    plot(scores, out)
