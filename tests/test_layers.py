"""One-way layers: every module of data/, models/, train.py, eval.py and scripts/ imports only from its own layer or
the layers below it (the order of ``docs/design.md``, "Layers"), and no modules import each other in a circle.

Imports are read with ``ast`` from the source, at any depth: an import inside a function is as much a dependency as
one at the top of the file (a lazy one hid the circle ``data/datamodule.py`` <-> ``data/latents.py``). Every failure
names the import as ``file:line``.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "models", "scripts", "train", "eval")  # the top-level names of the project's own modules

# Lowest first; a module may import its own layer and those before it. A file belongs to the layer of the longest
# pattern it matches, so a file named on its own overrides its folder's pattern.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("files", ("data/files.py",)),
    ("data", ("data/*",)),
    ("shared layers", ("models/__init__.py", "models/attention.py", "models/patch_embed.py", "models/init.py",
                       "models/grad_checkpoint.py", "models/optim.py", "models/checkpointing.py",
                       "models/distributed.py")),
    ("runs", ("models/run.py",)),
    ("model families", ("models/recognition/*", "models/diffusion/*", "models/metrics/*")),
    ("Lightning modules", ("models/*/*_module.py",)),
    ("generation", ("models/diffusion/generate.py", "models/diffusion/factorized.py")),
    ("callbacks", ("models/callbacks/*",)),
    ("entry points", ("train.py", "eval.py", "scripts/*")),
)
LAYER_NAMES = [name for name, _ in LAYERS]


def project_files(root: Path = ROOT) -> list[Path]:
    """Every Python file the layers govern, relative to ``root``."""
    files = [*root.glob("data/**/*.py"), *root.glob("models/**/*.py"), *root.glob("scripts/**/*.py"),
             root / "train.py", root / "eval.py"]
    return sorted(path.relative_to(root) for path in files if path.is_file())


def module_name(path: Path) -> str:
    """``models/diffusion/dit.py`` -> ``models.diffusion.dit``; a package's ``__init__.py`` is the package."""
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(path: Path) -> str | None:
    """The layer of a file (the longest matching pattern wins), or None when no pattern matches."""
    matches = [(len(pattern), name) for name, patterns in LAYERS for pattern in patterns
               if fnmatch(path.as_posix(), pattern)]
    return max(matches)[1] if matches else None


def imports_of(path: Path, modules: dict[str, Path], root: Path = ROOT) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a project module in ``path``, at any depth (functions included).

    ``from package import name`` counts as an import of ``package.name`` when that is a module, else of
    ``package``. A project import that resolves to no module is returned as is, for the caller to report.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse((root / path).read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found += [(node.lineno, target) for target in targets if target.split(".")[0] in PACKAGES]
    return found


def import_graph(root: Path = ROOT) -> tuple[dict[str, Path], dict[str, list[tuple[int, str]]]]:
    """The project's modules (name -> file) and, for each, the project modules it imports with their lines."""
    modules = {module_name(path): path for path in project_files(root)}
    return modules, {name: imports_of(path, modules, root) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (module -> modules it imports): its strongly connected components of more than
    one module, or of one module that imports itself (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_problems(root: Path = ROOT) -> list[str]:
    """Every broken rule, one line each: a file in no layer, an import of a module that does not exist, an import
    from a lower layer to a higher one, and every import that ties a circle."""
    modules, imports = import_graph(root)
    problems = [f"{path}: in no layer; add its folder or file to LAYERS (tests/test_layers.py) and docs/design.md"
                for path in modules.values() if layer_of(path) is None]
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, found in imports.items():
        path = modules[name]
        for line, target in found:
            if target not in modules:
                problems.append(f"{path}:{line}: imports {target}, which is no module of the project")
                continue
            graph[name].add(target)
            here, there = layer_of(path), layer_of(modules[target])
            if here and there and LAYER_NAMES.index(there) > LAYER_NAMES.index(here):
                problems.append(f"{path}:{line}: imports {target} ({modules[target]}, layer '{there}') from the "
                                f"lower layer '{here}'")
    for circle in circles(graph):
        ties = [f"{modules[name]}:{line} -> {target}" for name in circle
                for line, target in sorted(set(imports[name])) if target in circle]
        problems.append(f"import circle of {', '.join(circle)}: {'; '.join(ties)}")
    return problems


def test_every_import_runs_down_the_layers_and_none_closes_a_circle():
    problems = layer_problems()
    assert not problems, "\n".join(problems)


def test_the_layers_are_in_docs_design_md_in_this_order():
    text = (ROOT / "docs" / "design.md").read_text()
    positions = [text.find(f"**{name}**:") for name in LAYER_NAMES]
    assert -1 not in positions, [name for name, at in zip(LAYER_NAMES, positions) if at == -1]
    assert positions == sorted(positions)


BAD = {
    "data/files.py": "def helper():\n    from models.run import load_run  # a lazy import counts\n",
    "data/a.py": "from data import b\n",
    "data/b.py": "import data.a\n",
    "models/run.py": "from models.gone import nothing\n",
}


@pytest.fixture
def bad_tree(tmp_path) -> Path:
    for name, text in BAD.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "data" / "__init__.py").write_text("")
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "train.py").write_text("")
    (tmp_path / "eval.py").write_text("")
    (tmp_path / "models" / "stray.py").write_text("")
    return tmp_path


def test_the_check_names_each_upward_import_circle_missing_module_and_unplaced_file(bad_tree):
    problems = layer_problems(bad_tree)
    assert any(p.startswith("data/files.py:2: imports models.run") and "lower layer 'files'" in p for p in problems)
    assert any(p.startswith("import circle of data.a, data.b") and "data/a.py:1 -> data.b" in p
               and "data/b.py:1 -> data.a" in p for p in problems)
    assert any(p.startswith("models/run.py:1: imports models.gone, which is no module") for p in problems)
    assert any(p.startswith("models/stray.py: in no layer") for p in problems)
    assert len(problems) == 4, problems
