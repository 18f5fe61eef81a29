"""Few-shot episodes after Frozen's protocol (Tsimpoukelli et al., 2021).

An *episode* is a support set of named images followed by a query image; the model must name the
query (open-ended miniImageNet) or answer a question about the named object in it (fast-VQA).

Sources yield labelled items ``{"ref": str, "label": str, "attributes": dict}``; a ``ref`` is a
file path or ``"shard.tar#key"`` and :func:`load_image` opens either. :func:`build_episodes` turns
items into episodes, :func:`prompt_sequence` into the interleaved prompt, and :func:`exact_match`
scores a generated answer as Frozen does (exact match after normalisation).

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
import re
import string
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

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
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
ATTRIBUTE_WORDS = {"color": "colour"}  # attribute field -> the word the question uses


# ---------------------------------------------------------------------------------------------
# Sources


def folder_source(path) -> Iterator[dict]:
    """One subfolder per class (``golden_retriever/`` -> label ``"golden retriever"``); every image
    file in it is an item. Folders and files are visited in sorted order."""
    for folder in sorted(p for p in Path(path).iterdir() if p.is_dir()):
        label = folder.name.replace("_", " ")
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in IMAGE_EXTENSIONS:
                yield {"ref": str(file), "label": label, "attributes": {}}


def shard_source(shards, label_field: str, attribute_fields: Iterable[str] = ()) -> Iterator[dict]:
    """Items of img2dataset/WebDataset shards: ``KEY.jpg`` + ``KEY.json``; the label is
    ``json[label_field]`` and ``attributes`` holds the ``attribute_fields`` present in the json.
    Samples without an image, a json or the label field are skipped. Refs are ``"{shard}#{key}"``.
    """
    import webdataset as wds

    urls = [shards] if isinstance(shards, str | Path) else list(shards)
    samples = wds.DataPipeline(
        wds.SimpleShardList([str(u) for u in urls]), wds.tarfile_to_samples()
    )
    fields = tuple(attribute_fields)
    for sample in samples:
        if "json" not in sample or not any(ext in sample for ext in ("jpg", "jpeg", "png", "webp")):
            continue
        meta = json.loads(sample["json"])
        if meta.get(label_field) in (None, ""):
            continue
        yield {
            "ref": f"{sample['__url__']}#{sample['__key__']}",
            "label": str(meta[label_field]),
            "attributes": {f: meta[f] for f in fields if f in meta},
        }


_FROZEN_NAME = re.compile(
    r"^(?P<task>.+?)_shots_(?P<shots>\d+)_ways_(?P<ways>\d+)_id_(?P<id>[^_]+)_"
    r"(?:image_(?P<position>\d+)|(?P<question>question))$"
)
_THIS_IS = re.compile(r"^\s*this is (?:an?|the)?\s*(?P<name>.+?)[\s.!?]*$", re.IGNORECASE)


def _frozen_questions(path: Path) -> dict[str, dict]:
    """``*_all_questions.json`` as {question id: question dict}; see :func:`frozen_source`."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]
    if isinstance(data, dict):  # {id: question}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}
    out = {}
    for position, entry in enumerate(data if isinstance(data, list) else []):
        if isinstance(entry, dict):
            qid = next((entry[k] for k in ("id", "question_id", "qid") if k in entry), position)
            out[str(qid)] = entry
    return out


def _first_text(entry: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _caption(entry: dict, position: int, rank: int) -> str | None:
    """The caption of support image ``position`` (its ``rank`` among the question's images)."""
    for key in (f"caption_{position}", f"text_{position}", f"image_{position}_caption"):
        if isinstance(entry.get(key), str):
            return entry[key]
    for key in ("captions", "texts", "support_captions"):
        value = entry.get(key)
        if isinstance(value, list) and rank < len(value) and isinstance(value[rank], str):
            return value[rank]
    return None


def frozen_source(folder) -> Iterator[dict]:
    """Items of Frozen's released tasks (``open_ended_mi``, ``real_name_mi``, ``fast_vqa``).

    Images are ``{task}_shots_{n}_ways_{m}_id_{x}_image_{i}.jpg`` (support image ``i`` of question
    ``x``) and ``{task}_shots_{n}_ways_{m}_id_{x}_question.jpg`` (its query); other files are
    ignored. ``attributes`` holds ``task``, ``shots``, ``ways``, ``id``, ``position`` (``i``, or
    ``"question"``) and, for queries, ``question`` when the json has one.

    The json layout is not documented beyond "dictionaries that define each question in terms of
    the constituent images, any corresponding text, and the correct answer", so the parser
    assumes, and tolerates anything else (a field it cannot find leaves the label ``""``):

    - ``{task}_shots_{n}_ways_{m}_all_questions.json`` (any ``*_all_questions.json`` whose name
      starts with the image's ``{task}_shots_{n}_ways_{m}``) holds a list of question dicts, a
      dict ``{id: question dict}``, or ``{"questions": [...]}``;
    - a question's id is ``id``, ``question_id`` or ``qid``, else its position in the list;
    - the query's label is ``answer`` (or ``answers``, first taken) and its question ``question``;
    - support image ``i``'s caption is ``caption_{i}`` / ``text_{i}`` / ``image_{i}_caption``, or
      the item of ``captions`` / ``texts`` / ``support_captions`` at the image's rank among the
      question's support images (so 0- and 1-based ``i`` both work); its label is the name in
      ``"This is a dax."`` (the whole caption if it has another form).
    """
    folder = Path(folder)
    tables = {
        p.name[: -len("_all_questions.json")]: _frozen_questions(p)
        for p in sorted(folder.glob("*_all_questions.json"))
    }
    parsed = []
    for file in sorted(folder.iterdir()):
        match = _FROZEN_NAME.match(file.stem)
        if match and file.suffix.lower() in IMAGE_EXTENSIONS:
            parsed.append((file, match))
    positions: dict[tuple, list[int]] = {}
    for _, m in parsed:
        if m["position"] is not None:
            key = (m["task"], m["shots"], m["ways"], m["id"])
            positions.setdefault(key, []).append(int(m["position"]))
    for file, m in parsed:
        prefix = f"{m['task']}_shots_{m['shots']}_ways_{m['ways']}"
        entry = tables.get(prefix, {}).get(m["id"], {})
        attributes = {
            "task": m["task"],
            "shots": int(m["shots"]),
            "ways": int(m["ways"]),
            "id": m["id"],
            "position": "question",
        }
        if m["question"]:
            label = _first_text(entry, ("answer", "answers")) or ""
            if (question := _first_text(entry, ("question",))) is not None:
                attributes["question"] = question
        else:
            position = int(m["position"])
            rank = sorted(positions[(m["task"], m["shots"], m["ways"], m["id"])]).index(position)
            attributes["position"] = position
            caption = _caption(entry, position, rank) or ""
            named = _THIS_IS.match(caption)
            label = named["name"] if named else caption.strip()
        yield {"ref": str(file), "label": label, "attributes": attributes}


def frozen_episodes(folder) -> tuple[list["Episode"], list[str]]:
    """Frozen's released questions as episodes, exactly as released (no drawing): the items of
    :func:`frozen_source` grouped by ``(task, shots, ways, id)``; the support images in the order
    of their position, each named by its caption's name; the query is the question image and the
    answer its label. ``fast_vqa`` tasks keep their question (a leading ``"Q:"`` and trailing
    ``"A:"`` taken off, since :func:`prompt_sequence` adds them); the others ask "What is this?".
    ``settings`` has ``task``, ``ways``, ``inner_shots``, ``repeats`` 0, ``task_induction``
    False, ``names`` (``real`` for ``real_name_*`` tasks) and ``fast_vqa``, so the episodes
    group into sets by :func:`vlcurate.pipeline.icl.evaluate.group_episodes`.

    Returns ``(episodes, notes)``; a question without a query image, a support image, an answer
    or (fast-VQA) a question is skipped and counted in ``notes``."""
    groups: dict[tuple, dict] = {}
    for item in frozen_source(folder):
        a = item["attributes"]
        group = groups.setdefault(
            (a["task"], a["shots"], a["ways"], a["id"]), {"support": [], "query": None}
        )
        if a["position"] == "question":
            group["query"] = item
        else:
            group["support"].append(item)
    episodes, skipped = [], {}
    for (task, shots, ways, qid), group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        query = group["query"]
        support = sorted(group["support"], key=lambda item: item["attributes"]["position"])
        fast_vqa = "vqa" in task
        question = (query or {}).get("attributes", {}).get("question")
        reason = (
            "no question image"
            if query is None
            else "no support image"
            if not support
            else "no answer"
            if not query["label"]
            else "a support image without a caption"
            if any(not i["label"] for i in support)
            else "no question"
            if fast_vqa and not question
            else None
        )
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        if fast_vqa:
            question = re.sub(r"^\s*Q:\s*|\s*A:\s*$", "", question).strip()
        names = list(dict.fromkeys(item["label"] for item in support))
        settings = {
            "task": task,
            "ways": ways,
            "inner_shots": shots,
            "repeats": 0,
            "task_induction": False,
            "fast_vqa": fast_vqa,
            "names": "real" if task.startswith("real_name") else "nonsense",
        }
        episodes.append(
            Episode(
                id=f"{task}-{shots}-{ways}-{qid}",
                settings=settings,
                support=[{"ref": i["ref"], "name": i["label"]} for i in support],
                query=query["ref"],
                query_name=query["label"] if not fast_vqa else "",
                answer=query["label"],
                candidates=names,
                question=question if fast_vqa else None,
            )
        )
    notes = [f"skipped {n} Frozen question(s): {reason}" for reason, n in sorted(skipped.items())]
    return episodes, notes


def load_image(ref: str):
    """The PIL image (RGB) of a ref: a file path, or ``"shard.tar#key"`` (``key.jpg``, ``.jpeg``,
    ``.png`` or ``.webp`` inside the tar)."""
    from PIL import Image

    shard, sep, key = ref.rpartition("#")
    if not sep or Path(ref).exists():
        with Image.open(ref) as image:
            return image.convert("RGB")
    with tarfile.open(shard) as tar:
        names = set(tar.getnames())
        for ext in ("jpg", "jpeg", "png", "webp"):
            if f"{key}.{ext}" in names:
                with Image.open(tar.extractfile(f"{key}.{ext}")) as image:
                    return image.convert("RGB")
    raise FileNotFoundError(f"no image for key {key!r} in {shard}")


# ---------------------------------------------------------------------------------------------
# Episodes


@dataclass(slots=True)
class EpisodeConfig:
    """How episodes are drawn; the fields are Frozen's settings."""

    ways: int = field(default=2, metadata={"help": "classes per episode (Frozen: 2 or 5)"})
    names: str = field(default="nonsense", metadata={"help": "'nonsense' words or 'real' labels"})
    task_induction: bool = field(default=False, metadata={"help": "an instruction sentence first"})
    inner_shots: int = field(default=1, metadata={"help": "distinct support images per class"})
    repeats: int = field(default=0, metadata={"help": "extra showings of the support set (0-5)"})
    episodes: int = field(default=100, metadata={"help": "how many episodes to draw"})
    seed: int = field(default=0, metadata={"help": "the same seed gives the same episodes"})
    fast_vqa: bool = field(default=False, metadata={"help": "ask about an attribute instead"})
    attribute: str = field(default="color", metadata={"help": "fast-VQA: the attribute asked"})

    def __post_init__(self):
        if self.ways < 2:
            raise ValueError(f"ways must be >= 2, got {self.ways}")
        if self.names not in ("nonsense", "real"):
            raise ValueError(f"names must be 'nonsense' or 'real', got {self.names!r}")
        if self.inner_shots < 1 or self.repeats < 0 or self.episodes < 0:
            raise ValueError("inner_shots must be >= 1, repeats and episodes >= 0")
        if self.names == "nonsense" and self.ways > len(NONSENSE):
            raise ValueError(f"at most {len(NONSENSE)} ways with nonsense names")


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
    by_class: dict[str, list[dict]] = {}
    for item in source_items:
        if config.fast_vqa and item["attributes"].get(config.attribute) in (None, ""):
            continue
        by_class.setdefault(item["label"], []).append(item)
    classes = sorted(c for c, v in by_class.items() if len(v) >= config.inner_shots + 1)
    if len(classes) < config.ways:
        raise ValueError(
            f"{config.ways}-way episodes need {config.ways} classes with at least "
            f"{config.inner_shots + 1} images (inner_shots + 1); found {len(classes)}"
        )
    for items in by_class.values():
        items.sort(key=lambda item: item["ref"])
    rng = random.Random(config.seed)
    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "episodes"}
    episodes = []
    for index in range(config.episodes):
        chosen = rng.sample(classes, config.ways)
        names = rng.sample(NONSENSE, config.ways) if config.names == "nonsense" else chosen
        query_class = rng.randrange(config.ways)
        support = []
        for k, cls in enumerate(chosen):
            drawn = rng.sample(by_class[cls], config.inner_shots + (k == query_class))
            if k == query_class:
                query, drawn = drawn[0], drawn[1:]
            support += [{"ref": item["ref"], "name": names[k]} for item in drawn]
        rng.shuffle(support)
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
        episodes.append(
            Episode(
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
        )
    return episodes


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
