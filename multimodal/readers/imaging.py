"""Image decoding and thumbnails, the same rules for ingested items and query images."""
import io
import threading
import warnings
from contextlib import contextmanager

from django.conf import settings
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import UserInputError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# A decoded picture (ingested or a query) is kept no larger than this on its longest side: several
# times what an encoder looks at (CLIP: 224-336 px) and the thumbnails (MULTIMODAL_THUMBNAIL_PX), a
# fraction of a photo's pixels. The original file is kept as it came; only what is held in memory shrinks.
WORKING_SIDE_PX = 1024
# EXIF orientations that turn the picture a quarter (width and height swap once upright).
SIDEWAYS_ORIENTATIONS = {5, 6, 7, 8}


class ImageTooLarge(UserInputError):
    """The image has more pixels than may be decoded."""


class DecodeBusy(RuntimeError):
    """Every query-image decode slot of this process stayed taken for MULTIMODAL_QUERY_IMAGE_DECODE_WAIT_S."""


def image_open(data: bytes, *, name: str = "image") -> Image.Image:
    """Decode ``data`` into an upright RGB image of at most WORKING_SIDE_PX a side (first frame of
    animations, EXIF orientation applied); ``image.info["source_size"]`` keeps the picture's upright size.

    JPEGs are decoded straight at a reduced scale (libjpeg's DCT scaling through Pillow's ``draft``,
    1/2 to 1/8), other formats in full and then shrunk, so a batch of large pictures holds a few MB
    each, not hundreds. Raises UserInputError naming the problem for empty, corrupt or oversized images.
    """
    with _image_errors(name):
        image, source_size = _header_read_reduced(data, name)
        return _decode_reduced(image, source_size)


def query_image_open(data: bytes, *, name: str = "image") -> Image.Image:
    """`image_open` within a query's memory budget.

    What decoding would cost is known from the file's header, before any pixel is decoded: over
    MULTIMODAL_MAX_QUERY_IMAGE_PIXELS decoded pixels (a JPEG counts at its reduced scale) the image is
    refused (ImageTooLarge, a UserInputError naming its size and the limit). At most
    MULTIMODAL_QUERY_IMAGE_DECODES decodes run at once in a process; DecodeBusy if no slot frees up
    within MULTIMODAL_QUERY_IMAGE_DECODE_WAIT_S.
    """
    limit = settings.MULTIMODAL_MAX_QUERY_IMAGE_PIXELS
    with _image_errors(name, query_limit=limit):
        image, (width, height) = _header_read_reduced(data, name)
        decoded_pixels = image.width * image.height
        if decoded_pixels > limit:
            raise ImageTooLarge(f"{name}: the image is {width:,}×{height:,} ({decoded_pixels:,} pixels); query "
                                f"images may have at most {limit:,} pixels (JPEG photos may be larger: they are "
                                f"read at reduced scale)")
        with decode_slot():
            return _decode_reduced(image, (width, height))


def thumbnail_jpeg(image: Image.Image) -> bytes:
    """A JPEG no larger than MULTIMODAL_THUMBNAIL_PX on its longest side."""
    thumb = image.copy()
    size = settings.MULTIMODAL_THUMBNAIL_PX
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def _header_read(data: bytes, name: str) -> Image.Image:
    """The image's header only (Pillow decodes pixels lazily), refused over MULTIMODAL_MAX_IMAGE_PIXELS."""
    if not data:
        raise UserInputError(f"{name}: the file is empty")
    Image.MAX_IMAGE_PIXELS = settings.MULTIMODAL_MAX_IMAGE_PIXELS
    image = Image.open(io.BytesIO(data))
    image.seek(0)
    return image


def _header_read_reduced(data: bytes, name: str) -> tuple[Image.Image, tuple[int, int]]:
    """The image's header (see `_header_read`) set to decode at a reduced scale where its format can
    (JPEG), with the picture's full size."""
    image = _header_read(data, name)
    source_size = image.size
    image.draft("RGB", (WORKING_SIDE_PX, WORKING_SIDE_PX))  # a no-op but for JPEG
    return image, source_size


def _decode_reduced(image: Image.Image, source_size: tuple[int, int]) -> Image.Image:
    """Decode ``image`` upright, in RGB, at most WORKING_SIDE_PX a side, with as few copies of its pixels as that takes."""
    width, height = source_size
    image.load()  # first: a PNG's EXIF may follow its pixels, and getexif() would decode them itself
    if image.getexif().get(ExifTags.Base.Orientation) in SIDEWAYS_ORIENTATIONS:
        width, height = height, width  # the size a person sees, once turned upright
    ImageOps.exif_transpose(image, in_place=True)
    image = image if image.mode == "RGB" else image.convert("RGB")
    # reducing_gap 1: box-average by a whole factor first, then resample the rest (4000 px: 0.2 s, not 0.8)
    image.thumbnail((WORKING_SIDE_PX, WORKING_SIDE_PX), Image.Resampling.BICUBIC, reducing_gap=1.0)
    image.info["source_size"] = (width, height)
    return image


@contextmanager
def _image_errors(name: str, *, query_limit: int | None = None):
    """Pillow's errors (and its decompression-bomb warning) while reading ``name`` become UserInputErrors.

    Pillow refuses images over MULTIMODAL_MAX_IMAGE_PIXELS as it opens them; a query image's
    message names the query limit (``query_limit``) too.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UserInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        message = f"{name}: the image has more than {settings.MULTIMODAL_MAX_IMAGE_PIXELS:,} pixels"
        if query_limit is not None:
            message += f"; query images may have at most {query_limit:,} pixels"
        raise ImageTooLarge(message) from None
    except UnidentifiedImageError:
        raise UserInputError(f"{name}: not an image, or an image format that cannot be read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"{name}: the image is corrupt or truncated ({exc})") from None


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


@contextmanager
def decode_slot():
    """Hold one of the process's MULTIMODAL_QUERY_IMAGE_DECODES slots; DecodeBusy if none frees up in time."""
    global _slots
    count = max(1, settings.MULTIMODAL_QUERY_IMAGE_DECODES)
    with _slots_lock:
        if _slots is None or _slots[0] != count:  # the setting changed (tests): a new set of slots
            _slots = (count, threading.BoundedSemaphore(count))
        semaphore = _slots[1]
    if not semaphore.acquire(timeout=settings.MULTIMODAL_QUERY_IMAGE_DECODE_WAIT_S):
        raise DecodeBusy("the server is busy reading other query images: retry in a few seconds")
    try:
        yield
    finally:
        semaphore.release()
