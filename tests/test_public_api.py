"""The declared API: every package's `__all__`, the README's imports after `import mi_keras`,
and every ```python example in mi_keras's public docstrings, run as written (at tiny size)."""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import mi_keras
import pipeline

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# Examples that cannot run here, each saying so in its own text.
NOT_RUNNABLE = {
    "mi_keras.distributed_fit.DistributedFit": "needs a multi-worker cluster (TF_CONFIG naming several hosts)",
    "mi_keras.distribution.multi_worker_strategy": "needs a multi-worker cluster (TF_CONFIG naming several hosts)",
}


def packages(root) -> list[str]:
    found = [root.__name__]
    found += [info.name for info in pkgutil.walk_packages(root.__path__, f"{root.__name__}.") if info.ispkg]
    return found


@pytest.mark.parametrize("name", packages(mi_keras) + packages(pipeline))
def test_every_package_declares_all_and_each_name_exists(name):
    package = importlib.import_module(name)
    declared = getattr(package, "__all__", None)
    assert declared is not None, f"{name}/__init__.py has no __all__"
    assert len(declared) == len(set(declared)), f"{name}.__all__ repeats a name"
    missing = [entry for entry in declared if not hasattr(package, entry)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def readme_references() -> tuple[list[str], list[str]]:
    """The README's python import lines, and the dotted ``mi_keras.x.y`` names it mentions
    (not those run as ``python -m``: a command names a module, not an attribute)."""
    readme = (REPO_ROOT / "README.md").read_text()
    imports = sorted(set(re.findall(r"^(?:from mi_keras[\w.]* import [\w, ]+|import mi_keras[\w.]*)$", readme, re.M)))
    dotted = sorted(set(re.findall(r"(?<!-m )(?<![\w/.])(mi_keras(?:\.\w+)+)", readme)))
    return imports, dotted


def test_the_readme_imports_and_names_work_after_import_mi_keras_alone():
    imports, dotted = readme_references()
    assert imports and dotted, "the README's imports were not found: update readme_references"
    script = (
        "import functools, json, sys\n"
        "import mi_keras\n"
        "missing = []\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        functools.reduce(getattr, name.split('.')[1:], mi_keras)\n"
        "    except AttributeError:\n"
        "        missing.append(name)\n"
        f"{chr(10).join(imports)}\n"
        "print(json.dumps(missing))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script, json.dumps(dotted)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads(process.stdout.splitlines()[-1]) == []


def docstring_examples() -> dict[str, str]:
    """``{"module.Qualified.name": code}`` for every ```python block of a public docstring."""
    examples = {}
    for path in sorted((REPO_ROOT / "mi_keras").rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for node, name in _public_nodes(tree, module):
            for index, block in enumerate(EXAMPLE_BLOCK.findall(ast.get_docstring(node) or "")):
                examples[name if index == 0 else f"{name}#{index + 1}"] = block
    return examples


def _public_nodes(node, prefix):
    yield node, prefix
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef)) and not child.name.startswith("_"):
            yield from _public_nodes(child, f"{prefix}.{child.name}")


EXAMPLES = docstring_examples()


def test_examples_are_found_and_the_skipped_ones_exist():
    assert len(EXAMPLES) > 40
    assert set(NOT_RUNNABLE) <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_docstring_example_runs(name, tmp_path, monkeypatch):
    code = compile(EXAMPLES[name], f"<example {name}>", "exec")  # even a skipped one must parse
    if name in NOT_RUNNABLE:
        pytest.skip(NOT_RUNNABLE[name])
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    exec(code, {"__name__": f"example_{name}"})
