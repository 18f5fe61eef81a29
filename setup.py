"""One top-level import name, ``vlcurate``: the folders at the repository root (``pipeline/``,
``jobs/``, ``schemas/``, ``miniweb/``) install as ``vlcurate.pipeline``, ``vlcurate.jobs``, ...,
so nothing of ours shadows another job's ``schemas`` or ``jobs`` on a shared Spark executor.
Everything else about the distribution is in setup.cfg."""

from setuptools import find_packages, setup

ROOTS = ("pipeline", "jobs", "schemas", "miniweb")

packages = [f"vlcurate.{root}" for root in ROOTS]
packages += [f"vlcurate.{root}.{sub}" for root in ROOTS for sub in find_packages(root)]
package_dir = {f"vlcurate.{root}": root for root in ROOTS}
# The bundled recipes travel as data beside the code (pipeline/recipe.py finds them there).
packages.append("vlcurate.recipes")
package_dir["vlcurate.recipes"] = "recipes"
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "vlcurate.recipes": ["*.yaml", "*.md"],
        "vlcurate.pipeline.score": ["model_configs/*.json"],
    },
)
