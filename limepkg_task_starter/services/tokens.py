"""API tokens: only a hash is stored; the key is shown once, when it is made."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from limepkg_task_starter.models import ApiToken


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user: Any, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; the key is returned once and only its hash is stored."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=api_token_hash(key))
    return token, key
