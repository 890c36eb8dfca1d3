"""``python -m reasonseg_x.tasks`` prints the folder of the task YAML files, for lmms-eval's
``--include_path`` (lmms-eval 0.7.3's CLI indexes tasks before it adds ``LMMS_EVAL_PLUGINS``'
folders, so the plugin variable alone finds our model but not our tasks; docs/harness.md)."""

from pathlib import Path

print(Path(__file__).resolve().parent)
