"""Speech models through Hugging Face transformers: Whisper (seq2seq) and wav2vec2-style CTC models.

Both take a hub id or a local directory holding the model and its processor (``save_pretrained``).
"""
import numpy as np
import torch

from .base import SAMPLE_RATE, ProgressCallback, SpeechLoadError, SpeechSegment, Transcript, Word, text_join

WHISPER_WINDOW_S = 30.0


def _load(auto_model, model_id: str, device: str, kind: str):
    from transformers import AutoProcessor

    try:
        model = auto_model.from_pretrained(model_id).to(device).eval()
        processor = AutoProcessor.from_pretrained(model_id)
    except Exception as exc:
        raise SpeechLoadError(
            f"could not load {kind} model '{model_id}': {exc}. Offline, use a local directory that holds the "
            f"model and its processor (save_pretrained)."
        ) from exc
    return model, processor


class TransformersWhisperModel:
    # generate() reads long audio 30 s at a time by itself ("long-form" mode).
    window_s = float("inf")

    def __init__(self, model_id: str, *, device: str = "cpu", language: str | None = None):
        from transformers import AutoModelForSpeechSeq2Seq

        self._model, self._processor = _load(AutoModelForSpeechSeq2Seq, model_id, device, "Whisper")
        self.name = f"hf:{model_id}"
        self.device = device
        self.language = language
        self._multilingual = bool(getattr(self._model.generation_config, "is_multilingual", False))

    @torch.inference_mode()
    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = False,
                   on_progress: ProgressCallback | None = None) -> Transcript:
        """Segments as Whisper timed them; words are not timed by this backend (``words`` stay empty)."""
        long_form = samples.size > WHISPER_WINDOW_S * SAMPLE_RATE
        features = self._processor(
            samples, sampling_rate=SAMPLE_RATE, return_tensors="pt",
            **({"truncation": False, "padding": "longest", "return_attention_mask": True} if long_form else {}),
        ).to(self.device)
        language = self._language(features["input_features"])
        options = {"language": language} if self._multilingual and language else {}
        output = self._model.generate(**features, return_timestamps=True, return_segments=True, **options)
        tokenizer = self._processor.tokenizer
        segments = [
            SpeechSegment(float(piece["start"]), float(piece["end"]),
                          tokenizer.decode(piece["tokens"], skip_special_tokens=True).strip())
            for piece in output["segments"][0]
        ]
        segments = [segment for segment in segments if segment.text]
        if on_progress:
            on_progress(samples.size / SAMPLE_RATE)
        return Transcript(text=text_join(segment.text for segment in segments), language=language,
                          duration_s=samples.size / SAMPLE_RATE, segments=segments)

    def _language(self, input_features: torch.Tensor) -> str | None:
        """The configured language; "en" for English-only models; else what the model hears first."""
        if self.language:
            return self.language
        if not self._multilingual:
            return "en"
        token_id = int(self._model.detect_language(input_features[:, :, :3000])[0])
        token = self._processor.tokenizer.convert_ids_to_tokens(token_id)
        return token.strip("<|>") or None


class Wav2Vec2Model:
    # Self-attention over a window costs its length squared; 30 s is what these models train near.
    window_s = 30.0

    def __init__(self, model_id: str, *, device: str = "cpu"):
        from transformers import AutoModelForCTC

        self._model, self._processor = _load(AutoModelForCTC, model_id, device, "wav2vec2")
        self.name = f"wav2vec2:{model_id}"
        self.device = device
        self._seconds_per_frame = self._model.config.inputs_to_logits_ratio / SAMPLE_RATE

    @torch.inference_mode()
    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = False,
                   on_progress: ProgressCallback | None = None) -> Transcript:
        """One segment of timed words (CTC models have no punctuation and no language detection)."""
        values = self._processor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
        predicted = self._model(values.to(self.device)).logits.argmax(dim=-1)[0].cpu()
        decoded = self._processor.tokenizer.decode(predicted, output_word_offsets=True)
        words = tuple(
            Word(offset["start_offset"] * self._seconds_per_frame, offset["end_offset"] * self._seconds_per_frame,
                 " " + _readable(offset["word"]))
            for offset in decoded.word_offsets
        )
        segments = [SpeechSegment(words[0].start_s, words[-1].end_s, text_join(word.text for word in words), words)] if words else []
        if on_progress:
            on_progress(samples.size / SAMPLE_RATE)
        return Transcript(text=segments[0].text if segments else "", language=None,
                          duration_s=samples.size / SAMPLE_RATE, segments=segments)


def _readable(word: str) -> str:
    # English CTC vocabularies are upper case ("RED BICYCLE"); people read lower case better.
    return word.lower() if word.isupper() else word
