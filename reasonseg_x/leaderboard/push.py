"""Upload a bundle to a Hub dataset repository of submissions, as a pull request.

Offline, the upload must fail at once and say so (huggingface_hub would otherwise retry for tens
of seconds), and the bundle stays where it was written so the author can push it later.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from reasonseg_x.errors import ReasonSegXError

__all__ = ["PushError", "push_bundle", "hub_endpoint", "check_online", "repo_path_for"]

class PushError(ReasonSegXError):
    """The bundle could not be uploaded; it is still on disk."""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def check_online(endpoint: str | None = None, *, timeout: float = 3.0) -> None:
    """Raise :class:`PushError` unless offline mode is off and the endpoint accepts a TCP connection."""
    from reasonseg_x.data.hub import endpoint_problem, offline_variable

    flag = offline_variable()
    if flag:
        raise PushError(f"offline mode is on ({flag}=1)")
    problem = endpoint_problem(endpoint or hub_endpoint(), timeout=timeout)
    if problem:
        raise PushError(problem)


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
