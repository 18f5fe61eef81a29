"""Frozen's released few-shot tasks (``open_ended_mi``, ``real_name_mi``, ``fast_vqa``), read as
released: :func:`frozen_source` gives their items, :func:`frozen_episodes` their episodes.

Images are ``{task}_shots_{n}_ways_{m}_id_{x}_image_{i}.jpg`` (support image ``i`` of question
``x``) and ``{task}_shots_{n}_ways_{m}_id_{x}_question.jpg`` (its query); other files are
ignored. The json layout is not documented beyond "dictionaries that define each question in
terms of the constituent images, any corresponding text, and the correct answer", so the parser
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

import json
import re
from collections.abc import Iterator
from pathlib import Path

from vlcurate.pipeline.icl.episodes import Episode
from vlcurate.pipeline.icl.sources import IMAGE_EXTENSIONS

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


def _parse_names(folder: Path) -> tuple[list, dict[tuple, list[int]]]:
    """The task images of ``folder`` as (file, name match), sorted, and the support positions of
    each question ``(task, shots, ways, id)``."""
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
    return parsed, positions


def _item(file: Path, m: re.Match, entry: dict, positions: dict[tuple, list[int]]) -> dict:
    """One image's item: a query labelled by its answer, or a support image by its name."""
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
    return {"ref": str(file), "label": label, "attributes": attributes}


def frozen_source(folder) -> Iterator[dict]:
    """Items of Frozen's released tasks (layout in the module doc). ``attributes`` holds
    ``task``, ``shots``, ``ways``, ``id``, ``position`` (``i``, or ``"question"``) and, for
    queries, ``question`` when the json has one."""
    folder = Path(folder)
    tables = {
        p.name[: -len("_all_questions.json")]: _frozen_questions(p)
        for p in sorted(folder.glob("*_all_questions.json"))
    }
    parsed, positions = _parse_names(folder)
    for file, m in parsed:
        prefix = f"{m['task']}_shots_{m['shots']}_ways_{m['ways']}"
        yield _item(file, m, tables.get(prefix, {}).get(m["id"], {}), positions)


def _questions(folder) -> dict[tuple, dict]:
    """The items of :func:`frozen_source` by question: ``{"support": [...], "query": item}``."""
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
    return groups


def _skip_reason(query: dict | None, support: list[dict], fast_vqa: bool) -> str | None:
    """Why a released question cannot be an episode, or None."""
    if query is None:
        return "no question image"
    if not support:
        return "no support image"
    if not query["label"]:
        return "no answer"
    if any(not item["label"] for item in support):
        return "a support image without a caption"
    if fast_vqa and not query["attributes"].get("question"):
        return "no question"
    return None


def _released_episode(key: tuple, query: dict, support: list[dict]) -> Episode:
    task, shots, ways, qid = key
    fast_vqa = "vqa" in task
    question = None
    if fast_vqa:
        question = re.sub(r"^\s*Q:\s*|\s*A:\s*$", "", query["attributes"]["question"]).strip()
    settings = {
        "task": task,
        "ways": ways,
        "inner_shots": shots,
        "repeats": 0,
        "task_induction": False,
        "fast_vqa": fast_vqa,
        "names": "real" if task.startswith("real_name") else "nonsense",
    }
    return Episode(
        id=f"{task}-{shots}-{ways}-{qid}",
        settings=settings,
        support=[{"ref": i["ref"], "name": i["label"]} for i in support],
        query=query["ref"],
        query_name=query["label"] if not fast_vqa else "",
        answer=query["label"],
        candidates=list(dict.fromkeys(item["label"] for item in support)),
        question=question,
    )


def frozen_episodes(folder) -> tuple[list[Episode], list[str]]:
    """Frozen's released questions as episodes, exactly as released (no drawing): the items of
    :func:`frozen_source` grouped by ``(task, shots, ways, id)``; the support images in the order
    of their position, each named by its caption's name; the query is the question image and the
    answer its label. ``fast_vqa`` tasks keep their question (a leading ``"Q:"`` and trailing
    ``"A:"`` taken off, since :func:`~vlcurate.pipeline.icl.episodes.prompt_sequence` adds them);
    the others ask "What is this?". ``settings`` has ``task``, ``ways``, ``inner_shots``,
    ``repeats`` 0, ``task_induction`` False, ``names`` (``real`` for ``real_name_*`` tasks) and
    ``fast_vqa``, so the episodes group into sets by
    :func:`vlcurate.pipeline.icl.evaluate.group_episodes`.

    Returns ``(episodes, notes)``; a question without a query image, a support image, an answer
    or (fast-VQA) a question is skipped and counted in ``notes``."""
    episodes, skipped = [], {}
    for key, group in sorted(_questions(folder).items(), key=lambda kv: str(kv[0])):
        query = group["query"]
        support = sorted(group["support"], key=lambda item: item["attributes"]["position"])
        reason = _skip_reason(query, support, "vqa" in key[0])
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
        else:
            episodes.append(_released_episode(key, query, support))
    notes = [f"skipped {n} Frozen question(s): {reason}" for reason, n in sorted(skipped.items())]
    return episodes, notes
