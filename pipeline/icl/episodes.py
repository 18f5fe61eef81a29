"""Few-shot episodes after Frozen's protocol (Tsimpoukelli et al., 2021).

An *episode* is a support set of named images followed by a query image; the model must name the
query (open-ended miniImageNet) or answer a question about the named object in it (fast-VQA).

Sources (:mod:`vlcurate.pipeline.icl.sources`; Frozen's released tasks:
:mod:`vlcurate.pipeline.icl.frozen_tasks`) yield labelled items ``{"ref": str, "label": str,
"attributes": dict}``. :func:`build_episodes` turns items into episodes, :func:`prompt_sequence`
into the interleaved prompt, and :func:`exact_match` scores a generated answer as Frozen does
(exact match after normalisation).

Prompt template (the support line is always ``"This is a {name}."``, never ``"an"``: the query
line ends in ``"This is a"``, so an article chosen by the answer would give it away)::

    [induction]                                  e.g. "Answer with dax or blicket."
    {"image": support_ref}, "This is a dax."     one pair per support image, in order
    ...                                          the support set, shown repeats + 1 times
    {"image": query_ref}, "Q: What is this? A: This is a"          open-ended
    {"image": query_ref}, "Q: What colour is the dax? A:"          fast-VQA
"""

import json
import random
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from vlcurate.pipeline.config import Config, ConfigError

NONSENSE = (
    "dax",
    "blicket",
    "slation",
    "perpo",
    "shously",
    "wug",
    "zorb",
    "toma",
    "fep",
    "kiki",
    "glorp",
    "mib",
)
ATTRIBUTE_WORDS = {"color": "colour"}  # attribute field -> the word the question uses
NAMES = ("nonsense", "real")


@dataclass
class EpisodeConfig(Config):
    """How episodes are drawn; the fields are Frozen's settings."""

    section: ClassVar[str] = "episodes"
    ways: int = field(
        default=2, metadata={"help": "classes per episode (Frozen: 2 or 5)", "min": 2}
    )
    names: str = field(
        default="nonsense",
        metadata={"help": "'nonsense' words or 'real' labels", "choices": NAMES},
    )
    task_induction: bool = field(default=False, metadata={"help": "an instruction sentence first"})
    inner_shots: int = field(
        default=1, metadata={"help": "distinct support images per class", "min": 1}
    )
    repeats: int = field(
        default=0, metadata={"help": "extra showings of the support set", "min": 0, "max": 5}
    )
    episodes: int = field(default=100, metadata={"help": "how many episodes to draw", "min": 0})
    seed: int = field(
        default=0, metadata={"help": "the same seed gives the same episodes", "min": 0}
    )
    fast_vqa: bool = field(default=False, metadata={"help": "ask about an attribute instead"})
    attribute: str = field(default="color", metadata={"help": "fast-VQA: the attribute asked"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonsense_ways(self.section, [self.ways], self.names)


def check_nonsense_ways(section: str, ways: list[int], names: str) -> None:
    """Nonsense names run out at ``len(NONSENSE)`` ways: ConfigError past that."""
    if names == "nonsense" and any(w > len(NONSENSE) for w in ways):
        too_many = max(ways)
        raise ConfigError(
            f"{section}.ways: {too_many} is not allowed (at most {len(NONSENSE)} ways with "
            "nonsense names)"
        )


@dataclass(slots=True)
class Episode:
    """One few-shot episode; ``support`` is ``[{"ref", "name"}]`` in presentation order (repeats
    included), ``candidates`` the bound names in class order, ``query_name`` the query's name."""

    id: str
    settings: dict
    support: list[dict]
    query: str
    query_name: str
    answer: str
    candidates: list[str]
    induction: str | None = None
    question: str | None = None

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> "Episode":
        return cls(**json.loads(line))


def _or_list(words: list[str]) -> str:
    """``["dax", "blicket", "wug"]`` -> ``"dax, blicket or wug"``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _classes(source_items: Iterable[dict], config: EpisodeConfig) -> dict[str, list[dict]]:
    """The usable items by class label, each class sorted by ref, only the classes with at
    least ``inner_shots + 1`` images; ValueError when fewer than ``ways`` are left."""
    by_class: dict[str, list[dict]] = {}
    for item in source_items:
        if config.fast_vqa and item["attributes"].get(config.attribute) in (None, ""):
            continue
        by_class.setdefault(item["label"], []).append(item)
    usable = {c: v for c, v in sorted(by_class.items()) if len(v) >= config.inner_shots + 1}
    if len(usable) < config.ways:
        raise ValueError(
            f"{config.ways}-way episodes need {config.ways} classes with at least "
            f"{config.inner_shots + 1} images (inner_shots + 1); found {len(usable)}"
        )
    for items in usable.values():
        items.sort(key=lambda item: item["ref"])
    return usable


def _draw(rng: random.Random, by_class: dict[str, list[dict]], config: EpisodeConfig) -> tuple:
    """One episode's draw: ``(names, query class index, query item, support)``."""
    chosen = rng.sample(list(by_class), config.ways)
    names = rng.sample(NONSENSE, config.ways) if config.names == "nonsense" else chosen
    query_class = rng.randrange(config.ways)
    support = []
    for k, cls in enumerate(chosen):
        drawn = rng.sample(by_class[cls], config.inner_shots + (k == query_class))
        if k == query_class:
            query, drawn = drawn[0], drawn[1:]
        support += [{"ref": item["ref"], "name": names[k]} for item in drawn]
    rng.shuffle(support)
    return names, query_class, query, support


def _episode(index: int, draw: tuple, config: EpisodeConfig, settings: dict) -> Episode:
    """The drawn episode with its answer, and its question and instruction if asked for."""
    names, query_class, query, support = draw
    name = names[query_class]
    answer, question, induction = name, None, None
    if config.fast_vqa:
        word = ATTRIBUTE_WORDS.get(config.attribute, config.attribute)
        question = f"What {word} is the {name}?"
        answer = str(query["attributes"][config.attribute])
        if config.task_induction:
            induction = f"Answer with a {word}."
    elif config.task_induction:
        induction = f"Answer with {_or_list(list(names))}."
    return Episode(
        id=f"{config.seed}-{index}",
        settings=dict(settings),
        support=support * (config.repeats + 1),
        query=query["ref"],
        query_name=name,
        answer=answer,
        candidates=list(names),
        induction=induction,
        question=question,
    )


def build_episodes(source_items: Iterable[dict], config: EpisodeConfig) -> list[Episode]:
    """Draw ``config.episodes`` episodes; the same items (in any order) and seed give the same.

    Per episode: ``ways`` classes are drawn; each is bound to a name (nonsense words drawn afresh
    per episode, or the class label); the query class is drawn among them; ``inner_shots + 1``
    distinct images of the query class are drawn (the first is the query, so it is never in the
    support) and ``inner_shots`` of each other class; the support set is shuffled, then shown
    ``repeats + 1`` times in that same order. The answer is the query class's name.

    Fast-VQA (``config.fast_vqa``): only items whose ``attributes`` hold ``config.attribute`` are
    used; names bind to classes as above (e.g. nonsense names to shape kinds) and the question is
    ``"What {attribute word} is the {query name}?"`` (``color`` -> ``"colour"``), answered by the
    query item's attribute (``str``). The query shows the object of the bound class; that the
    attribute is unambiguous for it (one object of that class, or one colour) is the source's job.

    A class with fewer than ``inner_shots + 1`` images is skipped (it could not be the query
    class); fewer than ``ways`` classes left raises ``ValueError``.
    """
    by_class = _classes(source_items, config)
    rng = random.Random(config.seed)
    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "episodes"}
    return [
        _episode(index, _draw(rng, by_class, config), config, settings)
        for index in range(config.episodes)
    ]


def prompt_sequence(episode: Episode) -> list[str | dict]:
    """The interleaved prompt (texts and ``{"image": ref}``); the template is in the module doc."""
    sequence: list[str | dict] = [episode.induction] if episode.induction else []
    for shot in episode.support:
        sequence += [{"image": shot["ref"]}, f"This is a {shot['name']}."]
    sequence.append({"image": episode.query})
    if episode.question is None:
        sequence.append("Q: What is this? A: This is a")
    else:
        sequence.append(f"Q: {episode.question} A:")
    return sequence


def write_jsonl(episodes: Iterable[Episode], path) -> None:
    """One episode per line."""
    with open(path, "w") as f:
        for episode in episodes:
            f.write(episode.to_json() + "\n")


def read_jsonl(path) -> list[Episode]:
    with open(path) as f:
        return [Episode.from_json(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------
# Scoring

_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})
_ARTICLES = {"a", "an", "the"}


def normalise(answer: str) -> str:
    """Lower-case, punctuation to spaces, articles (a, an, the) dropped, spaces collapsed."""
    words = answer.lower().translate(_PUNCTUATION).split()
    return " ".join(w for w in words if w not in _ARTICLES)


def exact_match(prediction: str, answer: str) -> bool:
    """Frozen's open-ended score: equal after :func:`normalise`."""
    return normalise(prediction) == normalise(answer)
