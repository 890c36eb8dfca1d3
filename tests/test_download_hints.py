"""Download hints name the command the installed huggingface_hub provides, with a valid repo id."""

from __future__ import annotations

import pytest

from reasonseg_x.data import hub
from reasonseg_x.errors import ReasonSegXError


def test_the_installed_hub_gets_hf_download():
    command = hub.download_command("sj9909/ReasonSegX_test", repo_type="dataset", local_dir="/data/x")
    assert command == "hf download sj9909/ReasonSegX_test --repo-type dataset --local-dir /data/x"


def test_an_old_hub_gets_huggingface_cli(monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.30.2")
    assert hub.download_command("a/b").startswith("huggingface-cli download a/b")


def test_offline_dataset_hint_names_hf_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ReasonSegXError) as info:
        hub.fetch_dataset_repo("someone/not-cached")
    assert "`hf download someone/not-cached --repo-type dataset --local-dir /path/to/folder`" in str(info.value)
    assert "huggingface-cli" not in str(info.value)


def test_a_checkpoint_subfolder_is_downloaded_with_include(monkeypatch, tmp_path):
    from reasonseg_x.star import vlm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ReasonSegXError) as info:
        vlm.hub_load_kwargs("sj9909/StAR-7B/lora_adapter")
    assert "`hf download sj9909/StAR-7B --include 'lora_adapter/*'`" in str(info.value)
