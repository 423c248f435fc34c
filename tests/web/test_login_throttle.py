"""Guessing is throttled: wrong admin passwords lock a username from an address (django-axes), and
bad API tokens get an address 429s, good tokens included, until its window passes."""
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client

from multimodal.models import ApiToken, Corpus, IngestJob

from ..live_services import ROOT, redis_server

pytestmark = pytest.mark.django_db
PASSWORD = "pw-admin-correct-1"


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", password=PASSWORD)


def _login(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def _logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_fifty_wrong_admin_passwords_lock_that_username_from_that_address(admin_user):
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [_login(attacker, "root", f"guess-{attempt}").status_code for attempt in range(50)]
    assert statuses[:4] == [200] * 4  # the login form again, with its error
    assert statuses[4:] == [429] * 46  # locked at the 5th wrong password (MULTIMODAL_LOGIN_FAILURE_LIMIT)
    locked = _login(attacker, "root", PASSWORD)
    page = locked.content.decode()
    assert locked.status_code == 429 and "Try again in 15 minutes" in page and "5 wrong passwords" in page
    assert locked["Retry-After"] == "900"
    assert not _logged_in(attacker)  # the right password does not get in while locked
    # The lock is for this username from this address: the real admin elsewhere still logs in, and
    # other usernames from the attacker's address are still asked for their password.
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    assert _login(elsewhere, "root", PASSWORD).status_code == 302 and _logged_in(elsewhere)
    assert _login(attacker, "someone-else", "guess").status_code == 200


def test_the_lock_ends_after_the_cool_off_and_a_good_login_clears_the_count(admin_user):
    client = Client(REMOTE_ADDR="203.0.113.8")
    for attempt in range(4):
        assert _login(client, "root", f"typo-{attempt}").status_code == 200
    assert _login(client, "root", PASSWORD).status_code == 302  # 4 typos and then right: in, count cleared
    client.logout()
    for attempt in range(4):
        assert _login(client, "root", f"typo-{attempt}").status_code == 200  # 4 more are not a lock
    assert _login(client, "root", "typo-4").status_code == 429
    assert "Try again in 15 minutes" in _login(client, "root", PASSWORD).content.decode()
    # 16 minutes pass (the attempts' clock is moved back rather than waiting).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert _login(client, "root", PASSWORD).status_code == 302 and _logged_in(client)


@pytest.fixture
def staff_key(django_user_model):
    staff = django_user_model.objects.create_user("robot", password="pw-robot-123", is_staff=True)
    return ApiToken.issue(user=staff)[1]


def test_two_hundred_bad_tokens_get_429_naming_the_wait_even_for_a_good_token(staff_key):
    job = IngestJob.objects.create(corpus=Corpus.objects.create(name="c"))
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    answers = [guesser.get(f"/api/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer guess-{attempt}") for attempt in range(200)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429] * 180  # MULTIMODAL_TOKEN_FAILURE_LIMIT
    refused = answers[-1]
    wait_s = int(refused["Retry-After"])
    assert 590 <= wait_s <= 600
    assert refused.json() == {"error": f"too many bad API tokens from your address: try again in {wait_s} s"}
    good_from_there = guesser.get(f"/api/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {staff_key}")
    assert good_from_there.status_code == 429 and "try again in" in good_from_there.json()["error"]
    elsewhere = Client(REMOTE_ADDR="198.51.100.3")
    assert elsewhere.get(f"/api/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {staff_key}").status_code == 403
    # (403: the token is good; this staff user may not see a job it did not start.)


def test_a_forged_forwarded_for_header_does_not_escape_the_token_limit(staff_key, settings):
    settings.MULTIMODAL_TOKEN_FAILURE_LIMIT = 3
    guesser = Client(REMOTE_ADDR="203.0.113.10")
    statuses = [guesser.get("/api/jobs/1", HTTP_AUTHORIZATION="Bearer guess",
                            HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}").status_code for attempt in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429]


def test_bad_tokens_on_searches_count_too_and_the_block_is_a_429_not_a_500(staff_key, settings, deterministic_encoder):
    settings.MULTIMODAL_TOKEN_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR="203.0.113.13")
    answers = [client.get("/api/search", {"q": "red"}, HTTP_AUTHORIZATION="Bearer guess") for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]  # searching needs no token
    assert answers[-1].json()["error"].startswith("too many bad API tokens from your address: try again in")
    good = client.post("/api/search", {"q": "red"}, HTTP_AUTHORIZATION=f"Bearer {staff_key}")
    assert good.status_code == 429 and int(good["Retry-After"]) > 500
    assert client.get("/api/search", {"q": "red"}).status_code == 200  # without a token it is a visitor's search


def test_the_token_block_ends_with_its_window(staff_key, settings):
    settings.MULTIMODAL_TOKEN_FAILURE_LIMIT, settings.MULTIMODAL_TOKEN_FAILURE_WINDOW_S = 2, 2
    client = Client(REMOTE_ADDR="203.0.113.11")
    assert [client.get("/api/jobs/1", HTTP_AUTHORIZATION="Bearer guess").status_code for _ in range(3)] == [401, 401, 429]
    time.sleep(2.2)
    assert client.get("/api/jobs/1", HTTP_AUTHORIZATION=f"Bearer {staff_key}").status_code == 404


def test_with_cache_url_every_process_sees_the_block(staff_key, settings, tmp_path):
    """With CACHE_URL (Redis) the count is shared: another web process refuses the address too."""
    with redis_server() as url:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
        settings.MULTIMODAL_TOKEN_FAILURE_LIMIT = 3
        client = Client(REMOTE_ADDR="203.0.113.12")
        assert [client.get("/api/jobs/1", HTTP_AUTHORIZATION="Bearer guess").status_code for _ in range(4)] == [
            401, 401, 401, 429]
        other_process = subprocess.run(
            [sys.executable, "-c", (
                "import django; django.setup()\n"
                "from multimodal.web.auth import TokenThrottled, token_user_for_key\n"
                "try:\n    token_user_for_key('anything', ip='203.0.113.12')\n"
                "except TokenThrottled as exc:\n    print('refused:', exc)\n")],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "searchsite.settings", "CACHE_URL": url,
                 "MULTIMODAL_DATA_DIR": str(tmp_path / "other")},
        )
        assert "refused: too many bad API tokens from your address" in other_process.stdout, other_process.stderr
