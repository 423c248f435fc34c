import json

from django.core.management.base import BaseCommand, CommandError

from ...benchmarks.pipeline import voice_benchmark
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Time voice search on sentences spoken by espeak-ng (needs the system package), with warm models, "
        "in one run: bare faster-whisper on each clip (on the file, and on samples decoded beforehand), a "
        "text query for what it heard, and the voice query end to end through the product; also ingests "
        "recordings of those sentences and reports the real-time factor of audio ingest. Goal: voice query "
        "<= 1.2 x (bare transcription of decoded samples + text query)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--queries", type=int, default=12, help="spoken sentences (default 12)")
        parser.add_argument("--repeats", type=int, default=3, help="times each clip is queried (default 3)")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark corpus afterwards")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, queries, repeats, keep, as_json, **options):
        if queries < 1 or repeats < 1:
            raise CommandError("--queries and --repeats must be at least 1")
        with progress_bar(description="ingest recordings", stream=self.stderr) as update:
            try:
                figures = voice_benchmark(
                    queries=queries, repeats=repeats, keep=keep,
                    on_progress=lambda processed, so_far: update(processed, landed=so_far.landed,
                                                                 failed=len(so_far.failures)),
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        ms, ingest = figures["ms"], figures["ingest"]
        self.stdout.write(
            f"speech {figures['speech_model']}, encoder {figures['encoder']}: {figures['queries']} spoken queries "
            f"of {figures['query_audio_s']['min']:.1f}-{figures['query_audio_s']['max']:.1f} s, "
            f"each {figures['repeats']} times; ms p50 / p95"
        )
        for name, label in (("bare_file", "bare faster-whisper, file"),
                            ("bare_samples", "bare faster-whisper, decoded samples"),
                            ("text_query", "text query (what it heard)"),
                            ("voice_query", "voice query, end to end")):
            self.stdout.write(f"  {label:<38}{ms[name]['p50']:9.1f} /{ms[name]['p95']:8.1f}")
        bound = ms["bare_samples"]["p50"] + ms["text_query"]["p50"]
        verdict = "meets" if figures["ratio"] <= 1.2 else "misses"
        self.stdout.write(f"  voice / (bare on samples + text) = {ms['voice_query']['p50']:.1f} / {bound:.1f} = "
                          f"{figures['ratio']:.2f}  ({verdict} the goal <= 1.2; vs bare on the file: "
                          f"{figures['ratio_vs_bare_file']:.2f})")
        self.stdout.write(f"  spoken sentence's segment in the top 3: {figures['top3']:.0%}")
        self.stdout.write(
            f"audio ingest: {ingest['recordings']} recordings, {ingest['audio_s']:.1f} s of speech -> "
            f"{ingest['segments']} segments in {ingest['seconds']:.1f} s: real-time factor "
            f"{ingest['real_time_factor']:.3f} (transcription alone {ingest['transcribe_real_time_factor']:.3f})"
        )
