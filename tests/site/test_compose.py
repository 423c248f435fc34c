"""docker-compose.yml validates against the compose-spec schema (the stand-in for `docker compose config`)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_validates_and_wires_the_whole_stack():
    result = subprocess.run(
        [sys.executable, ".ci/compose_check.py", "docker-compose.yml"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")
    assert "services: proxy, web, worker, postgres, redis, etcd, minio, standalone" in result.stdout


def test_only_the_tls_proxy_is_published_and_it_leaves_media_to_django():
    """web is reached through `proxy` (which sets X-Forwarded-Proto itself), never directly: the proxy header
    Django trusts cannot come from a client. No service serves the media volume with its own, weaker, headers."""
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    assert "reverse-proxy" in services["proxy"]["command"] and "web:8000" in services["proxy"]["command"]
    assert "ports" not in services["web"]
    assert services["web"]["environment"]["DJANGO_SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO,https"
    assert services["web"]["environment"].get("MULTIMODAL_SERVE_MEDIA", "1") == "1"
    for name, service in services.items():
        if name not in ("web", "worker"):
            assert not any("app-data" in str(volume) for volume in service.get("volumes", [])), name
