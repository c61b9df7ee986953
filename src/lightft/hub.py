"""Hugging Face hub access: tell a hub id from a local path, and fail fast with a clear message offline."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

from lightft.errors import LightftError


def offline_mode() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint answers a TCP connect (proxied set-ups are assumed reachable)."""
    if offline_mode():
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(kind: str, name: str, flag: str) -> None:
    """Raise a one-line error when ``name`` must come from the hub and the hub cannot be reached."""
    if not hub_reachable():
        why = "offline mode is set (HF_HUB_OFFLINE)" if offline_mode() else "the Hugging Face hub cannot be reached"
        local = "model directory (saved with save_pretrained)" if kind == "model" else "file or directory"
        raise LightftError(
            f"{kind} {name!r} is not a local path, and it cannot be downloaded as a hub id: {why}; "
            f"check the path, or pass an existing {local} with {flag}, or connect to the internet"
        )
