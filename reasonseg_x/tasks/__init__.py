"""ReasonSeg-X as lmms-eval tasks (the ``harness`` extra).

lmms-eval finds this folder's YAML files through ``LMMS_EVAL_PLUGINS=reasonseg_x`` (it adds the
folder of ``reasonseg_x.tasks``) or ``--include_path``. Each task is a ReasonSeg-X or related split;
the model's text is read, segmented and scored by our own code (:mod:`.harness`), and the
per-sample log (``--log_samples``) is a predictions file ``reasonseg-x score`` reads as it is.
Nothing here is imported by the rest of the package. See docs/harness.md.
"""
