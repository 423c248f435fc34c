"""docker-compose.yml validates against the compose-spec schema (the stand-in for `docker compose config`)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_validates_and_wires_the_whole_stack():
    result = subprocess.run(
        [sys.executable, ".ci/compose_check.py", "docker-compose.yml"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("OK")
    assert "services: web, worker, postgres, redis, etcd, minio, standalone" in result.stdout
