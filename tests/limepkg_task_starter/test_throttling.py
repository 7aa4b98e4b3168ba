"""Failed sign-ins are throttled (django-axes): the admin login and API bearer tokens answer 429
with Retry-After after the limit, per client; a valid token keeps working."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from limepkg_task_starter.models import Application
from limepkg_task_starter.services.tokens import api_token_create

LIMIT = 5
LOGIN = "/admin/login/"
RUN = "/api/v1/applications/demo/runs/no-such-run"


@pytest.fixture(autouse=True)
def limit(settings) -> None:
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture
def admin(db: None) -> User:
    return User.objects.create_superuser("admin", password="right-password-1")


def log_in(client: Client, password: str, username: str = "admin") -> int:
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return response.status_code


def test_the_admin_login_is_locked_after_the_limit_even_for_the_right_password(
    admin: User,
) -> None:
    client = Client(REMOTE_ADDR="203.0.113.7")
    # The failure that reaches the limit is the first one answered 429.
    assert [log_in(client, f"wrong-{i}") for i in range(LIMIT)] == [200] * (LIMIT - 1) + [429]

    response = client.post(LOGIN, {"username": "admin", "password": "right-password-1"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_client_and_user_name(admin: User) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(LIMIT + 2):
        log_in(attacker, f"wrong-{i}")

    elsewhere = Client(REMOTE_ADDR="198.51.100.1")
    assert log_in(elsewhere, "right-password-1") == 302


def test_a_login_below_the_limit_resets_the_count(admin: User) -> None:
    client = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(LIMIT - 1):
        log_in(client, f"wrong-{i}")
    assert log_in(client, "right-password-1") == 302
    client.logout()
    for i in range(LIMIT - 1):
        log_in(client, f"wrong-again-{i}")
    assert log_in(client, "right-password-1") == 302


def test_wrong_bearer_tokens_are_answered_429_after_the_limit_and_a_valid_one_works(
    admin: User,
) -> None:
    Application.objects.create(name="demo", config={})
    _, key = api_token_create(user=admin, name="ci")
    answers = [
        Client(REMOTE_ADDR="203.0.113.7", headers={"Authorization": f"Bearer wrong-{i}"})
        .get(RUN)
        .status_code
        for i in range(LIMIT + 2)
    ]
    assert answers == [401] * (LIMIT - 1) + [429] * 3

    throttled = Client(REMOTE_ADDR="203.0.113.7", headers={"Authorization": "Bearer wrong"})
    response = throttled.get(RUN)
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) > 0
    valid = Client(REMOTE_ADDR="203.0.113.7", headers={"Authorization": f"Bearer {key}"})
    assert valid.get(RUN).status_code == 404  # authenticated: the run does not exist
    other = Client(REMOTE_ADDR="198.51.100.1", headers={"Authorization": "Bearer wrong"})
    assert other.get(RUN).status_code == 401
