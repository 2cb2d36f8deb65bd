"""The local judge on the 40 sample questions: a reference answer scores high, the same
answer cut off scores lower, another question's answer and a wrongful refusal score low,
and a refusal of a question the documents do not cover scores high. Plus the checks behind
those scores, each on a small example."""

from __future__ import annotations

import json

import pytest

from ml.embeddings import load_embedder
from ml.judging import (
    JudgeConfig,
    JudgeConfigError,
    JudgeRequest,
    Verdict,
    make_judge,
    snap_score,
)
from ml.judging.local import LocalJudge, derive_key_facts, states_fact, truncation
from ml.prompting import DECLINE
from tests.support import EVAL

ROWS = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line]
ANSWERABLE = [row for row in ROWS if row["answerable"]]


def cut_mid_sentence(text: str, share: float = 0.6) -> str:
    """The first ``share`` of ``text``, never ending on a sentence mark."""
    cut = text[: int(len(text) * share)].rstrip()
    while cut and cut[-1] in ".!?":
        cut = cut[:-2].rstrip()
    return cut


def other_answer(index: int) -> str:
    """The reference answer of an answerable question seven places on: a different topic."""
    row = ROWS[index]
    position = ANSWERABLE.index(row) + 7 if row["answerable"] else index * 7
    return str(ANSWERABLE[position % len(ANSWERABLE)]["reference_answer"])


def request_for(row: dict, response: str) -> JudgeRequest:
    return JudgeRequest(
        question=row["question"],
        response=response,
        reference=row["reference_answer"],
        key_facts=tuple(row["key_facts"]),
        passages=(row["quote"],) if row["quote"] else (),
        answerable=row["answerable"],
        custom_id=row["id"],
    )


@pytest.fixture(scope="module")
def judge() -> LocalJudge:
    return LocalJudge(load_embedder())


@pytest.fixture(scope="module")
def sample_verdicts(judge: LocalJudge) -> dict[str, dict[str, Verdict]]:
    """Four responses per question, judged in one call: reference, cut, refusal, other."""
    kinds = ("reference", "cut", "refusal", "other")
    requests: list[JudgeRequest] = []
    for index, row in enumerate(ROWS):
        reference = row["reference_answer"]
        responses = (reference, cut_mid_sentence(reference), DECLINE, other_answer(index))
        requests.extend(request_for(row, response) for response in responses)
    outcomes = judge.judge_many(requests)
    verdicts = [o for o in outcomes if isinstance(o, Verdict)]
    assert len(verdicts) == len(outcomes)  # no JudgeError
    return {
        row["id"]: dict(zip(kinds, verdicts[4 * i : 4 * i + 4], strict=True))
        for i, row in enumerate(ROWS)
    }


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_sample_question_scores_in_order(row: dict, sample_verdicts: dict):
    verdicts = sample_verdicts[row["id"]]
    assert verdicts["reference"].score >= 4.5, verdicts["reference"].comment
    assert verdicts["cut"].score < verdicts["reference"].score, verdicts["cut"].comment
    assert verdicts["other"].score <= 1.5, verdicts["other"].comment
    if row["answerable"]:
        assert verdicts["refusal"].score <= 2, verdicts["refusal"].comment
    else:
        assert verdicts["refusal"].score >= 4.5, verdicts["refusal"].comment


def test_comment_names_what_was_found(sample_verdicts: dict):
    cut = sample_verdicts["s01"]["cut"]
    assert "states 1 of 2 key facts (10%; missing 30)" in cut.comment
    assert "ends mid-sentence" in cut.comment
    assert cut.comment.endswith(f"Scored {cut.score:.1f} of 5.")
    assert cut.details["truncated"] == "ends mid-sentence"
    assert cut.details["key_facts_missing"] == ["30"]
    refusal = sample_verdicts["s01"]["refusal"]
    assert refusal.comment.startswith("Declines although the reference answers the question")
    other = sample_verdicts["s03"]["other"]
    assert "states numbers that neither the passages nor the reference contain" in other.comment
    assert other.details["unsupported_numbers"]


def test_verdicts_are_json_and_say_who_judged(sample_verdicts: dict):
    verdict = sample_verdicts["s10"]["reference"]
    assert (verdict.backend, verdict.model, verdict.prompt_version) == (
        "local",
        "all-MiniLM-L6-v2",
        "local-v1",
    )
    for verdicts in sample_verdicts.values():
        for v in verdicts.values():
            json.dumps(v.details)
            assert v.score == snap_score(v.score)


def test_same_input_same_verdict(judge: LocalJudge):
    request = request_for(ROWS[0], "Leaks above 10% a year must be fixed within 30 days [1].")
    assert judge.judge(request) == judge.judge(request)


def test_grounded_mode_names_a_number_no_passage_supports(judge: LocalJudge):
    passage = (
        "Vestibules must be heated to 50°F (10°C) to melt tracked-in snow in locations where "
        "conditions warrant. Otherwise, vestibules must not be heated or air conditioned."
    )
    question = "Should building vestibules be heated or air conditioned?"
    copied = JudgeRequest(
        question=question,
        response="Vestibules must not be heated or air conditioned, except that they are "
        "heated to 50°F (10°C) to melt tracked-in snow where conditions warrant [1].",
        passages=(passage,),
    )
    invented = JudgeRequest(
        question=question,
        response="Vestibules must not be heated or air conditioned, except that they are "
        "heated to 65°F to melt tracked-in snow where conditions warrant [1].",
        passages=(passage,),
    )
    grounded, ungrounded = judge.judge(copied), judge.judge(invented)
    assert grounded.details["mode"] == "grounded" and grounded.score >= 4.5
    assert ungrounded.score < grounded.score
    assert "65 °F" in ungrounded.comment and ungrounded.details["unsupported_numbers"] == ["65 °F"]


def test_refusal_without_reference_depends_on_the_passages(judge: LocalJudge):
    row = next(r for r in ROWS if r["id"] == "s24")
    unrelated = next(r for r in ROWS if r["id"] == "s36")["quote"]
    covered = JudgeRequest(question=row["question"], response=DECLINE, passages=(row["quote"],))
    not_covered = JudgeRequest(question=row["question"], response=DECLINE, passages=(unrelated,))
    wrong, right = judge.judge(covered), judge.judge(not_covered)
    assert wrong.score <= 1.5 and "passage 1 clearly addresses the question" in wrong.comment
    assert right.score >= 4.5


def test_substantive_answer_to_uncovered_question_scores_low_without_reference(
    judge: LocalJudge,
):
    request = JudgeRequest(
        question="What minimum SEER rating must a new split-system air conditioner have?",
        response="A new split system must have a SEER of at least 14.",
        answerable=False,
    )
    verdict = judge.judge(request)
    assert verdict.score <= 0.5 and "14" in verdict.comment


def test_empty_answer_scores_zero(judge: LocalJudge):
    verdict = judge.judge(request_for(ROWS[0], "   "))
    assert verdict.score == 0 and "empty" in verdict.comment


def test_key_facts_derived_from_the_reference(judge: LocalJudge):
    row = ROWS[0]
    assert derive_key_facts(row["reference_answer"], row["question"]) == ("10%", "30 days")
    base = {"question": row["question"], "reference": row["reference_answer"]}
    right = judge.judge(JudgeRequest(response=row["reference_answer"], **base))
    wrong = judge.judge(
        JudgeRequest(
            response=row["reference_answer"].replace("30 days", "90 days"), passages=(), **base
        )
    )
    assert right.score >= 4.5 and right.details["key_facts_derived"] is True
    assert wrong.score < right.score
    assert "missing 30 days" in wrong.comment and "90 days" in wrong.comment


@pytest.mark.parametrize(
    ("fact", "text"),
    [
        ("30 days", "must be repaired within 30-days"),
        ("30 days", "a 30-day correction timeframe"),
        ("10%", "a loss of 10 % per year"),
        ("58", "no more than 58.0 °F"),
        ("fan-powered", "no fan–powered VAV boxes"),
        ("Life-Threatening", "it is life threatening"),
        ("limited dehumidification", "can only dehumidify it to a limited extent"),
        ("double door", "exterior double doors"),
        ("B31.5", "meet ASME B31.5 requirements"),
    ],
)
def test_key_fact_matching_ignores_form(fact: str, text: str):
    from ml.judging.local import _tokens

    assert states_fact(fact, _tokens(text))


@pytest.mark.parametrize(
    ("fact", "text"),
    [("30 days", "within 3 days"), ("10%", "a 100% loss"), ("5", "ASME B31.5"), ("AHJ", "the")],
)
def test_key_fact_matching_is_not_fooled(fact: str, text: str):
    from ml.judging.local import _tokens

    assert not states_fact(fact, _tokens(text))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Repair within 30 days [1].", None),
        ("The documents I searched do not cover this.", None),
        ("10% per year; repair within 30 days", None),  # a terse fragment, not a cut
        ("Balance the systems so that design flows are delivered with the drives run", "mid"),
        ("Leaks are repaired within 30 days. Systems must be shut down and", "dangling 'and'"),
        ("Comply with UL 268A.", None),
    ],
)
def test_truncation(text: str, reason: str | None):
    found = truncation(text)
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_snap_score_rounds_to_half_points():
    assert [snap_score(v) for v in (-1, 0.24, 0.25, 4.3, 4.74, 4.75, 7)] == [
        0.0,
        0.0,
        0.5,
        4.5,
        4.5,
        5.0,
        5.0,
    ]
    with pytest.raises(ValueError):
        snap_score(float("nan"))


def test_make_judge_builds_the_local_judge_and_refuses_unknown_backends():
    judge = make_judge(JudgeConfig())
    assert isinstance(judge, LocalJudge)
    assert judge.version == "local:all-MiniLM-L6-v2:local-v1"
    with pytest.raises(JudgeConfigError, match="unknown judge backend 'gpt'"):
        make_judge(JudgeConfig(backend="gpt"))
    with pytest.raises(JudgeConfigError, match="embedder"):
        make_judge(JudgeConfig(embedder_path="/nonexistent/model"))
