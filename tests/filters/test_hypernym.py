"""Hypernymisation with spaCy NER and WordNet 3.0 (Debian's wordnet-base, installed by make)."""

from pathlib import Path

import pytest

from tests.pairs import pairs_table
from vlcurate.pipeline.filters.apply import annotate
from vlcurate.pipeline.filters.wordnet import DEBIAN_WORDNET, load_wordnet
from vlcurate.pipeline.recipe import parse_recipe
from vlcurate.schemas.filter import RARE_ENTITY_TYPE

pytestmark = pytest.mark.skipif(
    not (DEBIAN_WORDNET / "data.noun").exists(),
    reason="WordNet (Debian wordnet-base) is not installed; `make venv` installs it as root",
)


def test_wordnet_reads_instance_hypernyms():
    wn = load_wordnet()
    assert [s.name() for s in wn.synset("einstein.n.01").instance_hypernyms()] == ["physicist.n.01"]
    assert {s.name() for s in wn.synset("seattle.n.01").instance_hypernyms()} == {
        "city.n.01",
        "port_of_entry.n.01",
    }


def test_missing_wordnet_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="WordNet not found"):
        load_wordnet(tmp_path)


def test_entities_become_hypernyms_and_the_original_is_kept():
    recipe = parse_recipe(
        {
            "name": "h",
            "version": 1,
            "source": "t",
            "filters": [{"hypernymise": {"drop_types": ["WORK_OF_ART"]}}],
        }
    )
    out = annotate(
        pairs_table(
            "Barack Obama speaks in Berlin",
            "Albert Einstein lecturing in Paris",
            "A dog running on the beach",
            "Shakespeare reading Hamlet at the Globe Theatre",
            "A street in Seattle at night",
        ),
        recipe,
    )
    assert out.column("caption").to_pylist()[:3] == [
        "person speaks in national capital",  # WordNet 3.0 (2006) has no Obama: the type's word
        "physicist lecturing in national capital",
        "A dog running on the beach",
    ]
    assert out.column("caption_original").to_pylist()[:3] == [
        "Barack Obama speaks in Berlin",
        "Albert Einstein lecturing in Paris",
        None,
    ]
    assert out.column("caption").to_pylist()[4] == "A street in city at night"  # not port of entry
    assert out.column("drop_reason").to_pylist() == [None, None, None, RARE_ENTITY_TYPE, None]


def test_wordnet_folder_is_configurable(tmp_path):
    assert Path(DEBIAN_WORDNET).is_dir()
    with pytest.raises(RuntimeError, match="WordNet not found"):
        parse_recipe(
            {
                "name": "h",
                "version": 1,
                "source": "t",
                "filters": [{"hypernymise": {"wordnet": str(tmp_path)}}],
            }
        ).filters[1].setup()
