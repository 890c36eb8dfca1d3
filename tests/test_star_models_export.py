"""``reasonseg-x star export`` on the tiny checkpoint: the merged folder (and the remapped adapter)
give the same greedy answers in-process as the adapter it came from."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

from _star_tiny import random_image, tiny_checkpoints  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

PROMPTS = ["find the cat", "the thing that holds water"]


def _images() -> list:
    return [random_image(64, 48, seed=1), random_image(40, 90, seed=2)]


def _greedy(checkpoint: str) -> list[list[str]]:
    from reasonseg_x.star.vlm import load_vlm

    return load_vlm(checkpoint, device="cpu").generate(_images(), PROMPTS, n=1, max_new_tokens=12)


def _logits(checkpoint: str):
    """The prompt's next-token logits (finer than greedy text, which a random tiny model may not change)."""
    import torch

    from reasonseg_x.star.vlm import load_vlm

    vlm = load_vlm(checkpoint, device="cpu")
    with torch.inference_mode():
        return vlm.model(**vlm.build_inputs(_images(), PROMPTS), logits_to_keep=1).logits


def test_export_merged_round_trips_the_greedy_answers(tmp_path):
    from reasonseg_x.cli import app

    ckpt = tiny_checkpoints()
    out = tmp_path / "merged"
    result = CliRunner().invoke(app, ["star", "export", "--checkpoint", str(ckpt.lora_old), "--out", str(out),
                                      "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    assert "vllm serve" in result.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json"} <= names and "adapter_config.json" not in names
    assert any("processor" in n for n in names)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as handle:
        assert not [k for k in handle.keys() if "lora" in k]  # noqa: SIM118 - safe_open has no __iter__
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen2_5_vl"
    reference = _greedy(str(ckpt.lora_old))
    assert _greedy(str(out)) == reference
    import torch

    merged = _logits(str(out))
    torch.testing.assert_close(merged, _logits(str(ckpt.lora_old)), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(merged, _logits(str(ckpt.qwen25)), rtol=1e-4, atol=1e-5)  # the merge carried the adapter
    again = CliRunner().invoke(app, ["star", "export", "--checkpoint", str(ckpt.lora_old), "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_export_adapter_writes_todays_key_layout(tmp_path):
    from safetensors import safe_open

    from reasonseg_x.star.export import export_checkpoint

    ckpt = tiny_checkpoints()
    result = export_checkpoint(str(ckpt.lora_old), tmp_path / "adapter", form="adapter")
    assert result.base_model == str(ckpt.qwen25)
    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert keys and all(".language_model.layers." in k for k in keys)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert all(m.startswith("model.language_model.layers.") for m in config["target_modules"])
    assert _greedy(str(tmp_path / "adapter")) == _greedy(str(ckpt.lora_old))


def test_export_refuses_a_full_model(tmp_path):
    from reasonseg_x.errors import InvalidInputError
    from reasonseg_x.star.export import export_checkpoint

    with pytest.raises(InvalidInputError, match="full model already"):
        export_checkpoint(str(tiny_checkpoints().qwen25), tmp_path / "x")


def test_export_onto_a_file_is_a_clear_error(tmp_path):
    from reasonseg_x.cli import app

    target = tmp_path / "a-file"
    target.write_text("keep me")
    result = CliRunner().invoke(app, ["star", "export", "--checkpoint", str(tiny_checkpoints().lora_old),
                                      "--out", str(target)])
    assert result.exit_code == 2 and "--out must be a folder" in result.output
    assert target.read_text() == "keep me"


def test_a_failed_export_leaves_the_old_out_untouched(tmp_path, monkeypatch):
    """The export is written beside --out and swapped in at the end: a load that fails (here the
    model load itself) leaves the old folder's files as they were, and no temporary behind."""
    from reasonseg_x.cli import app
    from reasonseg_x.star import vlm

    out = tmp_path / "served"
    out.mkdir()
    (out / "config.json").write_text("the old export")

    def broken(*args, **kwargs):
        raise OSError("disk full while loading")

    monkeypatch.setattr(vlm, "load_vlm", broken)
    result = CliRunner().invoke(app, ["star", "export", "--checkpoint", str(tiny_checkpoints().lora_old),
                                      "--out", str(out), "--overwrite"])
    assert result.exit_code != 0
    assert (out / "config.json").read_text() == "the old export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]


def test_export_replaces_an_old_out_only_when_complete(tmp_path):
    from reasonseg_x.star.export import export_checkpoint

    out = tmp_path / "adapter"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    export_checkpoint(str(tiny_checkpoints().lora_old), out, form="adapter", overwrite=True)
    names = {p.name for p in out.iterdir()}
    assert "stale.txt" not in names and "adapter_model.safetensors" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_export_onto_the_checkpoint_is_refused(tmp_path, where):
    """--out equal to the checkpoint, inside it, or a folder holding it would delete what the
    export reads: refused with the folder named, and the checkpoint left whole."""
    import shutil

    from reasonseg_x.cli import app

    holder = tmp_path / "holder"
    checkpoint = holder / "ckpt"
    shutil.copytree(tiny_checkpoints().lora_old, checkpoint)
    before = sorted(p.name for p in checkpoint.iterdir())
    out = {"same": checkpoint, "inside": checkpoint / "merged", "parent": holder}[where]
    result = CliRunner().invoke(app, ["star", "export", "--checkpoint", str(checkpoint), "--out", str(out),
                                      "--overwrite"])
    assert result.exit_code == 2, result.output
    assert "checkpoint folder" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in checkpoint.iterdir()) == before
