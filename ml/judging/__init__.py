"""The AI judge: scores an answer 0-5 with a comment, locally or with an LLM.

``make_judge(JudgeConfig(...))`` builds one of three backends: ``local`` (embeddings plus
explicit checks, no network), ``anthropic`` (Claude through the Messages and Message
Batches APIs) and ``openai`` (any OpenAI-compatible chat server).
"""

from ml.judging.base import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_RUBRIC,
    Judge,
    JudgeConfig,
    JudgeConfigError,
    JudgeError,
    JudgeReplyError,
    JudgeRequest,
    JudgeUnavailable,
    Rubric,
    Verdict,
    build_user_prompt,
    make_judge,
    snap_score,
)

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_RUBRIC",
    "Judge",
    "JudgeConfig",
    "JudgeConfigError",
    "JudgeError",
    "JudgeReplyError",
    "JudgeRequest",
    "JudgeUnavailable",
    "Rubric",
    "Verdict",
    "build_user_prompt",
    "make_judge",
    "snap_score",
]
