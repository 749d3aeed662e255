"""The import layers hold, and no module imports itself back through others.

Ground floor: the taxonomy, text normalisation and option definitions import nothing of heichan. Above it the model
(tagger interface, backends, segmenter, article result, loading). Above that corpus tooling,
training, the service and batch, which never import each other except training → corpus
tooling. The command line is on top. Imports inside functions count too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import heichan

ROOT = Path(heichan.__file__).resolve().parent.parent
FOLDERS = {
    "heichan": "heichan",
    "model": "heichan.model",
    "labels": "heichan.labels",
    "training": "heichan.training",
    "service": "heichan.service",
    "batch": "heichan.batch",
}
GROUND = {"heichan.labels", "heichan.labels.taxonomy", "heichan.model.text", "heichan.options"}
ALLOWED = {  # layer -> layers it may import
    "ground": {"ground"},
    "model": {"ground", "model"},
    "corpus": {"ground", "model", "corpus"},
    "training": {"ground", "model", "corpus", "training"},
    "service": {"ground", "model", "service"},
    "batch": {"ground", "model", "batch"},
    "cli": {"ground", "model", "corpus", "training", "service", "batch", "cli"},
}


def layer(module: str) -> str:
    if module in GROUND:
        return "ground"
    part = module.split(".")[1] if module.count(".") else "cli"
    return {"model": "model", "labels": "corpus", "training": "training", "service": "service", "batch": "batch"}.get(
        part, "cli"
    )


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def imports(module: str, path: Path) -> set[str]:
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("heichan"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("heichan"):
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
    known = modules()
    return {m for m in out if m in known and m != module}


def test_every_import_goes_down_or_sideways_within_its_layer():
    bad = []
    for module, path in modules().items():
        for target in imports(module, path):
            if layer(target) not in ALLOWED[layer(module)]:
                bad.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: imports(m, p) for m, p in modules().items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1 and not m.startswith(t + "."):  # a package importing its own module is not a cycle
                cycles.append(" -> ".join(stack[stack.index(t) :] + [t]) if t in stack else f"{m} -> {t}")
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("name", sorted(set(FOLDERS) - {"heichan"}))
def test_the_folders_are_importable_only_inside_the_heichan_namespace(name, tmp_path):
    code = f"import heichan.{name}\ntry:\n    import {name}\nexcept ImportError:\n    print('refused')"
    for cwd in (tmp_path, ROOT):  # installed, and from a source checkout
        out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "refused", out.stderr


def test_no_sys_path_edits():
    offenders = [
        str(p)
        for p in ROOT.glob("*/*.py")
        if "sys.path" in p.read_text(encoding="utf-8")
        and p.parent.name in (*FOLDERS, "bench", "tests")
        and p.name != "test_layers.py"
    ]
    assert not offenders
