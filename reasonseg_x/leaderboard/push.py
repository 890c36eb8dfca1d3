"""Upload a bundle to a Hub dataset repository of submissions, as a pull request.

Offline, the upload must fail at once and say so (huggingface_hub would otherwise retry for tens
of seconds), and the bundle stays where it was written so the author can push it later.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from reasonseg_x.errors import ReasonSegXError

__all__ = ["PushError", "push_bundle", "hub_endpoint", "check_online", "repo_path_for"]

_TRUE = {"1", "true", "yes", "on"}


class PushError(ReasonSegXError):
    """The bundle could not be uploaded; it is still on disk."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _offline_flag() -> str | None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def check_online(endpoint: str | None = None, *, timeout: float = 3.0) -> None:
    """Raise :class:`PushError` unless offline mode is off and the endpoint accepts a TCP connection."""
    flag = _offline_flag()
    if flag:
        raise PushError(f"offline mode is on ({flag}=1)")
    url = urlparse(endpoint or hub_endpoint())
    host = url.hostname
    if not host:
        raise PushError(f"HF_ENDPOINT {endpoint or hub_endpoint()!r} is not a URL")
    port = url.port or (443 if url.scheme == "https" else 80)
    address = _resolve(host, port, timeout)
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except OSError as exc:
        raise PushError(f"cannot reach {url.scheme}://{host}:{port} ({exc.__class__.__name__}: {exc})") from None


def _resolve(host: str, port: int, timeout: float) -> tuple[str, int]:
    """``getaddrinfo`` bounded by ``timeout``: the socket timeout does not cover DNS, which can hang
    for tens of seconds on a machine whose resolver is unreachable."""
    import threading

    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][:2])
        except Exception as exc:  # reported to the caller, never lost in the thread
            found.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if not found:
        raise PushError(f"cannot resolve {host} within {timeout:g} s (no network or no DNS?)")
    if isinstance(found[0], Exception):
        raise PushError(f"cannot resolve {host} ({found[0].__class__.__name__}: {found[0]})")
    return found[0]


def repo_path_for(bundle: str | os.PathLike[str], model_name: str, digest: str) -> str:
    """Where a bundle goes in the submissions repo: ``submissions/<model>-<digest[:12]>[.tar.gz]``.

    Named by content, so two authors' ``my-bundle`` folders never overwrite each other and the
    same bundle pushed twice lands on the same path.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-.")[:60] or "model"
    name = Path(bundle).name.lower()
    suffix = next((s for s in (".tar.gz", ".tgz", ".tar", ".zip") if name.endswith(s)), "")
    return f"submissions/{slug}-{digest[:12]}{suffix}"


def push_bundle(bundle: str | os.PathLike[str], repo: str, *, token: str | None = None,
                path_in_repo: str | None = None, timeout: float = 3.0, api: Any = None) -> str:
    """Open a pull request adding ``bundle`` (folder or archive) to the dataset repo ``repo``.

    The bundle is opened with the host's checks first, so nothing broken is uploaded. Returns the
    URL of the pull request that huggingface_hub reports. Raises :class:`PushError` (the bundle
    left in place) when offline, unreachable or refused.
    """
    from reasonseg_x.leaderboard.bundle import open_bundle

    path = Path(bundle)
    keep = f"; the bundle is left at {path}: push it later with `reasonseg-x leaderboard push {path} " \
           f"--repo {repo}` or upload it by hand"
    if not path.exists():
        raise PushError(f"bundle {path} does not exist")
    with tempfile.TemporaryDirectory(prefix="rsx-push-") as scratch:
        opened = open_bundle(path, scratch)
    target = path_in_repo or repo_path_for(path, opened.info.model_name, opened.digest)
    if api is None:
        try:
            check_online(timeout=timeout)
        except PushError as exc:
            raise PushError(f"cannot push to the Hub: {exc}{keep}") from None
        from huggingface_hub import HfApi

        api = HfApi(endpoint=hub_endpoint(), token=token)
    message = f"Submission: {opened.info.model_name[:80]} ({opened.digest[:12]}, reasonseg-x)"
    try:
        if path.is_dir():
            result = api.upload_folder(folder_path=str(path), path_in_repo=target, repo_id=repo, repo_type="dataset",
                                       create_pr=True, commit_message=message)
        else:
            result = api.upload_file(path_or_fileobj=str(path), path_in_repo=target, repo_id=repo,
                                     repo_type="dataset", create_pr=True, commit_message=message)
    except Exception as exc:  # huggingface_hub raises many types (HTTP, auth, repo not found)
        raise PushError(f"upload to {repo} failed: {exc.__class__.__name__}: {exc}{keep}") from None
    return str(getattr(result, "pr_url", None) or getattr(result, "commit_url", None) or result)
