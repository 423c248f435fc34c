"""`manage.py bench_readers`: each reader beside its bare tool on the same generated inputs, and the same PDF
ingested end to end, with the real pypdfium2, Tesseract, PyAV, tiny-random CLIP and Milvus Lite."""
import io
import re
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal.models import Corpus

from ..live_services import ROOT

pytestmark = pytest.mark.django_db

UNITS = {"documents": "pages/s", "ocr": "s/page", "video": "x real time", "ingest": "pages/s"}


def _bench(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("bench_readers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_bench_readers_prints_every_step_beside_its_bare_tool_and_leaves_no_corpus():
    kept = Corpus.objects.create(name="someone's corpus")
    printed, progress = _bench("--pages", "3", "--repeats", "1", "--video-seconds", "4", "--ocr-lines", "4")
    rows = {}
    for step, unit in UNITS.items():
        found = re.search(rf"^{step} +([\d.]+) +([\d.]+) +([\d.]+)  {re.escape(unit)} ", printed, re.MULTILINE)
        assert found, f"no {step} row in:\n{printed}"
        rows[step] = tool, bare, ratio = tuple(map(float, found.groups()))
        assert tool > 0 and bare > 0 and ratio > 0
    assert "[4/4] ingest: ratio" in progress
    # The ratio is the tool's speed over the bare tool's: for a cost (s/page) that is bare / tool.
    assert rows["documents"][2] == pytest.approx(rows["documents"][0] / rows["documents"][1], rel=0.05)
    assert rows["ocr"][2] == pytest.approx(rows["ocr"][1] / rows["ocr"][0], rel=0.05)
    assert "3-page PDF into a throw-away corpus" in printed and "4.0 s video of 640x360" in printed
    passages = int(re.search(r"^ingest: (\d+) passages per document; 0 of 3 pages read by OCR$", printed,
                             re.MULTILINE).group(1))
    assert passages >= 3  # every page holds at least one passage
    assert re.search(r"^machine: \d+ cores usable of \d+, .* load average 1/5/15 min [\d.]+ / [\d.]+ / [\d.]+",
                     printed, re.MULTILINE)
    assert "encoder: open_clip:tiny-random" in printed
    assert list(Corpus.objects.values_list("name", flat=True)) == [kept.name]


def test_bench_readers_runs_only_the_steps_asked_for_and_refuses_unknown_ones():
    printed, _ = _bench("--only", "video", "--repeats", "1", "--video-seconds", "3")
    assert re.search(r"^video +[\d.]+ +[\d.]+ +[\d.]+  x real time ", printed, re.MULTILINE)
    assert not re.search(r"^(documents|ocr|ingest) ", printed, re.MULTILINE) and "encoder:" not in printed
    with pytest.raises(CommandError, match="--only: use some of documents, ocr, video, ingest"):
        _bench("--only", "documents,audio")


def test_bench_readers_has_help():
    result = subprocess.run([sys.executable, "manage.py", "bench_readers", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for option in ("--pages", "--repeats", "--video-seconds", "--ocr-lines", "--only"):
        assert option in result.stdout
