"""open_clip model names (specs) and what identifies their weights, without importing open_clip or torch.

A spec is ``MODEL:PRETRAINED`` (a tag, a checkpoint path, or ``random``), ``hf-hub:ORG/REPO``, ``local-dir:PATH``
or a bare directory. An ONNX process needs this much to find its cached export; only building the model in
PyTorch needs open_clip itself.
"""
from pathlib import Path

from .base import EncoderLoadError

CONFIG_DIR = Path(__file__).parent / "configs"
# Our own configs (tiny test models); open_clip_backend adds them to open_clip's registry.
LOCAL_CONFIG_NAMES = {path.stem for path in CONFIG_DIR.glob("*.json")}


def spec_parse(spec: str) -> tuple[str, str | None]:
    """Split a spec into open_clip's (model_name, pretrained).

    ``hf-hub:org/repo`` and ``local-dir:/path`` pass through whole; a bare directory becomes
    ``local-dir:``; otherwise ``MODEL:PRETRAINED`` where PRETRAINED is a tag or a checkpoint path,
    or ``random``: the architecture with seeded random weights, for offline speed and memory
    benchmarks at real model size (its rankings are meaningless).
    """
    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    if Path(spec).is_dir():
        return f"local-dir:{spec}", None
    model_name, _, pretrained = spec.partition(":")
    if not pretrained:
        if model_name not in LOCAL_CONFIG_NAMES:
            raise EncoderLoadError(
                f"CLIP model '{spec}' names no weights: use MODEL:PRETRAINED "
                f"(e.g. ViT-B-32:laion2b_s34b_b79k), a checkpoint path, hf-hub:ORG/REPO or local-dir:PATH"
            )
        return model_name, None
    if pretrained == "random":
        return model_name, None
    return model_name, pretrained


def weights_fingerprint(spec: str) -> str:
    """What identifies ``spec``'s weights: the spec, plus the size and time of the files it points at
    (a checkpoint overwritten in place is new weights); tags and hub ids name fixed releases."""
    model_name, pretrained = spec_parse(spec)
    if not (pretrained or model_name.startswith("local-dir:")):
        return spec
    return files_fingerprint(spec, Path(pretrained) if pretrained else Path(model_name.removeprefix("local-dir:")))


def files_fingerprint(spec: str, local: Path) -> str:
    """``spec`` plus the name, size and time of each file at ``local`` (a file or a folder), if it exists."""
    if not local.exists():
        return spec
    files = sorted(local.rglob("*")) if local.is_dir() else [local]
    return spec + "".join(f"|{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
                          for path in files if path.is_file())
