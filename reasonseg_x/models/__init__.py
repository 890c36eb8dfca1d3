"""lmms-eval models this package registers (the ``harness`` extra).

Why this package exists: with ``LMMS_EVAL_PLUGINS=reasonseg_x`` (how lmms-eval finds our tasks),
lmms-eval also imports ``reasonseg_x.models`` and reads ``AVAILABLE_MODELS`` (name -> class, the
class living in ``reasonseg_x.models.<name>``); without this module that import fails. The one
model here replays known answers (docs/harness.md). It is unrelated to ``reasonseg-x eval``'s
models (``reasonseg_x/predictors/``).
"""

#: what ``LMMS_EVAL_PLUGINS`` registers (lmms-eval registers these as "simple" models)
AVAILABLE_MODELS = {"reasonseg_x_replay": "ReplayAnswersSimple"}
#: the chat classes the entry point registers
CHAT_MODELS = {"reasonseg_x_replay": "ReplayAnswers"}


def lmms_eval_manifests():  # noqa: ANN201 - lmms-eval's ModelManifest, imported lazily
    """The same model for lmms-eval's entry-point group ``lmms_eval.models`` (pyproject.toml)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=name, chat_class_path=f"{__name__}.{name}.{cls}")
            for name, cls in CHAT_MODELS.items()]
