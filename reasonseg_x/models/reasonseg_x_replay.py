"""``--model reasonseg_x_replay --model_args answers=FILE``: an lmms-eval model that answers each
document with a text known in advance.

Why: it re-scores answers produced elsewhere (another harness, a served model's log, the
``raw_text`` of a ``reasonseg-x eval`` predictions file) through the harness, and it lets the tests
run lmms-eval end to end on CPU. ``FILE`` is JSON Lines with ``id`` and ``text`` (or ``raw_text``,
as in a predictions file); a document without an answer gets an empty one (a parse error).
It asks each document for its messages, as a real chat model would, and checks they carry the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmms_eval.api.model import lmms

from reasonseg_x.errors import InvalidInputError
from reasonseg_x.json_input import loads_user_json, require_regular_file

__all__ = ["ReplayAnswers", "ReplayAnswersSimple", "read_answers"]


def read_answers(path: str | Path) -> dict[str, str]:
    """``id -> text`` from a JSON Lines file; a bad line is an error naming it."""
    out: dict[str, str] = {}
    p = Path(path)
    try:
        lines = require_regular_file(p, "the answers file").read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the answers: {exc.strerror or exc}", str(p)) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = loads_user_json(line, None)
        except ValueError as exc:
            raise InvalidInputError(f"malformed JSON: {exc}", f"{p}:{number}") from None
        text = obj.get("text", obj.get("raw_text")) if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(text, (str, type(None))):
            raise InvalidInputError("expected an object with a string 'id' and 'text' (or 'raw_text')", f"{p}:{number}")
        out[obj["id"]] = text or ""
    return out


class ReplayAnswers(lmms):
    """A chat model whose answers are read from a file."""

    is_simple = False

    def __init__(self, answers: str, **_: Any) -> None:
        super().__init__()
        self.answers = read_answers(answers)
        self.asked: list[str] = []

    def generate_until(self, requests: list[Any]) -> list[str]:
        out = []
        for request in requests:
            _, doc_to_messages, _, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            messages = doc_to_messages(doc)
            kinds = [part.get("type") for part in messages[-1]["content"]]
            if "image" not in kinds or "text" not in kinds:
                raise ValueError(f"document {doc['id']!r}: the messages carry no image or no text ({kinds})")
            self.asked.append(doc["id"])
            out.append(self.answers.get(doc["id"], ""))
        return out

    def loglikelihood(self, requests: list[Any]) -> list[Any]:
        raise NotImplementedError("reasonseg_x_replay only answers generation requests")

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise NotImplementedError("reasonseg_x_replay only answers single-turn requests")


class ReplayAnswersSimple(ReplayAnswers):
    """The same model as lmms-eval registers it through ``LMMS_EVAL_PLUGINS`` (always as a "simple"
    model); our tasks send it their chat requests all the same."""

    is_simple = True
