"""`spark-submit jobs/NAME.py` puts jobs/ first on sys.path, and `python benchmarks/NAME.py`
benchmarks/: no module there may shadow the standard library (a jobs/select.py once broke every
spark-submit through `selectors`)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("folder", ["jobs", "benchmarks"])
def test_no_script_folder_module_shadows_the_standard_library(folder):
    where = ROOT / folder
    names = {p.stem for p in where.glob("*.py")} | {p.name for p in where.iterdir() if p.is_dir()}
    assert not names & set(sys.stdlib_module_names)
