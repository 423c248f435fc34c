"""Ingest reads and decodes the next batch while the model encodes the current one."""
import threading

import pytest

from multimodal import encoders
from multimodal.models import Corpus
from multimodal.services.ingest import Source, items_ingest
from multimodal.services.jobs import job_create_from_paths, job_run

from ..conftest import DeterministicEncoder, image_bytes

pytestmark = pytest.mark.django_db
WAIT_S = 5.0


class WatchingEncoder(DeterministicEncoder):
    """The deterministic encoder, which notes, as it encodes a batch, whether the next one is being read."""

    name = "test-watching"
    next_batch_read = threading.Event()

    def __init__(self):
        self.overlapped: list[bool] = []
        self.images_encoded = 0

    def encode_image(self, images):
        # Without overlap the next batch is read only after this returns: the wait runs out.
        self.overlapped.append(self.next_batch_read.wait(WAIT_S))
        self.images_encoded += len(images)
        return super().encode_image(images)


@pytest.fixture
def watching_encoder(settings):
    WatchingEncoder.next_batch_read.clear()
    encoders.register(WatchingEncoder.name, WatchingEncoder)
    settings.MULTIMODAL_CLIP_MODEL = WatchingEncoder.name
    yield encoders.get(WatchingEncoder.name)
    encoders.unregister(WatchingEncoder.name)


def test_the_next_batch_is_decoded_while_one_is_encoded_and_a_corrupt_file_fails_alone(watching_encoder, tmp_path):
    def source(name: str, data: bytes, *, last_batch: bool = False) -> Source:
        def read() -> bytes:
            if last_batch:
                WatchingEncoder.next_batch_read.set()
            return data

        return Source(name=name, read=read, size=len(data))

    sources = [source("red.png", image_bytes((250, 10, 10))), source("green.png", image_bytes((10, 250, 10))),
               source("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", last_batch=True),
               source("blue.png", image_bytes((10, 10, 250)), last_batch=True)]
    report = items_ingest(corpus=Corpus.objects.create(name="shop"), sources=sources, batch_size=2)

    assert watching_encoder.overlapped[0], "the second batch was read only after the first was encoded"
    assert report.landed == 3
    assert [(failure.name, failure.reason) for failure in report.failures] == [
        ("broken.jpg", "the image is corrupt or truncated (Truncated File Read)")]

    # A job (how uploads and `manage.py ingest` run) overlaps its batches too, and takes each file once.
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name, colour in (("a.png", (200, 0, 0)), ("b.png", (0, 200, 0)), ("c.png", (0, 0, 200))):
        (folder / name).write_bytes(image_bytes(colour))
    watching_encoder.images_encoded = 0
    job = job_run(job_id=job_create_from_paths(corpus=Corpus.objects.create(name="job"), paths=[str(folder)]).pk,
                  batch_size=1)
    assert (job.status, job.done, job.failed) == ("done", 3, 0)
    assert watching_encoder.images_encoded == 3
