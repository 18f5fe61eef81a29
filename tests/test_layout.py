"""The shape of the distribution: one top-level import name, and curation apart from training,
evaluation and the mini web (as open_clip keeps open_clip_train apart from open_clip)."""

import ast
import importlib.metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CURATION = [
    "schemas",
    *(f"pipeline/{d}" for d in ("extract", "filters", "download", "score", "select", "docs")),
]
APART = ("vlcurate.pipeline.train", "vlcurate.pipeline.icl", "vlcurate.miniweb")


def test_the_distribution_has_one_top_level_name():
    mapped = importlib.metadata.packages_distributions()
    ours = sorted(name for name, dists in mapped.items() if "vlcurate" in dists)
    assert ours == ["vlcurate"]


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_curation_never_imports_training_evaluation_or_the_mini_web():
    files = [*(ROOT / "pipeline").glob("*.py")]
    for folder in CURATION:
        files += (ROOT / folder).rglob("*.py")
    offenders = {
        str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f) if m.startswith(APART))
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_the_wheel_holds_every_module_and_data_file(tmp_path):
    """A non-editable install (a Docker image, a cluster's executors) gets the whole package.
    Built from a copy of the sources, so no stale build/ folder can fill the gaps."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"
    for name in ("pipeline", "jobs", "schemas", "miniweb", "recipes"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheel_args = ["-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [sys.executable, *wheel_args, "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"vlcurate/{p.relative_to(ROOT)}"
        for folder in ("pipeline", "jobs", "schemas", "miniweb")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".json") and "__pycache__" not in p.parts
    }
    expected |= {f"vlcurate/recipes/{p.name}" for p in (ROOT / "recipes").glob("*.yaml")}
    assert sorted(expected - names) == []
    assert sorted(n for n in names - expected if n.endswith(".py")) == []  # nothing stale


# Data tables (word lists, sentence templates) are exempt from the module size rule.
DATA_MODULES = {"pipeline/docs/words.py", "miniweb/text.py"}


def test_small_pieces():
    """No library module over 300 lines, no jobs/ file over 120, no function over 60."""
    too_big = []
    for folder in ("pipeline", "schemas", "miniweb", "jobs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            text = path.read_text()
            limit = 120 if folder == "jobs" else 300
            if text.count("\n") > limit and name not in DATA_MODULES:
                too_big.append(f"{name}: {text.count(chr(10))} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    if node.end_lineno - node.lineno + 1 > 60:
                        too_big.append(f"{name}:{node.lineno} {node.name}")
    assert too_big == []
