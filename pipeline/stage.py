"""The one shape of every stage, and the runner that gives each the same bookkeeping.

A stage says four things: its units of work (:meth:`Stage.units`: input files, shards), what in
its settings decides its outputs (:meth:`Stage.settings`), how to process one unit
(:meth:`Stage.process`, writing every output under a temporary name and renaming it when whole,
see :func:`vlcurate.pipeline.storage.atomic_open`, or refusing a unit whose input is not whole,
with a reason), and, optionally, a pass over the whole corpus before the units
(:meth:`Stage.prepare`: filter's dedup, the docs' URL counts, select's plan) and fields of its
own for ``stats.json`` (:meth:`Stage.finish`).

:func:`run_stage` does the rest, in this order, the same way for every stage:

1. refuse an output that is a file, and an output folder holding units done with other settings
   (every done marker carries a digest of them), before anything is written; a stage that is
   cheap to redo (``rebuild_on_change``) rebuilds its whole output instead;
2. delete what a killed run left in the stage's folders: its temporaries (``*.tmp-*``), or on
   an object store its unfinished multipart uploads (one listing for all the folders);
3. run the corpus-wide pass;
4. give the units without a done marker to an executor (:mod:`vlcurate.pipeline.executors`),
   which calls :func:`run_units` on them: the stage processes each (a unit it refuses is
   counted with its reason and gets no marker), and the done marker
   ``_done/NAME.json`` (the unit's stats and the settings digest) is written last (on an object
   store once the unit's uploads, finished in threads while the next unit runs, have completed:
   :mod:`vlcurate.pipeline.uploads`);
5. merge every unit's stats, checked ``in == kept + sum(dropped)``, add the stage's own fields
   and write ``stats.json``.

A killed run therefore resumes: it redoes only the units without a marker, and a marker never
exists for a partial output.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from vlcurate.pipeline import storage, uploads
from vlcurate.pipeline.stats import StageStats

DONE = "_done"
UNIT_REFUSED = "refused"  # the units tally: units whose input the stage refused


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``name`` is deterministic and unique in the stage (the done marker's
    name), ``input`` what :meth:`Stage.process` reads."""

    name: str
    input: str


class SettingsMismatch(ValueError):
    """The output folder holds units done with other settings: mixing them would be silent."""


class OutputError(ValueError):
    """An output that cannot be a stage's folder (a file, say): raised before any work."""


class Stage:
    """Subclasses set ``name`` and ``output`` and implement :meth:`units` and :meth:`process`."""

    name: ClassVar[str]
    output: str
    folders: ClassVar[tuple[str, ...]] = ()  # subfolders of output that get temporaries
    rebuild_on_change: ClassVar[bool] = False  # other settings: rebuild rather than refuse

    def settings(self) -> dict:
        """What decides the outputs (not how fast they come): kept, digested, in each marker."""
        return {}

    def units(self) -> list[Unit]:
        raise NotImplementedError

    def prepare(self, units: list[Unit], todo: list[Unit]) -> None:
        """The corpus-wide pass, before any unit is processed (``todo``: those not done)."""

    def process(self, unit: Unit, device: str = "cpu") -> StageStats | str:
        """The unit's stats, or the reason to refuse its input (a truncated shard, say)."""
        raise NotImplementedError

    def process_many(self, units: list[Unit], device: str = "cpu") -> Iterator[StageStats | str]:
        """One unit after the other; a stage whose units share costly set-up (a DataLoader's
        worker processes) overrides this and yields each unit's result as it finishes."""
        for unit in units:
            yield self.process(unit, device)

    def finish(self, stats: StageStats) -> dict:
        """The stage's own fields for ``stats.json`` (settings, models, counts)."""
        return {}


def digest(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def marker_path(stage: Stage, unit: Unit) -> str:
    return storage.join(stage.output, DONE, f"{unit.name}.json")


def read_marker(stage: Stage, unit: Unit) -> dict | None:
    try:  # one request on an object store, not an existence check and then a read
        return json.loads(storage.read_text(marker_path(stage, unit)))
    except FileNotFoundError:
        return None


def _write_marker(stage: Stage, unit: Unit, stats: StageStats, background=None) -> dict:
    """The unit's done marker, written after its outputs: with ``background`` (an
    :class:`~vlcurate.pipeline.uploads.Uploads`), once their uploads have completed."""
    marker = {
        "stage": stage.name,
        "unit": unit.name,
        "input": unit.input,
        "settings_digest": digest(stage.settings()),
        "settings": stage.settings(),
        "stats": stats.to_dict(),
    }
    text = json.dumps(marker, indent=1) + "\n"
    if background is None:
        storage.write_text_atomic(marker_path(stage, unit), text)
    else:
        background.after(partial(storage.write_text_atomic, marker_path(stage, unit), text))
    return marker


def run_unit(stage: Stage, unit: Unit, device: str = "cpu") -> dict:
    """Process and mark one unit (its uploads complete); a refused one's ``{"refused": ...}``."""
    (marker,) = run_units(stage, [unit], device)
    return marker


def run_units(stage: Stage, units: list[Unit], device: str = "cpu") -> Iterator[dict]:
    """What an executor runs where the work is done: each unit processed and marked, yielding
    its marker (or ``{"unit": name, "input": ..., "refused": reason}``) as it finishes. On an
    object store a unit's uploads complete while the next unit is processed
    (:mod:`vlcurate.pipeline.uploads`), its marker written after them, and this ends only when
    every upload has completed."""
    with uploads.in_background() as background:
        for unit, result in zip(units, stage.process_many(units, device), strict=True):
            if isinstance(result, str):
                yield {"unit": unit.name, "input": unit.input, "refused": result}
                continue
            result.check()
            yield _write_marker(stage, unit, result, background)


def check_output(stage: Stage) -> None:
    if storage.isfile(storage.absolute(stage.output)):
        raise OutputError(f"{stage.name}: the output {stage.output} is a file, not a folder")


def plan(stage: Stage, units: list[Unit]) -> tuple[dict[str, dict], list[Unit]]:
    """The markers of the done units, and the units left to do. Raises SettingsMismatch (or,
    for a ``rebuild_on_change`` stage, empties the output) when a marker has other settings."""
    wanted = digest(stage.settings())
    done, todo, other = {}, [], []
    present = storage.names(storage.join(stage.output, DONE), ".json")  # one listing
    for unit in units:
        marker = read_marker(stage, unit) if unit.name in present else None
        if marker is None:
            todo.append(unit)
        elif marker.get("settings_digest") != wanted:
            other.append(marker)
        else:
            done[unit.name] = marker
    if other and stage.rebuild_on_change:
        storage.remove_tree(stage.output)
        return {}, list(units)
    if other:
        changed = _changed(other[0].get("settings", {}), stage.settings())
        raise SettingsMismatch(
            f"{stage.output} holds {len(other)} {stage.name} unit(s) done with other settings "
            f"({changed}): write into a new output folder, or delete this one"
        )
    return done, todo


def _changed(old: dict, new: dict) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "unknown"


def merge(stage: Stage, markers: Iterable[dict]) -> StageStats:
    merged = StageStats(stage.name)
    units = merged.tally("units")
    for marker in markers:
        if "refused" in marker:
            units.drop(marker["refused"])
            merged.counter("refused_units")[marker["unit"]] += 1
        else:
            units.keep()
            merged.merge(StageStats.from_dict(marker["stats"]))
    return merged


def _remove_temporaries(stage: Stage) -> None:
    storage.remove_what_killed_writers_left(stage.output, (DONE, *stage.folders))


def run_stage(stage: Stage, executor=None) -> dict:
    """Run ``stage`` to the end with ``executor`` (default: this process); returns the summary
    also written to ``OUTPUT/stats.json``."""
    from vlcurate.pipeline.executors import LocalExecutor

    executor = executor or LocalExecutor()
    check_output(stage)
    units = stage.units()
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        raise ValueError(f"{stage.name}: two units share a name")
    done, todo = plan(stage, units)
    _remove_temporaries(stage)
    stage.prepare(units, todo)
    results = list(done.values())
    if todo:
        results += executor.run(stage, todo)
        _remove_temporaries(stage)  # a lost Spark task's, now that every task has finished
    merged = merge(stage, results)
    summary = merged.to_dict(
        **stage.finish(merged), units_resumed=len(done), settings_digest=digest(stage.settings())
    )
    storage.write_text_atomic(
        storage.join(stage.output, "stats.json"), json.dumps(summary, indent=2) + "\n"
    )
    return summary
