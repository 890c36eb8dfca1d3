"""Run the ``reasonseg-x`` CLI as a core install sees it: the models extra's modules cannot be imported.

Used as ``python tests/_hide_extras.py ARGS...`` by the tests: a meta-path finder placed first
raises ModuleNotFoundError for torch, transformers, sam2, ... exactly as a missing package does.
"""

from __future__ import annotations

import sys

HIDDEN = {"torch", "torchvision", "transformers", "peft", "accelerate", "sam2", "segment_anything", "cv2",
          "vllm", "safetensors"}


class _HideExtras:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _HideExtras())
    for loaded in [m for m in sys.modules if m.split(".")[0] in HIDDEN]:
        del sys.modules[loaded]
    sys.argv = ["reasonseg-x", *sys.argv[1:]]
    from reasonseg_x.cli import main

    main()
