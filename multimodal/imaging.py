"""Image decoding and thumbnails, the same rules for ingested items and query images."""
import io
import warnings

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserInputError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def image_open(data: bytes, *, name: str = "image") -> Image.Image:
    """Decode ``data`` into an upright RGB image (first frame of animations, EXIF orientation applied).

    Raises UserInputError naming the problem for empty, corrupt or oversized images.
    """
    if not data:
        raise UserInputError(f"{name}: the file is empty")
    Image.MAX_IMAGE_PIXELS = settings.MULTIMODAL_MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            image.load()
            image = ImageOps.exif_transpose(image)
            return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserInputError(
            f"{name}: the image has more than {settings.MULTIMODAL_MAX_IMAGE_PIXELS:,} pixels"
        ) from None
    except UnidentifiedImageError:
        raise UserInputError(f"{name}: not an image, or an image format that cannot be read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserInputError(f"{name}: the image is corrupt or truncated ({exc})") from None


def thumbnail_jpeg(image: Image.Image) -> bytes:
    """A JPEG no larger than MULTIMODAL_THUMBNAIL_PX on its longest side."""
    thumb = image.copy()
    size = settings.MULTIMODAL_THUMBNAIL_PX
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()
