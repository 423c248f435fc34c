import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ...encoders import EncoderLoadError
from ...errors import UserInputError
from ...readers.audio import clock
from ...services.voice import recording_transcribe
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Transcribe a recording (wav, flac, mp3, ogg/opus, m4a, webm) or the sound of a video with the "
        "configured speech model (MULTIMODAL_SPEECH_MODEL) and print it passage by passage with start and "
        "end times, as ingest would split it into searchable segments. Long files are read in windows and "
        "show a progress bar in seconds of audio."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, metavar="FILE", help="the recording or video")
        parser.add_argument("--model", default=None,
                            help="speech model instead of the configured one (e.g. tiny.en, base, hf:openai/whisper-tiny)")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="print text, language, durations and timed passages as JSON")

    def handle(self, *args, file: Path, model: str | None, as_json: bool, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        with progress_bar(description=f"transcribe {file.name}", stream=self.stderr, unit="s") as update:
            try:
                result = recording_transcribe(
                    file, model_name=model,
                    on_progress=lambda done_s, total_s: update(int(done_s), total=int(total_s) if total_s else None),
                )
            except (UserInputError, EncoderLoadError) as exc:
                raise CommandError(f"{file}: {exc}") from None
        transcript = result.transcript
        if as_json:
            self.stdout.write(json.dumps({
                "file": str(file), "model": result.model, "language": transcript.language,
                "duration_s": round(transcript.duration_s, 2), "transcribe_s": round(result.transcribe_s, 2),
                "text": transcript.text,
                "segments": [{"start_s": passage.start_s, "end_s": passage.end_s, "text": passage.text}
                             for passage in result.passages],
            }, indent=2, ensure_ascii=False))
            return
        for passage in result.passages:
            self.stdout.write(f"[{clock(passage.start_s)} – {clock(passage.end_s)}] {passage.text}")
        if not result.passages:
            self.stdout.write("no speech was recognised")
        real_time_factor = result.transcribe_s / transcript.duration_s if transcript.duration_s else 0.0
        self.stderr.write(f"{result.model}, language {transcript.language or 'unknown'}: {transcript.duration_s:.1f} s "
                          f"of audio in {result.transcribe_s:.1f} s ({real_time_factor:.2f} x real time)")
