"""Tiny random transformers CLIP and SigLIP models saved as local directories (no download needed)."""
import json
from pathlib import Path

import torch

MERGES = 2000
TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def clip_tokenizer(folder: Path, *, max_length: int | None = None):
    """A CLIP BPE tokenizer with open_clip's first MERGES merges (its full 49k tokens take seconds to load)."""
    from open_clip.tokenizer import SimpleTokenizer, bytes_to_unicode
    from transformers import CLIPTokenizer

    bpe = SimpleTokenizer()
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)[:MERGES]
    characters = list(bytes_to_unicode().values())
    tokens = characters + [f"{character}</w>" for character in characters] + ["".join(pair) for pair in merges]
    vocab = {token: index for index, token in enumerate(tokens + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges))
    options = {"model_max_length": max_length} if max_length else {}
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), **options)


def tiny_clip(folder: Path) -> Path:
    """A random 2-layer CLIP (16-wide vectors, 32-px pictures) with its processor, saved in ``folder``/clip."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    tokenizer = clip_tokenizer(folder / "tokenizer", max_length=77)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    # CLIP pools at the end-of-text token, which this vocabulary numbers its own way.
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    config = CLIPConfig(text_config={**TOWER, **special, "vocab_size": len(tokenizer), "max_position_embeddings": 77},
                        vision_config={**TOWER, "image_size": 32, "patch_size": 8}, projection_dim=16)
    return _save(CLIPModel(config), processor, folder / "clip")


def tiny_siglip(folder: Path) -> Path:
    """A random 2-layer SigLIP (texts padded to 16 tokens, 32-px pictures) with its processor, in ``folder``/siglip."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    torch.manual_seed(0)
    tokenizer = clip_tokenizer(folder / "siglip-tokenizer", max_length=16)
    processor = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}),
                                tokenizer=tokenizer)
    config = SiglipConfig(text_config={**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": 16},
                          vision_config={**TOWER, "image_size": 32, "patch_size": 8})
    return _save(SiglipModel(config), processor, folder / "siglip")


def _save(model, processor, folder: Path) -> Path:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
