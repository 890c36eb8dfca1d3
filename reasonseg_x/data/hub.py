"""Fetch a dataset repo from the Hugging Face Hub, or fail at once when that cannot work.

Why a probe: offline, ``huggingface_hub`` retries a Hub id for ~23 seconds before it gives up. We
use a local snapshot when the Hub cache already has one, fail immediately under
``HF_HUB_OFFLINE=1``, and otherwise try a TCP connection to the endpoint with a short timeout
before downloading.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from reasonseg_x.errors import SourceNotFoundError

__all__ = ["fetch_dataset_repo", "is_offline", "offline_variable", "endpoint_reachable", "endpoint_problem", "HOW_TO_USE_LOCAL",
           "download_command"]

#: the files a loader needs; images live inside the parquet/arrow files
_PATTERNS = ["*.parquet", "**/*.parquet", "*.arrow", "**/*.arrow", "*.json", "**/*.json", "README.md"]
_PROBE_TIMEOUT_S = 1.5

HOW_TO_USE_LOCAL = (
    "point at a local copy instead: `--data /path/to/folder` (or the folder as SOURCE of `reasonseg-x data`; a folder with data/<split>-*.parquet, "
    "a datasets save_to_disk folder such as data/ReasonSegX_test, a LISA folder or a compact export), "
    "or download it on a machine with network access with "
    "`{download}` "
    "(for a known name, REASONSEG_X_DATA=/path/to/data finds the folders of the reference download script)")
#: the first huggingface_hub with the ``hf`` command (``huggingface-cli`` is deprecated there, gone in 1.0)
_HF_COMMAND_SINCE = (0, 34)


def download_command(repo: str, *, repo_type: str | None = None, include: str | None = None,
                     local_dir: str | None = None) -> str:
    """The download command line that the installed huggingface_hub provides (``hf download`` or,
    before 0.34, ``huggingface-cli download``) for a repo, optionally one folder of it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = tuple(int(p) for p in version("huggingface_hub").split(".")[:2] if p.isdigit())
    except PackageNotFoundError:
        installed = _HF_COMMAND_SINCE
    words = ["hf" if installed >= _HF_COMMAND_SINCE else "huggingface-cli", "download", repo]
    if repo_type and repo_type != "model":
        words += ["--repo-type", repo_type]
    if include:
        words += ["--include", f"'{include}'"]
    if local_dir:
        words += ["--local-dir", local_dir]
    return " ".join(words)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_variable() -> str | None:
    """The variable that puts us offline (read now: the hub library reads it only at import), or None."""
    from huggingface_hub import constants

    for name in _OFFLINE_VARIABLES:
        if _truthy(os.environ.get(name)):
            return name
    return "HF_HUB_OFFLINE" if constants.HF_HUB_OFFLINE else None


def is_offline() -> bool:
    """Offline mode as the user asked for it (any of HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, TRANSFORMERS_OFFLINE)."""
    return offline_variable() is not None


def _endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def _probe_target(endpoint: str | None = None) -> tuple[str, int] | None:
    """Host and port a request to ``endpoint`` connects to first: the proxy when one is configured."""
    url = urlparse(endpoint or _endpoint())
    proxy = None
    for name in (f"{url.scheme.upper()}_PROXY", f"{url.scheme}_proxy", "ALL_PROXY", "all_proxy"):
        if os.environ.get(name):
            proxy = urlparse(os.environ[name] if "://" in os.environ[name] else f"http://{os.environ[name]}")
            break
    no_proxy = (os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "").replace(" ", "").split(",")
    if proxy is not None and url.hostname not in no_proxy:
        url = proxy
    if not url.hostname:
        return None
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def endpoint_problem(endpoint: str | None = None, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """Why a TCP connection to the Hub endpoint (or its proxy) does not open within ``timeout``; None if it does.

    Name resolution is not bounded by socket timeouts (a machine whose resolver is unreachable can
    hang for tens of seconds), so the probe runs in a daemon thread that is abandoned when late.
    """
    target = _probe_target(endpoint)
    if target is None:
        return f"endpoint {endpoint or _endpoint()!r} is not a URL"
    host, port = target
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][:2]
        except Exception as exc:  # reported to the caller, never lost in the thread
            outcome.append(f"cannot resolve {host} ({exc.__class__.__name__}: {exc})")
            return
        try:
            with socket.create_connection(address, timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(f"cannot reach {host}:{port} ({exc.__class__.__name__}: {exc})")

    worker = threading.Thread(target=probe, name="reasonseg-x-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.25)
    if not outcome:
        return f"cannot resolve {host} within {timeout:g} s (no network or no DNS?)"
    return outcome[0]


def endpoint_reachable(timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint (or its proxy) opens within ``timeout`` seconds."""
    return endpoint_problem(timeout=timeout) is None


def _local_snapshot(repo: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, repo_type="dataset", local_files_only=True, allow_patterns=_PATTERNS))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    except Exception:  # noqa: BLE001 - any other cache problem means "not usable locally"
        return None


def fetch_dataset_repo(repo: str, *, spec: str | None = None) -> Path:
    """Local folder of a Hub dataset repo: the cached snapshot, else a fresh download.

    Raises :class:`SourceNotFoundError` at once (well under a second) when offline or when the
    endpoint cannot be reached, with a message that says how to point at a local folder.
    """
    cached = _local_snapshot(repo)
    if cached is not None and (any(cached.rglob("*.parquet")) or any(cached.rglob("*.arrow"))):
        return cached
    label = spec if spec and spec != repo else repo
    hint = HOW_TO_USE_LOCAL.format(download=download_command(repo, repo_type="dataset",
                                                              local_dir="/path/to/folder"))
    variable = offline_variable()
    if variable is not None:
        raise SourceNotFoundError(f"{label}: the Hub dataset {repo} is not in the local cache and {variable} is "
                                  f"set; {hint}")
    if not endpoint_reachable():
        raise SourceNotFoundError(f"{label}: cannot reach the Hugging Face Hub at {_endpoint()} to download {repo} "
                                  f"(no network?); {hint}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo, repo_type="dataset", allow_patterns=_PATTERNS, etag_timeout=5))
    except RepositoryNotFoundError:
        raise SourceNotFoundError(f"{label}: no dataset repo {repo} on the Hub (private or misspelt?); {hint}") from None
    except (HfHubHTTPError, OSError) as exc:
        raise SourceNotFoundError(f"{label}: downloading {repo} failed: {exc}; {hint}") from None
