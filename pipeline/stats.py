"""Accounting shared by every stage: ``in == kept + sum(dropped.values())``, always."""

import json
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Tally:
    """Counts of one unit (records, files, images): each one in is kept or dropped for a reason."""

    seen: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def keep(self, n: int = 1) -> None:
        self.seen += n
        self.kept += n

    def drop(self, reason: str, n: int = 1) -> None:
        self.seen += n
        self.dropped[reason] += n

    def merge(self, other: "Tally") -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.dropped.update(other.dropped)

    def check(self, name: str = "") -> None:
        total = self.kept + sum(self.dropped.values())
        if self.seen != total:
            raise AssertionError(
                f"accounting broken{' for ' + name if name else ''}: in={self.seen} but "
                f"kept + dropped = {self.kept} + {sum(self.dropped.values())}"
            )

    def to_dict(self) -> dict:
        return {"in": self.seen, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}

    @classmethod
    def from_dict(cls, d: dict) -> "Tally":
        return cls(d["in"], d["kept"], Counter(d["dropped"]))


@dataclass
class StageStats:
    """A stage's ``stats.json``: the main tally, named sub-tallies, and extra counters."""

    stage: str
    main: Tally = field(default_factory=Tally)
    tallies: dict[str, Tally] = field(default_factory=dict)  # e.g. files, images
    counters: dict[str, Counter] = field(default_factory=dict)  # e.g. charset_source
    extra: Counter = field(default_factory=Counter)  # plain numbers: pairs, docs, ...

    def tally(self, name: str) -> Tally:
        return self.tallies.setdefault(name, Tally())

    def counter(self, name: str) -> Counter:
        return self.counters.setdefault(name, Counter())

    def merge(self, other: "StageStats") -> None:
        self.main.merge(other.main)
        for name, t in other.tallies.items():
            self.tally(name).merge(t)
        for name, c in other.counters.items():
            self.counter(name).update(c)
        self.extra.update(other.extra)

    def check(self) -> None:
        self.main.check(self.stage)
        for name, t in self.tallies.items():
            t.check(f"{self.stage}.{name}")

    def to_dict(self, **fields) -> dict:
        self.check()
        d = {"stage": self.stage, **self.main.to_dict()}
        d.update({name: t.to_dict() for name, t in sorted(self.tallies.items())})
        d.update({name: dict(sorted(c.items())) for name, c in sorted(self.counters.items())})
        d.update(sorted(self.extra.items()))
        d.update(fields)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StageStats":
        stats = cls(d["stage"], Tally.from_dict(d))
        for key, value in d.items():
            if key in ("stage", "in", "kept", "dropped") or key.startswith("_"):
                continue
            if isinstance(value, dict) and {"in", "kept", "dropped"} <= value.keys():
                stats.tallies[key] = Tally.from_dict(value)
            elif isinstance(value, dict):
                stats.counters[key] = Counter(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                stats.extra[key] = value
        return stats

    def to_json(self, **fields) -> str:
        return json.dumps(self.to_dict(**fields), indent=2, sort_keys=False) + "\n"


def stage_table(rows: list[tuple[str, str, float]]) -> str:
    """``(stage, folder, seconds)`` rows as a table of what went in and was kept, read from
    each folder's ``stats.json``."""
    import json

    from vlcurate.pipeline import storage

    lines = [f"  {'stage':<9} {'in':>8} {'kept':>8} {'seconds':>8}  folder"]
    for stage, folder, seconds in rows:
        found = storage.join(folder, "stats.json")  # a path or URL (s3://)
        stats = json.loads(storage.read_text(found)) if storage.exists(found) else {}
        shown = f"{stats.get('in', ''):>8} {stats.get('kept', ''):>8} {seconds:>8.1f}"
        lines.append(f"  {stage:<9} {shown}  {folder}")
    return "\n".join(lines)
