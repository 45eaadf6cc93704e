"""The commands and links in README.md and docs/**/*.md work (issue 22, item 5).

What is read, each time the module is collected (so the docs can change under it):

- every ``python train.py ...`` / ``python eval.py ...`` command line, in fenced code blocks and in inline code spans
  (a span may wrap over lines of a paragraph): one test each, id ``FILE:LINE``. The command is tokenised as a shell
  would (quotes, ``\\`` continuations, ``&&``/``;``/pipes, redirections, ``# comments``, leading ``VAR=value``
  assignments, ``python3`` or ``.venv/bin/python`` as the interpreter) and composed with Hydra from ``configs/``
  (``train.yaml`` / ``eval.yaml``, as the two ``@hydra.main`` entry points do), then resolved. Nothing is trained or
  loaded. ``-m``/``--multirun`` sweeps are expanded by Hydra's own basic sweeper and every job is composed; a comma
  list without ``-m`` fails, as it does on the command line.
- every ``python scripts/NAME.py ...`` line: the script exists and ``--help`` exits 0 (one test per distinct script;
  all of them run in one subprocess through ``runpy``, so torch and friends are imported once). ``bash scripts/*.sh``:
  the file exists.
- every relative link and image (``[text](path)``, ``![alt](path)``, reference definitions, HTML ``src``/``href``)
  outside code: the file exists, relative to the markdown file's folder (``/path`` relative to the repository root).

Placeholders a reader is meant to fill in: ``<anything>``, ``...``/``…``, shell variables (``$VAR``, ``${VAR}``) and
ALL-CAPS words (``PATH``, ``K``, ``CKPT``). An override whose value is a placeholder keeps its key (so a misspelt key
still fails) with the value ``placeholder``; if its key is a config group (``model=<yours>``) the override is dropped.
A bare ``...`` means "more overrides": the command then composes, but keys left mandatory (``???``) are not an error.
Commands that cannot be composed on purpose are listed in ``EXCLUDED`` with a reason; no command is skipped silently.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from tests.conftest import CONFIG_DIR, compose_config

ROOT = Path(__file__).resolve().parents[1]
HYDRA_APPS = {"train.py": "train", "eval.py": "eval"}  # script -> config_name of its @hydra.main
PLACEHOLDER_VALUE = "placeholder"
MAX_SWEEP_JOBS = 64  # a documented sweep bigger than this is composed for its first jobs only

# Commands that are not composed on purpose: {(doc file, command text as collected): reason}. Keep it short.
EXCLUDED: dict[tuple[str, str], str] = {}

# Fenced blocks in these languages hold no shell commands (a "python train.py" inside one is Python text).
NON_SHELL_FENCES = {"python", "py", "yaml", "yml", "json", "toml", "ini", "cfg", "diff", "csv", "markdown", "md"}


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every markdown file under docs/, as they are now."""
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    return files + sorted((root / "docs").rglob("*.md"))


# ---------------------------------------------------------------------------------------------------------------
# Markdown: code snippets (fenced logical lines, inline spans) and the prose around them


@dataclass(frozen=True)
class Snippet:
    line: int  # 1-based line of the snippet's first character
    text: str
    fenced: bool


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^`\s]*)")
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def split_markdown(text: str) -> tuple[list[Snippet], str]:
    """Code snippets of a markdown text, and the text with all code blanked out (same line numbers).

    A fenced block yields one snippet per logical line (``\\`` continuations joined); an inline code span yields one
    snippet, its line breaks turned into spaces. Fenced blocks in a non-shell language yield nothing.
    """
    lines = text.split("\n")
    snippets: list[Snippet] = []
    prose_lines = list(lines)
    fence: str | None = None
    shell = True
    pending: list[str] = []
    pending_line = 0
    for number, line in enumerate(lines, 1):
        if fence is None:
            match = _FENCE.match(line)
            if match:
                fence, language = match.group(1), match.group(2).lower()
                shell = language not in NON_SHELL_FENCES
                prose_lines[number - 1] = ""
            continue
        prose_lines[number - 1] = ""
        stripped = line.strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            fence = None
            continue
        if not shell:
            continue
        if not pending:
            pending_line = number
            if stripped.startswith("$ "):  # console prompt
                line = stripped[2:]
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        snippets.append(Snippet(pending_line, " ".join(pending), True))
        pending = []
    if pending:  # a block ending on a continuation
        snippets.append(Snippet(pending_line, " ".join(pending), True))

    prose = "\n".join(prose_lines)
    blanked = list(prose)
    for match in _SPAN.finditer(prose):
        content = match.group(2)
        if re.search(r"\n[ \t]*\n", content):  # a code span never crosses a paragraph break
            continue
        start = match.start()
        snippets.append(Snippet(prose.count("\n", 0, start) + 1, " ".join(content.split("\n")).strip(), False))
        for i in range(match.start(), match.end()):
            if blanked[i] != "\n":
                blanked[i] = " "
    snippets.sort(key=lambda s: s.line)
    return snippets, "".join(blanked)


# ---------------------------------------------------------------------------------------------------------------
# Shell: command lines in a snippet


@dataclass(frozen=True)
class DocCommand:
    kind: str  # "hydra", "script" (python scripts/*.py) or "shell" (bash scripts/*.sh)
    file: str  # doc file, relative to the repository root
    line: int
    program: str  # train.py / eval.py / scripts/NAME.py / scripts/NAME.sh
    args: tuple[str, ...]
    text: str  # the command as collected, for messages
    error: str | None = None  # the line could not be tokenised

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


_INTERESTING = re.compile(r"(?:^|[\s/])(?:train|eval)\.py\b|scripts/\S+\.(?:py|sh)\b")
_PYTHON = re.compile(r"(?:^|/)python(?:3(?:\.\d+)?)?$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_ANGLE_PLACEHOLDER = re.compile(r"<[^<>\n]*[A-Za-z][^<>\n]*>")
_OPERATORS = {";", ";;", "&", "&&", "|", "||", "(", ")", "|&"}
_WRAPPERS = {"env", "time", "nohup", "exec", "command"}


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell line, as token lists (operators split them; redirections are dropped)."""
    text = text.replace("…", "...")
    text = _ANGLE_PLACEHOLDER.sub("__PLACEHOLDER__", text)  # <run>, <dit run>: never a redirection in the docs
    text = re.sub(r"\s\d?>&\d\b", " ", text)  # 2>&1
    text = re.sub(r"(\s)\d(>>?)", r"\1\2", text)  # 2> file
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token in _OPERATORS:
            commands.append([])
        elif set(token) <= set("<>&") and ("<" in token or ">" in token):
            skip_next = True  # the redirection's target
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def classify(tokens: list[str]) -> tuple[str, str, list[str]] | None:
    """(kind, program, args) of a simple command that runs train.py, eval.py or a script in scripts/, else None."""
    i = 0
    while i < len(tokens) and (_ENV_ASSIGNMENT.match(tokens[i]) or tokens[i] in _WRAPPERS):
        i += 1
    if i >= len(tokens):
        return None
    program = tokens[i]
    if _PYTHON.search(program):
        i += 1
        while i < len(tokens) and tokens[i].startswith("-"):
            if tokens[i] in ("-m", "-c"):
                return None  # python -m module / -c code
            i += 2 if tokens[i] in ("-W", "-X") else 1
        if i >= len(tokens):
            return None
        script = tokens[i].removeprefix("./")
        if script in HYDRA_APPS:
            return "hydra", script, tokens[i + 1:]
        if script.startswith("scripts/") and script.endswith(".py"):
            return "script", script, tokens[i + 1:]
        return None
    if program in ("bash", "sh") and i + 1 < len(tokens):
        script = tokens[i + 1].removeprefix("./")
        if script.startswith("scripts/"):
            return "shell", script, tokens[i + 2:]
    if program.removeprefix("./").startswith("scripts/") and program.endswith(".sh"):
        return "shell", program.removeprefix("./"), tokens[i + 1:]
    return None


def collect_commands(text: str, file: str) -> list[DocCommand]:
    """Every train.py / eval.py / scripts command of one markdown text."""
    found = []
    for snippet in split_markdown(text)[0]:
        if not _INTERESTING.search(snippet.text):
            continue
        try:
            commands = shell_commands(snippet.text)
        except ValueError as error:  # unbalanced quotes
            if re.search(r"\b(?:train|eval)\.py\b|python3?\s+\S*scripts/", snippet.text):
                found.append(DocCommand("hydra", file, snippet.line, "?", (), snippet.text,
                                        error=f"cannot tokenise: {error}"))
            continue
        for tokens in commands:
            parsed = classify(tokens)
            if parsed:
                kind, program, args = parsed
                found.append(DocCommand(kind, file, snippet.line, program, tuple(args), shlex.join(tokens)))
    return found


def collect_all(root: Path = ROOT) -> list[DocCommand]:
    return [c for path in doc_files(root)
            for c in collect_commands(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())]


def unique_ids(items: list, key) -> list[str]:
    """``key(item)`` made unique with ``[2]``, ``[3]``... for items on the same line."""
    seen: dict[str, int] = {}
    ids = []
    for item in items:
        base = key(item)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}[{seen[base]}]")
    return ids


# ---------------------------------------------------------------------------------------------------------------
# Hydra: compose a documented train.py / eval.py command


class DocCommandError(AssertionError):
    pass


def is_placeholder(value: str) -> bool:
    """``<...>``, ``...``, a shell variable (``$RUN``, ``${RUN}``) or an ALL-CAPS word (``PATH``, ``K``)."""
    return ("__PLACEHOLDER__" in value or "..." in value or _ANGLE_PLACEHOLDER.search(value) is not None
            or re.search(r"\$\{?[A-Z_][A-Z0-9_]*\b", value) is not None
            or re.fullmatch(r"[A-Z][A-Z0-9_]*", value) is not None)


def is_config_group(key: str) -> bool:
    key = key.lstrip("+~").split("@")[0]
    return (Path(CONFIG_DIR) / key).is_dir() or key.startswith("hydra/")


def hydra_overrides(args: tuple[str, ...]) -> tuple[str, list[str], bool, bool, list[str]]:
    """(config_name override or "", overrides with placeholders handled, multirun, partial, notes)."""
    config_name, overrides, notes = "", [], []
    multirun = partial = False
    args = list(args)
    while args:
        arg = args.pop(0)
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in ("-cn", "--config-name"):
            config_name = args.pop(0) if args else ""
        elif arg.startswith("--config-name="):
            config_name = arg.split("=", 1)[1]
        elif arg in ("-c", "--cfg", "-p", "--package", "--info", "-i"):
            if arg in ("-c", "--cfg", "-p", "--package") and args:
                args.pop(0)
        elif arg in ("--help", "-h", "--hydra-help", "--resolve"):
            pass
        elif arg.startswith("-") and not re.match(r"^-?\d", arg):
            raise DocCommandError(f"unsupported command-line flag {arg!r}")
        elif arg == "..." or ("=" not in arg and is_placeholder(arg)):
            partial = True
            notes.append(f"{arg!r}: more overrides to fill in")
        elif "=" in arg and is_placeholder(arg.split("=", 1)[1]):
            key = arg.split("=", 1)[0]
            if is_config_group(key):
                notes.append(f"dropped {arg!r} (a config group with a placeholder value)")
            else:
                overrides.append(f"{key}={PLACEHOLDER_VALUE}")
                notes.append(f"{arg!r} composed as {key}={PLACEHOLDER_VALUE}")
        else:
            overrides.append(arg)
    return config_name, overrides, multirun, partial, notes


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of a ``-m`` sweep, as Hydra's basic sweeper splits them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, max_batch_size=None) for job in batch]


def compose_and_resolve(config_name: str, overrides: list[str], partial: bool) -> None:
    """Compose like ``@hydra.main`` would, then resolve every non-hydra value (``${hydra:...}`` included)."""
    cfg = compose_config(config_name, overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "/tmp/doc-command-output"
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(cfg)
    try:
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=not partial)
    finally:
        hydra_config.cfg = previous


def check_hydra_command(program: str, args: tuple[str, ...]) -> list[str]:
    """Compose (and resolve) a documented ``python train.py|eval.py ARGS``; returns notes, raises DocCommandError."""
    config_name, overrides, multirun, partial, notes = hydra_overrides(args)
    config_name = config_name or HYDRA_APPS[program]
    jobs = [overrides]
    if multirun:
        try:
            jobs = sweep_jobs(overrides)
        except Exception as error:  # noqa: BLE001 - Hydra's parse errors name the override
            raise DocCommandError(f"cannot expand the sweep: {type(error).__name__}: {error}") from error
        if len(jobs) > MAX_SWEEP_JOBS:
            notes.append(f"{len(jobs)} sweep jobs, the first {MAX_SWEEP_JOBS} composed")
            jobs = jobs[:MAX_SWEEP_JOBS]
    for job in jobs:
        try:
            compose_and_resolve(config_name, job, partial)
        except Exception as error:  # noqa: BLE001 - report whatever Hydra / OmegaConf say
            cause = f"\n  caused by {type(error.__cause__).__name__}: {error.__cause__}" if error.__cause__ else ""
            sweep = f" (sweep job {job})" if multirun else ""
            raise DocCommandError(f"{type(error).__name__}: {error}{cause}{sweep}") from error
    return notes


# ---------------------------------------------------------------------------------------------------------------
# Scripts: exist, and answer --help


_HELP_RUNNER = textwrap.dedent('''
    import contextlib, io, json, os, runpy, sys, traceback
    out_file, scripts = sys.argv[1], sys.argv[2:]
    base_path, results = list(sys.path[1:]), {}
    for path in scripts:
        sys.argv = [path, "--help"]
        sys.path[:] = [os.path.dirname(os.path.abspath(path))] + base_path  # as `python path` sets sys.path[0]
        output, code = io.StringIO(), 0
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                runpy.run_path(path, run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if not isinstance(stop.code, (int, type(None))):
                output.write(str(stop.code))
        except BaseException:
            code = "exception"
            output.write(traceback.format_exc())
        results[path] = {"code": code, "output": output.getvalue()}
        with open(out_file, "w") as f:  # written after every script: a crash keeps the earlier results
            json.dump(results, f)
''')


def start_help(scripts: list[str], cwd: Path, out_file: Path) -> subprocess.Popen | None:
    """Start ``SCRIPT --help`` for every script, all in one Python process (torch is imported once)."""
    if not scripts:
        return None
    return subprocess.Popen([sys.executable, "-c", _HELP_RUNNER, str(out_file), *scripts], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_help(scripts: list[str], process: subprocess.Popen | None, out_file: Path,
                timeout: float = 300) -> dict[str, dict]:
    """Wait for :func:`start_help`; {script: {"code", "output"}} for every script."""
    if process is not None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    results = json.loads(out_file.read_text()) if out_file.is_file() else {}
    return {s: results.get(s, {"code": "no result (the runner crashed or timed out)", "output": ""}) for s in scripts}


def run_help(scripts: list[str], cwd: Path, out_file: Path, timeout: float = 300) -> dict[str, dict]:
    return finish_help(scripts, start_help(scripts, cwd, out_file), out_file, timeout)


def script_problem(script: str, root: Path, help_results: dict[str, dict]) -> str | None:
    """Why a documented ``scripts/...`` command does not work, or None."""
    if not (root / script).is_file():
        return f"{script} does not exist"
    if script.endswith(".py"):
        result = help_results[script]
        if result["code"] != 0:
            return f"`python {script} --help` exited with {result['code']}:\n{result['output'][-3000:]}"
        if not result["output"].strip():
            return f"`python {script} --help` printed nothing (does it parse its arguments?)"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Links


@dataclass(frozen=True)
class Link:
    file: str
    line: int
    target: str


_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text] or ![alt], one level of nested brackets
                   r"\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")  # (target "title")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
_HTML = re.compile(r"<(?:img|a|source|video)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)


def collect_links(text: str, file: str) -> list[Link]:
    """Relative link and image targets outside code (no URLs with a scheme, no pure anchors)."""
    prose = split_markdown(text)[1]
    links = []
    for pattern in (_LINK, _REFERENCE, _HTML):
        for match in pattern.finditer(prose):
            target = match.group(1).strip("<>")
            if not target or target.startswith(("#", "//")) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
                continue
            links.append(Link(file, prose.count("\n", 0, match.start()) + 1, target))
    return sorted(links, key=lambda link: link.line)


def link_problem(link: Link, root: Path = ROOT) -> str | None:
    path = unquote(re.split(r"[#?]", link.target, maxsplit=1)[0])
    resolved = root / path.lstrip("/") if path.startswith("/") else (root / link.file).parent / path
    if resolved.exists():
        return None
    shown = resolved.resolve().relative_to(root) if resolved.resolve().is_relative_to(root) else resolved.resolve()
    return f"{link.target} -> {shown} does not exist"


def collect_all_links(root: Path = ROOT) -> list[Link]:
    return [link for path in doc_files(root)
            for link in collect_links(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())]


# ---------------------------------------------------------------------------------------------------------------
# The tests over the real docs

COMMANDS = collect_all()
HYDRA_COMMANDS = [c for c in COMMANDS if c.kind == "hydra"]
SCRIPTS = sorted({c.program for c in COMMANDS if c.kind in ("script", "shell")})
LINKS = collect_all_links()


@functools.lru_cache(maxsize=None)
def hydra_problem(program: str, args: tuple[str, ...]) -> str | None:
    """Why a documented train.py / eval.py command does not compose, or None (cached: the docs repeat commands)."""
    try:
        check_hydra_command(program, args)
    except DocCommandError as error:
        return str(error)
    return None


@pytest.mark.parametrize("command", HYDRA_COMMANDS, ids=unique_ids(HYDRA_COMMANDS, lambda c: c.id))
def test_documented_command_composes(command: DocCommand):
    reason = EXCLUDED.get((command.file, command.text))
    if reason:
        pytest.skip(f"excluded: {reason}")
    problem = command.error or hydra_problem(command.program, command.args)
    if problem:
        pytest.fail(f"{command.id}: {command.text}\n{problem}", pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def help_runner(request, tmp_path_factory):
    """Start every documented script's ``--help`` in the background as soon as this module's first test runs (if a
    script test is selected), so the imports overlap with the Hydra tests; ``help_results`` collects it."""
    if not any(getattr(item, "originalname", "") == "test_documented_script_exists_and_answers_help"
               for item in request.session.items):
        yield None
        return
    scripts = [s for s in SCRIPTS if s.endswith(".py") and (ROOT / s).is_file()]
    out_file = tmp_path_factory.mktemp("help") / "help.json"
    process = start_help(scripts, ROOT, out_file)
    yield scripts, process, out_file
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def help_results(help_runner, tmp_path_factory) -> dict[str, dict]:
    if help_runner is None:  # not started in the background
        scripts = [s for s in SCRIPTS if s.endswith(".py") and (ROOT / s).is_file()]
        return run_help(scripts, ROOT, tmp_path_factory.mktemp("help") / "help.json")
    return finish_help(*help_runner)


@pytest.mark.parametrize("script", SCRIPTS)
def test_documented_script_exists_and_answers_help(script: str, help_results):
    problem = script_problem(script, ROOT, help_results)
    if problem:
        where = ", ".join(c.id for c in COMMANDS if c.program == script)
        pytest.fail(f"{problem}\n  documented at {where}", pytrace=False)


@pytest.mark.parametrize("link", LINKS, ids=unique_ids(LINKS, lambda link: f"{link.file}:{link.line}"))
def test_documented_link_exists(link: Link):
    problem = link_problem(link)
    if problem:
        pytest.fail(f"{link.file}:{link.line}: {problem}", pytrace=False)


def test_the_docs_were_read():
    """An empty collection (a moved README, a broken parser) would pass every test above vacuously."""
    assert HYDRA_COMMANDS, "no python train.py / eval.py command found in README.md or docs/"
    assert LINKS, "no relative link or image found in README.md or docs/"
    stale = [key for key in EXCLUDED if not any((c.file, c.text) == key for c in HYDRA_COMMANDS)]
    assert not stale, f"EXCLUDED names commands the docs no longer have: {stale}"


# ---------------------------------------------------------------------------------------------------------------
# The checks themselves can fail

FAKE_DOC = r"""# Fake

Train with `python train.py
seed=3` (an inline span over two lines), or:

```bash
SEED=1 OMP_NUM_THREADS=1 .venv/bin/python train.py trainer.max_epochs=2 \
    data.batch_size=4   # a comment with train.py x=1
python3 eval.py ckpt_path=<run>/checkpoints/best.ckpt && bash scripts/demo.sh > log.txt 2>&1
python train.py -m seed=0,1 experiment=mmnist_direction_divided,mmnist_direction_space_only
python scripts/predict.py RUN clip.mp4 --topk 3
```

```python
subprocess.run("python train.py not.a.command=1")
```

![an image](docs/missing.png) and [a file](train.py), [web](https://example.com), [anchor](#fake),
`[not a link](nowhere.md)`
"""


def test_collects_commands_through_shell_syntax():
    commands = collect_commands(FAKE_DOC, "FAKE.md")
    assert [(c.kind, c.line, c.program, c.args) for c in commands] == [
        ("hydra", 3, "train.py", ("seed=3",)),
        ("hydra", 7, "train.py", ("trainer.max_epochs=2", "data.batch_size=4")),
        ("hydra", 9, "eval.py", ("ckpt_path=__PLACEHOLDER__/checkpoints/best.ckpt",)),
        ("shell", 9, "scripts/demo.sh", ()),
        ("hydra", 10, "train.py",
         ("-m", "seed=0,1", "experiment=mmnist_direction_divided,mmnist_direction_space_only")),
        ("script", 11, "scripts/predict.py", ("RUN", "clip.mp4", "--topk", "3")),
    ]
    assert unique_ids(commands, lambda c: c.id)[2:4] == ["FAKE.md:9", "FAKE.md:9[2]"]


def test_good_commands_compose_and_sweeps_expand():
    commands = [c for c in collect_commands(FAKE_DOC, "FAKE.md") if c.kind == "hydra"]
    for command in commands:
        check_hydra_command(command.program, command.args)
    assert len(sweep_jobs(hydra_overrides(commands[3].args)[1])) == 4
    check_hydra_command("train.py", ("model.pretrained=PATH", "..."))  # placeholders keep the key, "..." is more
    check_hydra_command("train.py", ("model=<yours>", "seed=$SEED"))


@pytest.mark.parametrize("args, message", [
    (("model.nonexistent_key=3",), "nonexistent_key"),
    (("experiment=no_such_experiment",), "no_such_experiment"),
    (("seed=0,1",), "multirun"),  # a comma list without -m
    (("-m", "model.nonexistent_key=1,2"), "nonexistent_key"),
    (("data=videos",), "Missing mandatory value"),  # data.root / data.num_classes left out
    (("--no-such-flag",), "no-such-flag"),
    (("model.nonexistent=<yours>",), "nonexistent"),  # a placeholder value does not hide a wrong key
])
def test_bad_commands_are_reported(args, message):
    with pytest.raises(DocCommandError, match=message):
        check_hydra_command("train.py", args)


def test_bad_eval_command_is_reported():
    check_hydra_command("eval.py", ("ckpt_path=x.ckpt", "trainer.devices=2"))
    with pytest.raises(DocCommandError, match="nonexistent"):
        check_hydra_command("eval.py", ("ckpt_path=x.ckpt", "nonexistent=1"))
    with pytest.raises(DocCommandError, match="ckpt_path"):
        check_hydra_command("eval.py", ())  # ckpt_path is mandatory


def test_broken_links_are_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.png").write_bytes(b"")
    (tmp_path / "docs" / "page.md").write_text("![ok](here.png) [up](../README.md) [gone](gone.md#part) "
                                               "[rooted](/docs/here.png) <img src=\"nope.gif\">\n")
    (tmp_path / "README.md").write_text(FAKE_DOC)
    links = collect_all_links(tmp_path)
    assert [(link.file, link.line, link.target) for link in links] == [
        ("README.md", 18, "docs/missing.png"), ("README.md", 18, "train.py"),
        ("docs/page.md", 1, "here.png"), ("docs/page.md", 1, "../README.md"), ("docs/page.md", 1, "gone.md#part"),
        ("docs/page.md", 1, "/docs/here.png"), ("docs/page.md", 1, "nope.gif"),
    ]
    broken = [(link.target, bool(link_problem(link, tmp_path))) for link in links]
    assert [target for target, bad in broken if bad] == ["docs/missing.png", "train.py", "gone.md#part", "nope.gif"]


def test_broken_scripts_are_reported(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "good.py").write_text("import argparse\nargparse.ArgumentParser().parse_args()\n")
    (tmp_path / "scripts" / "bad.py").write_text("import no_such_module_here\n")
    (tmp_path / "scripts" / "silent.py").write_text("x = 1\n")
    scripts = ["scripts/good.py", "scripts/bad.py", "scripts/silent.py"]
    results = run_help(scripts, tmp_path, tmp_path / "help.json", timeout=60)
    assert script_problem("scripts/good.py", tmp_path, results) is None
    assert "no_such_module_here" in script_problem("scripts/bad.py", tmp_path, results)
    assert "printed nothing" in script_problem("scripts/silent.py", tmp_path, results)
    assert "does not exist" in script_problem("scripts/missing.sh", tmp_path, results)
