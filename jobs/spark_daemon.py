"""PySpark's worker daemon, started warm: ``spark.python.daemon.module`` (set by
:func:`vlcurate.jobs.spark.session`) runs this instead of ``pyspark.daemon``.

pyspark's daemon forks one Python worker per task slot and each worker imports what its tasks
need after the fork: for extract that is pyarrow, fsspec, selectolax/lexbor, fastwarc and the
compiled ``_dom``/``_urls`` passes, and pandas on the first parquet write: 0.5-0.8 s of CPU
per worker. Here they are imported once,
in the daemon, before it forks, and frozen out of the cyclic collector (:func:`gc.freeze`):
every worker starts with them loaded, shared copy-on-write, and the daemon's ``gc.collect()``
after each task walks only the objects the task left, not the ~90,000 that imports create (30-100
ms a task before). Nothing imported here starts a thread that the fork would lose in a harmful
state: numpy's OpenBLAS and pyarrow's jemalloc restart theirs in the child (``pthread_atfork``).

A module that fails to import is skipped: the workers then import it as usual, and the task
reports the error where it happens. The daemon itself is pyspark's, unchanged.
"""

import gc
import importlib

# What the extract stage's tasks import (the stage with the most, shortest tasks), including
# what pyarrow imports on the first table it builds (pandas, when installed: 0.3-0.6 s),
# and pyspark's own worker module. Stages that load models (score: torch) import after the fork.
WARM_MODULES = (
    "pyspark.worker",
    "vlcurate.pipeline.stage",
    "vlcurate.pipeline.extract.stage",
    "vlcurate.jobs.spark",
    "pyarrow.compute",
    "pandas",
    "pyarrow.pandas_compat",
    "fsspec.implementations.local",
    "fsspec.implementations.chained",
)


def warm(modules=WARM_MODULES) -> list[str]:
    """Import ``modules`` (skipping any that fail), then freeze everything alive out of the
    cyclic collector; returns the modules imported."""
    imported = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the worker imports it again and reports the error in its task
            continue
        imported.append(name)
    gc.collect()
    gc.freeze()
    return imported


if __name__ == "__main__":
    warm()
    from pyspark import daemon

    daemon.manager()
