"""Production settings come from the environment, and docker-compose.yml's are clean (issue 17, point 2).

`manage.py check --deploy` runs here with exactly the environment compose gives the web service (only the
data directory moved to a temporary folder), so a warning no variable can fix cannot come back unnoticed.
"""
import importlib.util
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose_web_environment() -> dict[str, str]:
    """services.web.environment of docker-compose.yml, interpolated as Compose does (.ci/compose_check.py)."""
    spec = importlib.util.spec_from_file_location("compose_check", ROOT / ".ci" / "compose_check.py")
    compose_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compose_check)
    raw = yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=compose_check.UniqueKeyLoader)
    required = {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "POSTGRES_PASSWORD": "compose-check"}
    doc = compose_check.Interpolator(env=required).walk(raw)
    return {name: str(value) for name, value in doc["services"]["web"]["environment"].items()}


def _manage(args: list[str], environment: dict[str, str], tmp_path: Path, *, code: str = "") -> subprocess.CompletedProcess:
    """manage.py ARGS in a fresh process with only ``environment`` (plus PATH), data under ``tmp_path``."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **environment,
           "MULTIMODAL_DATA_DIR": str(tmp_path / "data"), "HF_HOME": str(tmp_path / "hf"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, "manage.py", *args] + (["-c", code] if code else [])
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_check_deploy_is_clean_with_the_environment_docker_compose_gives_the_site(tmp_path):
    environment = _compose_web_environment()
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], environment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


_REQUESTS = """
import json
from django.conf import settings
from django.test import Client
plain = Client().get("/admin/login/")
secure = Client().get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "secure": [secure.status_code, secure.get("Strict-Transport-Security"),
               secure.cookies[settings.CSRF_COOKIE_NAME]["secure"]],
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
}))
"""


def test_https_settings_come_from_the_environment(tmp_path):
    environment = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "testserver",
        "DJANGO_SECURE_SSL_REDIRECT": "1", "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "DJANGO_SECURE_HSTS_SECONDS": "600", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "DJANGO_SECURE_HSTS_PRELOAD": "1", "DJANGO_SESSION_COOKIE_SECURE": "1", "DJANGO_CSRF_COOKIE_SECURE": "1",
    }
    result = _manage(["shell"], environment, tmp_path, code=_REQUESTS)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://testserver/admin/login/"]  # plain http goes to https
    assert seen["secure"] == [200, "max-age=600; includeSubDomains; preload", True]
    assert seen["session_cookie_secure"] is True


def test_a_malformed_proxy_header_setting_is_refused_with_what_to_write(tmp_path):
    result = _manage(["check"], {"DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER='X-Forwarded-Proto'" in result.stderr
    assert "HTTP_X_FORWARDED_PROTO,https" in result.stderr


@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs"])
def test_the_admin_and_the_api_docs_have_a_content_security_policy(client, path):
    """Scripts from this site's static files only, as on every other page (tests/browser checks they still work)."""
    response = client.get(path)
    assert response.status_code == 200
    policy = [part.strip() for part in response["Content-Security-Policy"].split(";")]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy and "base-uri 'none'" in policy
