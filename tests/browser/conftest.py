"""Real headless Chromium (Debian's, driven by Playwright) against a live server with a small corpus.

The live server runs in this process (threads), so the deterministic encoder registered by the
fixtures serves its searches, and each test's media folder and Milvus Lite directory apply to it.
"""
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from multimodal import encoders, store
from multimodal.models import Corpus, Item
from multimodal.readers.audio import SAMPLE_RATE, clock, wav_encode
from multimodal.services.embedding import EmbedInput, inputs_encode, item_vector_record
from multimodal.services.jobs import job_create_from_paths, job_run

from ..conftest import ingest_files

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# As root Chromium needs --no-sandbox; the rest keep it off the (closed) network and quiet.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
XSS_TITLE = '<img src=x onerror="window.__xss = 1">Bike <b>bold</b> "quoted"'
XSS_TEXT = "<script>window.__xss = 2</script> a red bicycle note <img src=y onerror=\"window.__xss = 3\">"


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, except that media goes through the site's own view.

    Django's test server answers /media/ itself with a plain file handler that does not offer
    byte ranges, so an <audio> element could not seek there; the site's view does (as nginx would).
    """
    from django.test import testcases
    from pytest_django.live_server_helper import LiveServer

    media_handler = testcases._MediaFilesHandler
    testcases._MediaFilesHandler = lambda application: application
    try:
        server = LiveServer(request.config.getvalue("liveserver") or "localhost")
    finally:
        testcases._MediaFilesHandler = media_handler
    yield server
    server.stop()


@pytest.fixture(scope="package")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is not installed (apt-get install -y chromium; .ci/run does this)"
    # Playwright's sync API keeps an event loop in this thread; Django's ORM refuses to run beside
    # one unless told that this thread only ever uses it synchronously (true for these tests).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as driver:
        yield driver
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def chromium_launch(driver, *extra_args: str):
    return driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args))


@pytest.fixture(scope="package")
def browser(playwright_driver):
    browser = chromium_launch(playwright_driver)
    yield browser
    browser.close()


class PageProblems:
    """Uncaught script errors and Content-Security-Policy violations seen by a page."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)

    def _console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(f"CSP: {message.text}")


def page_open(browser, live_server, **context_args):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, **context_args)
    # Generous: CI shares two cores among Chromium, the live server and Milvus, and a page that loads in
    # a second here once stalled past 15 s there. A failure still names the step that did not happen.
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.problems = PageProblems(page)
    return context, page


@pytest.fixture
def page(browser, live_server):
    context, page = page_open(browser, live_server)
    yield page
    problems = page.problems.errors
    context.close()
    assert not problems, problems


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """A PNG under test-artifacts/screenshots/ for people to look at: the whole page, or only what a screen shows
    (Chromium drops touch emulation while it takes a whole-page picture, so a phone's view is taken as seen)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# Every visible text against the background it is drawn on (WCAG 2 relative luminance): 4.5:1, or 3:1
# for large text (24 px, or bold 18.66 px).
_CONTRAST_CHECK = """() => {
  const channel = (value) => { value /= 255; return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4; };
  const parse = (colour) => (colour.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const [r, g, b, a = 1] = parse(getComputedStyle(node).backgroundColor);
      if (a > 0.5) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const node = text.parentElement;
    if (!text.textContent.trim() || !node.checkVisibility() || node.closest('.visually-hidden, audio')) continue;
    const style = getComputedStyle(node);
    const fg = parse(style.color), bg = background(node);
    const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) failures.push(`${ratio.toFixed(2)} < ${needed}: "${text.textContent.trim().slice(0, 40)}" (${style.color} on rgb(${bg}))`);
  }
  return failures;
}"""


def contrast_failures(page) -> list[str]:
    """The texts on the page whose colour fails WCAG AA contrast, each with its ratio and colours."""
    return page.evaluate(_CONTRAST_CHECK)


# WCAG 2.0–2.2 A and AA (target size is 2.2 AA) and the best practices that say a page has one h1 and main landmark.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                      "best-practice"]},
               "resultTypes": ["violations"]}


def axe_violations(page, *, impacts=("serious", "critical"), also=("page-has-heading-one",)) -> list[str]:
    """What axe-core (run in the page) finds at these impacts, and the rules in ``also`` at any impact, one line
    each: rule, impact, the first offending element and axe's summary of the fix."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS).response
    return [f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary']}"
            for violation in results["violations"] if violation["impact"] in impacts or violation["id"] in also
            for node in violation["nodes"][:1]]


def search_ready(page, path: str = "/"):
    page.goto(path)
    page.wait_for_selector("#search-form[data-ready=true]", state="attached")


# ------------------------------------------------------------------------------- the corpus

def picture(colour, accent, shape: str, size=(320, 240)) -> bytes:
    """A PNG mostly of ``colour`` (the deterministic encoder sees the mean colour) with a drawn shape."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    width, height = size
    if shape == "wheels":
        for cx in (width * 0.3, width * 0.7):
            draw.ellipse((cx - 45, height * 0.55 - 45, cx + 45, height * 0.55 + 45), outline=accent, width=8)
        frame = (width * 0.3, height * 0.55, width * 0.5, height * 0.3, width * 0.7, height * 0.55)
        draw.line(frame, fill=accent, width=8)
    elif shape == "sun":
        draw.ellipse((width * 0.6, 30, width * 0.6 + 70, 100), fill=accent)
        draw.polygon([(0, height), (width * 0.35, height * 0.45), (width * 0.7, height)], fill=accent)
    else:
        draw.rectangle((width * 0.3, height * 0.25, width * 0.7, height * 0.8), outline=accent, width=10)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def solid_png(colour, size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def tone_wav(seconds: float) -> bytes:
    """A real (quiet, two-tone) WAV recording of ``seconds``."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return wav_encode(0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t))


def segment_add(recording: Item, *, start_s: float, end_s: float, text: str) -> Item:
    """A segment of ``recording``, with its text vector in the store, made directly (as audio ingest would,
    without transcribing: most tests only need an audio card on the page; one ingests real speech)."""
    segment = Item.objects.create(
        corpus=recording.corpus, kind=Item.Kind.SEGMENT, parent=recording, start_s=start_s, end_s=end_s,
        title=f"{recording.title} {clock(start_s)}–{clock(end_s)}", text=text,
        content_hash=f"{recording.content_hash}:{start_s}",
    )
    encoder = encoders.get()
    vectors, errors = inputs_encode([EmbedInput(key=(segment.pk, "text"), text=text)], encoder=encoder)
    assert not errors, errors
    collection = store.collection_for(encoder)
    collection.upsert([item_vector_record(segment, "text", vectors[(segment.pk, "text")])])
    collection.flush()
    return segment


@pytest.fixture
def site(deterministic_encoder, tmp_path):
    """A small corpus: pictures, notes, a product table, a recording with segments, and hostile titles."""
    from django.core.files.base import ContentFile

    corpus = Corpus.objects.create(name="demo")
    ingest_files(corpus, {
        "red bicycle.png": picture((200, 30, 40), (255, 230, 230), "wheels"),
        "green meadow.png": picture((40, 150, 60), (250, 220, 60), "sun"),
        "blue door.png": picture((30, 70, 190), (230, 235, 255), "frame"),
        "red wall.png": picture((170, 50, 40), (120, 30, 20), "frame"),
        "bicycle note.txt": b"A red bicycle leaning against a brick wall, its basket full of tulips.",
        "chair note.txt": b"A green chair by the window, where the cat sleeps in the afternoon sun.",
        "xss.txt": XSS_TEXT.encode(),
    })
    Item.objects.filter(kind=Item.Kind.TEXT, text__startswith="<script>").update(title=XSS_TITLE)
    table = tmp_path / "catalogue.csv"
    table.write_text(
        "id,title,description,specs\n"
        'SKU-CH-01,Oak chair,A solid oak chair with a green cushion,"colour: green; material: oak; height: 92 cm"\n'
        'SKU-BK-07,City bicycle,A red city bicycle with a basket and lights,"colour: red; frame: steel; gears: 7"\n'
    )
    job_run(job_id=job_create_from_paths(corpus=corpus, paths=[str(table)]).pk)
    recording = Item(corpus=corpus, kind=Item.Kind.AUDIO, title="Design podcast", content_hash="recording-1")
    recording.file.save("design-podcast.wav", ContentFile(tone_wav(12.0)), save=False)
    recording.save()
    segment_add(recording, start_s=0.0, end_s=4.0, text="welcome to the design podcast")
    segment_add(recording, start_s=5.0, end_s=9.5, text="today a blue chair and a blue wall")
    return corpus
