from __future__ import annotations

from apps.documents.embedding import get_embedder
from apps.qa.evidence import claims_by_number, find_evidence, prompt_passages
from ml.prompting import Passage, build_messages

PASSAGE = (
    "3-5.3.3 Spaces Conditioned for Comfort Heating. 68°F (20°C) dry bulb. During unoccupied "
    "hours, temperatures must be set no higher than 55°F (12.8°C).\n3-5.3.4 Spaces Conditioned "
    "for Heating - High to Moderate Physical Activity.\n55°F (12.8°C) dry bulb.  Examples of these "
    "facilities include areas in maintenance shops where engines are rebuilt, warehouses areas "
    "where there are forklift loading operations, and aircraft hangars."
)
OTHER = "3-5.1 Load Calculations. Provide no more than a 1.15 safety factor for heating equipment."


def _prompt(first: str, second: str) -> list[dict[str, str]]:
    passages = [
        Passage(number=1, chunk_id=11, document="UFC 3-410-01", page=25, section="", text=first),
        Passage(number=2, chunk_id=12, document="UFC 3-410-01", page=24, section="", text=second),
    ]
    return build_messages("How warm must forklift areas be?", passages)


def test_the_sentences_that_support_each_cited_claim_are_found():
    answer = (
        "Warehouse areas with forklift loading must be heated to 55°F (12.8°C) dry bulb [1]. "
        "Heating equipment may be sized with a safety factor of at most 1.15. [2]"
    )
    evidence = find_evidence(
        answer=answer,
        citations=[{"number": 1, "chunk_id": 11}, {"number": 2, "chunk_id": 12}],
        shown=prompt_passages(_prompt(PASSAGE, OTHER)),
        passages={11: PASSAGE, 12: OTHER},
        embed=get_embedder().embed,
    )
    assert [e["number"] for e in evidence] == [1, 2]
    # The value and the heading it belongs to, not the comfort-heating sentences.
    assert "55°F (12.8°C) dry bulb." in evidence[0]["sentences"]
    assert any("Physical Activity" in s for s in evidence[0]["sentences"])
    assert not any("68°F" in s or "unoccupied" in s for s in evidence[0]["sentences"])
    assert evidence[1]["sentences"][-1].startswith("Provide no more than a 1.15 safety factor")


def test_only_what_the_prompt_showed_of_a_passage_is_evidence():
    shown = "During unoccupied hours, temperatures must be set no higher than 55°F (12.8°C)."
    evidence = find_evidence(
        answer="It must be 55°F (12.8°C) [1].",
        citations=[{"number": 1, "chunk_id": 11}],
        shown=prompt_passages(_prompt(shown, OTHER)),
        passages={11: PASSAGE},
        embed=get_embedder().embed,
    )
    # The passage's "55°F (12.8°C) dry bulb." matches the answer better, but the model never saw it.
    assert shown in evidence[0]["sentences"]
    assert "55°F (12.8°C) dry bulb." not in evidence[0]["sentences"]


def test_a_mark_after_the_full_stop_belongs_to_the_sentence_before():
    claims = claims_by_number("The minimum is 55°F. [1] Offices need 68°F [2, 1].")
    assert claims == {1: ["The minimum is 55°F.", "Offices need 68°F."], 2: ["Offices need 68°F."]}
    assert prompt_passages([{"role": "user", "content": "no passages here"}]) == {}
