"""This process's judge, built from settings and the active rubric record."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.judging.models import JudgeRubric
from ml.judging import DEFAULT_RUBRIC, Judge, JudgeConfig, Rubric, make_judge

_judges: dict[JudgeConfig, Judge] = {}
_lock = threading.Lock()


def rubric_active() -> Rubric:
    """The rubric marked active; on a fresh install, the built-in one (stored as a record so
    judgements can point at the exact wording they were made under)."""
    record = JudgeRubric.objects.filter(is_active=True).first()
    if record is None:
        try:
            with transaction.atomic():
                record, _ = JudgeRubric.objects.get_or_create(
                    version=DEFAULT_RUBRIC.version,
                    defaults={"text": DEFAULT_RUBRIC.text, "is_active": True},
                )
        except IntegrityError:  # another process activated one at the same moment
            record = JudgeRubric.objects.get(is_active=True)
    return Rubric(version=record.version, text=record.text)


def judge_config() -> JudgeConfig:
    backend = settings.JUDGE_BACKEND
    if backend == "anthropic":
        return JudgeConfig(
            backend=backend,
            model=settings.JUDGE_MODEL,  # empty: the backend's default Claude model
            api_key=settings.ANTHROPIC_API_KEY,
            base_url=settings.ANTHROPIC_BASE_URL,
            timeout_s=float(settings.JUDGE_TIMEOUT_SECONDS),
            max_retries=settings.JUDGE_MAX_RETRIES,
            rubric=rubric_active(),
            batch_poll_s=float(settings.JUDGE_BATCH_POLL_SECONDS),
            batch_timeout_s=float(settings.JUDGE_BATCH_TIMEOUT_SECONDS),
        )
    if backend == "openai":
        return JudgeConfig(
            backend=backend,
            model=settings.JUDGE_MODEL,
            api_key=settings.JUDGE_API_KEY,
            base_url=settings.JUDGE_BASE_URL,
            timeout_s=float(settings.JUDGE_TIMEOUT_SECONDS),
            max_retries=settings.JUDGE_MAX_RETRIES,
            rubric=rubric_active(),
        )
    return JudgeConfig(backend="local", embedder_path=settings.EMBEDDING_MODEL_PATH)


def get_judge() -> Judge:
    """One judge per configuration per process (the local one holds the embedder)."""
    config = judge_config()
    with _lock:
        judge = _judges.get(config)
        if judge is None:
            judge = _judges[config] = make_judge(config)
        return judge
