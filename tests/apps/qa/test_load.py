"""One account cannot stop the others (issue 11 item 4): 24 concurrent questions from one
engineer against a real web server leave another user's search answering in under 2 s, and
none of the 24 is lost: each is answered, or refused with a clear reason and kept."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apps.qa.models import Answer
from tests import support
from tests.apps.qa.conftest import FORKLIFT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = 24


def test_one_account_asking_24_at_once_does_not_stop_another_users_search(
    worker_env: dict[str, str], tmp_path: Path, small_pdf: bytes
):
    support.ingest("UFC_3-410-01.pdf", small_pdf)
    eve = support.make_user("eve", "engineers")
    support.make_user("bob", "engineers")
    env = {
        **worker_env,
        "GENERATOR_BACKEND": "llamacpp",
        "GENERATION_MAX_NEW_TOKENS": "24",
        "ANSWER_MIN_SIMILARITY": "0",  # every question goes to the model
        "ANSWER_MIN_SENTENCE_SCORE": "0",
        "ADAPTER_WATCH": "false",
    }
    # As the launcher runs it, with fewer threads: the 24 questions outnumber them.
    server, base = support.start_web(env, log=tmp_path / "web.log", workers=1, threads=8)
    try:
        eve_web, bob_web = support.web_login(base, "eve"), support.web_login(base, "bob")
        eve_web.post(f"{base}/ask/api/answers", json={"question": "warm-up?"}, timeout=120)
        Answer.objects.all().delete()  # that one loaded the model; count only the 24 below

        def ask(n: int) -> int:
            return eve_web.post(
                f"{base}/ask/api/answers", json={"question": f"{FORKLIFT} ({n})"}, timeout=120
            ).status_code

        searches: list[float] = []
        asking = threading.Event()

        def search_meanwhile() -> None:
            asking.wait(10)
            while asking.is_set():
                started = time.monotonic()
                response = bob_web.get(
                    f"{base}/documents/search/", params={"q": "forklift heating"}, timeout=30
                )
                assert response.status_code == 200
                searches.append(time.monotonic() - started)
                time.sleep(0.1)

        searcher = threading.Thread(target=search_meanwhile)
        searcher.start()
        with ThreadPoolExecutor(QUESTIONS) as pool:
            asking.set()
            codes = list(pool.map(ask, range(QUESTIONS)))
            asking.clear()
        searcher.join(30)

        assert searches and max(searches) < 2, searches
        answers = list(Answer.objects.filter(user=eve))
        assert len(answers) == QUESTIONS and all(a.question for a in answers)
        done = [a for a in answers if a.status == Answer.Status.DONE]
        refused = [a for a in answers if a.status == Answer.Status.FAILED]
        assert done and len(done) + len(refused) == QUESTIONS, [a.status for a in answers]
        assert all("Your question is saved" in a.error for a in refused)
        assert sorted(codes) == sorted(200 if a in done else 503 for a in answers)
    except BaseException:
        print((tmp_path / "web.log").read_text()[-6000:])
        raise
    finally:
        support.stop(server)
