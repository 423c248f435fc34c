"""Small adapters on a frozen encoder's unit embeddings: the network, its training, its file.

No Django here: vectors in, `AdapterWeights` out (`adapter_fit`). The product side (which pairs, where
the file goes, how an adapter reaches the index) is `multimodal.services.adapter_training` and
`multimodal.services.adapter_activation`; the `multimodal.models.Adapter` row records one.

An adapter has a head per side it adapts ("image", "text"); a side without a head passes through
unchanged. A head is residual and renormalised, ``y = normalise(x + f(x))``, with ``f`` either
linear (``W x + b``) or a two-layer MLP (``W2 gelu(W1 x + b1) + b2``). The last layer of ``f``
starts at zero, so an untrained adapter is exactly the identity: "before" figures are those of the
base encoder, and weight decay pulls an adapter back towards it rather than towards zero.

Training is CLIP's own objective on the pairs: a symmetric InfoNCE loss (cross-entropy of each
text against every image of its batch and the reverse) at a fixed temperature, AdamW, on CPU.
Vectors are the encoder's stored outputs, so an epoch over a few thousand 512-d pairs takes
milliseconds and the encoder is never run.

Applying an adapter is two small matrix products in numpy; torch is imported by training alone.
The file is a ``.npz`` of plain arrays, loaded without pickle.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .metrics import vector_retrieval_metrics

SIDES = ("image", "text")
KINDS = ("linear", "mlp")
DIRECTIONS = {"text_to_image": ("text", "image"), "image_to_text": ("image", "text")}
_GELU_C = math.sqrt(2.0 / math.pi)
# A few hundred pairs in batches of 256 would make one step an epoch: smaller batches then, so
# every epoch takes several steps (each still with enough in-batch negatives to learn from).
MIN_STEPS_PER_EPOCH = 8
MIN_BATCH = 32


class AdapterError(ValueError):
    """Training cannot start (too few pairs, bad settings) or a file is not an adapter."""


@dataclass(frozen=True)
class TrainingConfig:
    kind: str = "mlp"
    sides: tuple[str, ...] = SIDES
    hidden: int = 256  # MLP width
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.05
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise AdapterError(f"adapter kind '{self.kind}' is not one of {', '.join(KINDS)}")
        if not self.sides or set(self.sides) - set(SIDES):
            raise AdapterError(f"adapter sides must be some of {', '.join(SIDES)}, not {', '.join(self.sides) or 'none'}")
        for name in ("epochs", "batch_size", "hidden"):
            if getattr(self, name) < 1:
                raise AdapterError(f"{name} must be at least 1")
        if not 0 < self.temperature <= 1 or self.learning_rate <= 0 or self.weight_decay < 0:
            raise AdapterError("temperature must be in (0, 1], learning_rate > 0 and weight_decay >= 0")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["sides"] = list(self.sides)
        return out


@dataclass
class AdapterWeights:
    """Trained heads as numpy arrays: ``heads[side]`` maps a parameter name to its array."""

    kind: str
    heads: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def apply(self, vectors: np.ndarray, side: str) -> np.ndarray:
        """``vectors`` (n, dim) of one side, adapted and L2-normalised (rows of a side without a head unchanged)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        head = self.heads.get(side)
        if head is None:
            return vectors
        if self.kind == "linear":
            delta = vectors @ head["weight"].T + head["bias"]
        else:
            hidden = vectors @ head["weight1"].T + head["bias1"]
            hidden = 0.5 * hidden * (1.0 + np.tanh(_GELU_C * (hidden + 0.044715 * hidden ** 3)))
            delta = hidden @ head["weight2"].T + head["bias2"]
        out = vectors + delta
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms == 0, 1.0, norms)).astype(np.float32)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{side}.{name}": array for side, head in self.heads.items() for name, array in head.items()}
        with open(path, "wb") as handle:
            np.savez(handle, kind=np.array(self.kind), **arrays)

    @classmethod
    def load(cls, path: Path) -> "AdapterWeights":
        try:
            with np.load(path, allow_pickle=False) as archive:
                kind = str(archive["kind"])
                heads: dict[str, dict[str, np.ndarray]] = {}
                for key in archive.files:
                    if key != "kind":
                        side, name = key.split(".", 1)
                        heads.setdefault(side, {})[name] = archive[key].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise AdapterError(f"{path} is not a readable adapter file ({exc})") from None
        return cls(kind=kind, heads=heads)


def _head(dim: int, kind: str, hidden: int):
    """A residual head whose last layer starts at zero (the identity), as a torch module."""
    from torch import nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            if kind == "linear":
                self.layers = nn.Linear(dim, dim)
                last = self.layers
            else:
                self.layers = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
                last = self.layers[2]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

        def forward(self, vectors):
            return nn.functional.normalize(vectors + self.layers(vectors), dim=-1)

        def arrays(self) -> dict[str, np.ndarray]:
            if kind == "linear":
                layers = {"weight": self.layers.weight, "bias": self.layers.bias}
            else:
                first, last = self.layers[0], self.layers[2]
                layers = {"weight1": first.weight, "bias1": first.bias, "weight2": last.weight, "bias2": last.bias}
            return {name: tensor.detach().cpu().numpy().astype(np.float32) for name, tensor in layers.items()}

    return Head()


def adapter_fit(
    text_vectors: np.ndarray,
    image_vectors: np.ndarray,
    *,
    config: TrainingConfig,
    on_epoch: Callable[[int, float], None] | None = None,
) -> AdapterWeights:
    """Fit heads so that row i of ``text_vectors`` and row i of ``image_vectors`` come together.

    ``on_epoch(epoch, mean_loss)`` is called after every epoch (1-based).
    """
    import torch
    from torch import nn

    if len(text_vectors) != len(image_vectors) or len(text_vectors) < 2:
        raise AdapterError("training needs at least 2 pairs, with as many text vectors as image vectors")
    dim = int(np.asarray(text_vectors).shape[1])
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        heads = nn.ModuleDict({side: _head(dim, config.kind, config.hidden) for side in config.sides})
    texts = torch.as_tensor(np.asarray(text_vectors, dtype=np.float32))
    images = torch.as_tensor(np.asarray(image_vectors, dtype=np.float32))
    optimiser = torch.optim.AdamW(heads.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    side = {name: heads[name] if name in heads else nn.Identity() for name in SIDES}
    count = len(texts)
    batch_size = min(config.batch_size, max(MIN_BATCH, count // MIN_STEPS_PER_EPOCH))
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(count, generator=generator)
        losses = []
        for start in range(0, count, batch_size):
            rows = order[start:start + batch_size]
            if len(rows) < 2:
                continue  # one pair has no negatives to learn from
            logits = side["text"](texts[rows]) @ side["image"](images[rows]).T / config.temperature
            targets = torch.arange(len(rows))
            loss = (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.T, targets)) / 2
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        if on_epoch:
            on_epoch(epoch, float(np.mean(losses)) if losses else float("nan"))
    return AdapterWeights(kind=config.kind, heads={name: head.arrays() for name, head in heads.items()})


def holdout_split(groups: list, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers for training and for the held-out pairs, split by group (pairs that share an
    image are held out together, so no held-out image was seen in training)."""
    if not 0 <= fraction < 1:
        raise AdapterError(f"holdout must be at least 0 and below 1, not {fraction}")
    distinct = list(dict.fromkeys(groups))
    held_count = int(round(len(distinct) * fraction))
    if fraction > 0 and held_count < 2:
        raise AdapterError(f"a holdout of {fraction} keeps {held_count} of {len(distinct)} images: too few to measure; "
                           f"add pairs or raise --holdout")
    if len(distinct) - held_count < 2:
        raise AdapterError(f"a holdout of {fraction} leaves {len(distinct) - held_count} images to train on")
    shuffled = np.random.default_rng(seed).permutation(len(distinct))
    held = {distinct[index] for index in shuffled[:held_count]}
    rows = np.arange(len(groups))
    in_holdout = np.array([group in held for group in groups], dtype=bool)
    return rows[~in_holdout], rows[in_holdout]


def pairs_evaluate(
    text_vectors: np.ndarray, image_vectors: np.ndarray, groups: list, *, adapter: AdapterWeights | None = None
) -> dict[str, dict[str, float]]:
    """Recall@k, MRR and nDCG@10 in both directions over these pairs, by exact search.

    Each distinct image (group) is one candidate: a text's relevant candidate is its own image; an
    image's relevant candidates are all of its texts.
    """
    texts = np.asarray(text_vectors, dtype=np.float32)
    images = np.asarray(image_vectors, dtype=np.float32)
    if adapter is not None:
        texts, images = adapter.apply(texts, "text"), adapter.apply(images, "image")
    distinct = list(dict.fromkeys(groups))
    group_row = {group: row for row, group in enumerate(distinct)}
    first_image = images[[groups.index(group) for group in distinct]]
    texts_of: dict[int, set[int]] = {}
    for row, group in enumerate(groups):
        texts_of.setdefault(group_row[group], set()).add(row)
    return {
        "text_to_image": vector_retrieval_metrics(texts, first_image, [{group_row[group]} for group in groups]),
        "image_to_text": vector_retrieval_metrics(first_image, texts, [texts_of[row] for row in range(len(distinct))]),
    }
