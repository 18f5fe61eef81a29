"""What the benchmark scripts share: paths, the Spark session, timing and the report's parts.

The scripts run as ``python benchmarks/<name>.py``, so this folder is on ``sys.path`` and they
import this module as ``common``.
"""

import json
import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "tests" / "data" / "warc"
WORK = ROOT / "benchmarks" / "_work"
SPARK_CORES = 2


# --- measurements ------------------------------------------------------------------------------


def fresh_dir(name: str) -> str:
    """An emptied folder ``name`` under ``WORK`` (extract skips files whose done marker exists)."""
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def fastest(measure, repeat: int):
    """Run ``measure`` ``repeat`` times; keep the fastest row (the least ``seconds``)."""
    return min((measure() for _ in range(repeat)), key=lambda row: row.seconds)


# --- Spark -------------------------------------------------------------------------------------


def spark_master() -> str:
    return f"local[{SPARK_CORES}]"


def start_spark():
    """Start Spark before any clock runs: start-up is not part of the measure."""
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from vlcurate.jobs import spark as spark_util

    return spark_util.session("bench", spark_master())


# --- report ------------------------------------------------------------------------------------


def cpu_cell(cpu_seconds: float | None) -> str:
    """The ``cpu s`` cell of a row: ``-`` where it was not measured (Spark)."""
    return "-" if cpu_seconds is None else f"{cpu_seconds:.2f}"


def target_lines(checks: list[dict], width: int, value_width: int, rule: int) -> list[str]:
    """A blank line, then the targets table: each check's ``target``, ``value``, ``goal`` and
    whether it was ``met``; values are written with the check's ``format`` (``{:,.0f}`` if none).
    """
    lines = ["", f"{'target':<{width}} {'measured':>{value_width}} {'goal':>8}  status", "-" * rule]
    for check in checks:
        fmt = check.get("format", "{:,.0f}")
        value, goal = fmt.format(check["value"]), fmt.format(check["goal"])
        status = "met" if check["met"] else "NOT MET"
        lines.append(f"{check['target']:<{width}} {value:>{value_width}} {goal:>8}  {status}")
    return lines


def load_line() -> str:
    """The CPU count and load average, printed under the table."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)"


def write_json(path: str, args, sections: dict) -> None:
    """The settings, the machine, then ``sections``, as JSON in ``path``."""
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }
    result = {"settings": vars(args), "machine": machine, **sections}
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
