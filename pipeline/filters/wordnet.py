"""WordNet 3.0 from Debian's ``wordnet-base`` package, read with NLTK.

Debian ships the database files without ``lexnames``, which NLTK's reader needs, and NLTK only
reads inside its data path. So the files are copied once into a cache folder beside a
``lexnames`` written from WordNet's documented list of lexicographer files (``lexnames(5WN)``).
"""

import os
import shutil
import warnings
from pathlib import Path

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# lexnames(5WN): file number, name and syntactic category (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXICOGRAPHER_FILES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_READERS: dict[str, object] = {}


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "vlcurate" / "wordnet-3.0"


def load_wordnet(source: str | Path = DEBIAN_WORDNET):
    """An NLTK ``WordNetCorpusReader`` over the WordNet database in ``source``."""
    source = Path(source)
    if str(source) in _READERS:
        return _READERS[str(source)]
    if not (source / "data.noun").exists():
        raise RuntimeError(
            f"WordNet not found in {source}: install Debian's wordnet-base "
            "(apt-get install wordnet-base; `make venv` does it) or pass its folder"
        )
    target = _cache_dir()
    if not (target / "lexnames").exists():
        tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        (tmp / "lexnames").write_text(
            "".join(
                f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n"
                for i, name in enumerate(LEXICOGRAPHER_FILES)
            )
        )
        if target.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(target)
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None  # no mapping to NLTK's own download: this *is* WordNet 3.0

    if str(target) not in nltk.data.path:
        nltk.data.path.append(str(target))  # NLTK reads only inside its data path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        _READERS[str(source)] = Reader(str(target), None)
    return _READERS[str(source)]
