"""One top-level import name, ``vlcurate``: the folders at the repository root (``pipeline/``,
``jobs/``, ``schemas/``, ``miniweb/``) install as ``vlcurate.pipeline``, ``vlcurate.jobs``, ...,
so nothing of ours shadows another job's ``schemas`` or ``jobs`` on a shared Spark executor.
Everything else about the distribution is in setup.cfg.

The extract stage's compiled document pass (``pipeline/extract/_dom.pyx``) is built against
lexbor's C sources, which ``make lexbor`` unpacks into ``build/lexbor/`` from the pinned
selectolax source distribution (lexbor is not packaged by Debian 12). Without them, the package
installs without the extension and the extract stage takes its Python path.
"""

import os
from pathlib import Path

from setuptools import Extension, find_packages, setup

ROOTS = ("pipeline", "jobs", "schemas", "miniweb")
LEXBOR = Path(os.environ.get("VLCURATE_LEXBOR", "build/lexbor"))

packages = [f"vlcurate.{root}" for root in ROOTS]
packages += [f"vlcurate.{root}.{sub}" for root in ROOTS for sub in find_packages(root)]
package_dir = {f"vlcurate.{root}": root for root in ROOTS}
# The bundled recipes travel as data beside the code (pipeline/recipe.py finds them there).
packages.append("vlcurate.recipes")
package_dir["vlcurate.recipes"] = "recipes"


def lexbor_sources(root: Path) -> list[str]:
    """lexbor's C files, with the POSIX port only."""
    files = sorted(str(p) for p in (root / "source" / "lexbor").rglob("*.c"))
    return [f for f in files if "/ports/" not in f or "/ports/posix/" in f]


def extensions() -> list:
    from Cython.Build import cythonize

    urls = Extension("vlcurate.pipeline.extract._urls", ["pipeline/extract/_urls.pyx"])
    match = Extension(
        "vlcurate.pipeline.filters._metaclip_match", ["pipeline/filters/_metaclip_match.pyx"]
    )
    if not (LEXBOR / "source" / "lexbor" / "html" / "html.h").exists():
        print(f"setup.py: no lexbor sources in {LEXBOR}; building without the compiled pass")
        return cythonize([urls, match], quiet=True)
    dom = Extension(
        "vlcurate.pipeline.extract._dom",
        ["pipeline/extract/_dom.pyx", *lexbor_sources(LEXBOR)],
        include_dirs=[str(LEXBOR / "source")],
        define_macros=[("LEXBOR_STATIC", None)],
        extra_compile_args=["-O3", "-std=c99", "-Wno-unused-function", "-g0"],
    )
    return cythonize([urls, match, dom], quiet=True)


setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "vlcurate.recipes": ["*.yaml", "*.md"],
        "vlcurate.pipeline.score": ["model_configs/*.json"],
    },
    ext_modules=extensions(),
)
