import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...encoders import EncoderLoadError
from ...encoders.onnx_cache import MANIFEST, export_folder, manifest_read
from ...encoders.runtime import PRECISIONS


class Command(BaseCommand):
    help = (
        "Export a CLIP model's text and image towers to ONNX for MULTIMODAL_ENCODER_RUNTIME=onnx, into "
        "MULTIMODAL_ENCODER_CACHE_DIR, and measure them against PyTorch fp32 (int8 and fp16 are made from the fp32 "
        "export). A process that needs a missing export runs this command itself, in a child process, so its own "
        "memory stays at the encoder's; run it ahead (e.g. while deploying) to keep that minute off the first "
        "request. An export already made for the same model, precision and settings is kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("spec", nargs="?", default=None,
                            help="the model, as MULTIMODAL_CLIP_MODEL names it (default: MULTIMODAL_CLIP_MODEL)")
        parser.add_argument("--precision", choices=PRECISIONS, default=None,
                            help="default: MULTIMODAL_ENCODER_PRECISION")
        parser.add_argument("--device", default=None, help="default: MULTIMODAL_DEVICE")
        parser.add_argument("--cache-dir", type=Path, default=None, help="default: MULTIMODAL_ENCODER_CACHE_DIR")

    def handle(self, *args, spec, precision, device, cache_dir, **options):
        if cache_dir is not None:
            settings.MULTIMODAL_ENCODER_CACHE_DIR = cache_dir
        spec = spec or settings.MULTIMODAL_CLIP_MODEL
        precision = precision or settings.MULTIMODAL_ENCODER_PRECISION
        device = device or settings.MULTIMODAL_DEVICE
        started = time.perf_counter()
        cache = Path(settings.MULTIMODAL_ENCODER_CACHE_DIR)
        try:  # before the minute of loading: a cache it cannot write fails at once
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot write the export cache {cache} (MULTIMODAL_ENCODER_CACHE_DIR): {exc}") from None

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.perf_counter() - started:6.1f} s] {message}")
            self.stdout.flush()

        try:
            folder = export_folder(spec, precision)
            if not (folder / MANIFEST).exists():  # else kept as it is, without loading torch to say so
                progress(f"{spec} at {precision}: loading PyTorch, the model's library and the exporter")
                from ...encoders.onnx_export import export_ensure

                folder = export_ensure(spec, precision, device=device, on_step=progress)
        except EncoderLoadError as exc:
            raise CommandError(str(exc)) from None
        agreement = manifest_read(folder)["agreement"]
        progress(f"ready: {folder} (cosine to PyTorch fp32, min: text {agreement['text']['min']:.4f}, "
                 f"image {agreement['image']['min']:.4f})")
