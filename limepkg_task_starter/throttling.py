"""Throttling of failed sign-ins, counted by django-axes: the admin login and API bearer tokens.

A client that has failed too often is answered 429 with ``Retry-After`` until the cool-off has
passed (settings: ``AXES_FAILURE_LIMIT``, ``AXES_COOLOFF_TIME``, from ``LOGIN_FAILURE_LIMIT`` and
``LOGIN_COOLOFF_SECONDS``).
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# Wrong API tokens are counted as sign-ins of one pseudo user, so per client address.
API_TOKEN_CREDENTIALS = {"username": "API bearer token"}
TOO_MANY_FAILURES = "Too many failed sign-ins from this address: try again in {wait}."


class ThrottledError(Exception):
    """Too many wrong tokens from this client: answer 429 and say when to retry."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(TOO_MANY_FAILURES.format(wait=_in_words(retry_after)))
        self.retry_after = retry_after


def retry_after_seconds(request: HttpRequest) -> int:
    cool_off = get_cool_off(request)
    return max(int(cool_off.total_seconds()), 1) if cool_off else 3600


def api_token_refused(request: HttpRequest) -> None:
    """Count a wrong bearer token; raises :class:`ThrottledError` from the failure that reaches
    the limit on, as the admin login does. Called only for a token that was not found, so a
    valid one always works."""
    if not AxesProxyHandler.is_locked(request, API_TOKEN_CREDENTIALS):
        user_login_failed.send(sender=__name__, credentials=API_TOKEN_CREDENTIALS, request=request)
    if AxesProxyHandler.is_locked(request, API_TOKEN_CREDENTIALS):
        raise ThrottledError(retry_after_seconds(request))


def locked_out(request: HttpRequest, *_: Any) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the admin login's answer to a locked-out client."""
    retry_after = retry_after_seconds(request)
    response = render(
        request,
        "task_starter/locked_out.html",
        {
            **admin.site.each_context(request),
            "title": "Too many failed sign-ins",
            "wait": _in_words(retry_after),
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def _in_words(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
