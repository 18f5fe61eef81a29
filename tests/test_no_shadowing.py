"""`spark-submit jobs/NAME.py` puts jobs/ first on sys.path: no module there may shadow the
standard library (a jobs/select.py once broke every spark-submit through `selectors`)."""

import sys
from pathlib import Path

JOBS = Path(__file__).resolve().parent.parent / "jobs"


def test_no_job_module_shadows_the_standard_library():
    names = {p.stem for p in JOBS.glob("*.py")} | {p.name for p in JOBS.iterdir() if p.is_dir()}
    assert not names & set(sys.stdlib_module_names)
