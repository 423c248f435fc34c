"""Staff upload files in the browser and watch the job's progress bar move to done."""
import time

import pytest

from multimodal import encoders
from multimodal.models import IngestJob

from ..conftest import UPLOADER_PERMISSIONS, DeterministicEncoder, permissions_grant
from ..live_services import wait_until
from .conftest import contrast_failures, picture, screenshot

pytestmark = pytest.mark.django_db(transaction=True)
SLOW = "test-slow-deterministic"


class SlowEncoder(DeterministicEncoder):
    """The deterministic encoder, a quarter of a second per image: slow enough to watch a job run."""

    name = SLOW

    def encode_image(self, images):
        time.sleep(0.25 * len(images))
        return super().encode_image(images)


@pytest.fixture
def staff_page(browser, live_server, django_user_model, client, settings):
    from .conftest import page_open

    user = django_user_model.objects.create_user("editor", password="pw-editor-123", is_staff=True)
    permissions_grant(user, *UPLOADER_PERMISSIONS)
    client.force_login(user)
    context, page = page_open(browser, live_server)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])
    yield page
    problems = page.problems.errors
    context.close()
    assert not problems, problems


def test_an_upload_runs_as_a_job_whose_bar_moves_live_and_failures_are_listed(staff_page, settings):
    page = staff_page
    encoders.register(SLOW, SlowEncoder)
    settings.MULTIMODAL_CLIP_MODEL = SLOW
    settings.MULTIMODAL_JOBS_IN_THREAD = True  # as in production: the request returns, the job runs beside it
    settings.MULTIMODAL_ENCODE_BATCH_SIZE = 1
    try:
        page.goto("/upload")
        page.fill("#id_corpus", "photos")
        files = [{"name": f"photo-{index}.png", "mimeType": "image/png",
                  "buffer": picture((40 * index, 90, 200 - 20 * index), (255, 255, 255), "sun")} for index in range(8)]
        files.append({"name": "broken.png", "mimeType": "image/png", "buffer": b"not really a png"})
        page.set_input_files("#id_files", files=files)
        assert page.locator("#file-summary").inner_text().startswith("9 files")
        page.click("details summary")
        assert contrast_failures(page) == []
        screenshot(page, "13-upload-form")
        page.click(".upload-form button[type=submit]")
        page.wait_for_url("**/jobs/*")
        bar = page.locator("#job-progress")
        page.wait_for_function("bar => bar.value > 0 && bar.value < bar.max", arg=bar.element_handle())
        assert page.locator("[data-field=status]").text_content() == "running"
        screenshot(page, "14-job-running")
        page.wait_for_function("() => document.querySelector('[data-field=status]').textContent === 'done'",
                               timeout=30_000)
        assert bar.evaluate("bar => [bar.value, bar.max]") == [9, 9]
        assert page.locator("[data-field=percent]").inner_text() == "100%"
        assert page.locator("[data-field=done]").inner_text() == "8"
        assert page.locator("[data-field=failed]").inner_text() == "1"
        failure = page.locator("[data-field=failures] tr")
        assert failure.count() == 1 and "broken.png" in failure.inner_text()
        assert contrast_failures(page) == []
        screenshot(page, "15-job-done")
    finally:
        # The job runs in a thread of this process: let it end before its encoder goes away.
        wait_until(lambda: not IngestJob.objects.filter(status__in=["queued", "running"]).exists(),
                   timeout_s=60, what="the ingest job ending")
        encoders.unregister(SLOW)
