import json
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from ...encoders import EncoderLoadError
from ...errors import UserInputError
from ...forms import SearchForm
from ...selectors import search_response


class Command(BaseCommand):
    help = "Search like the site does: print ranked results (id, kind, title, score) or, with --json, the API's JSON."

    def add_arguments(self, parser):
        parser.add_argument("text", nargs="?", default="", help="text to search for")
        parser.add_argument("--image", type=Path, help="an image file to search with")
        parser.add_argument("--top-k", type=int, default=10, help="how many results (default 10)")
        parser.add_argument("--corpus", default="", help="only this corpus")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the same JSON as /api/search")

    def handle(self, *args, text, image, top_k, corpus, as_json, **options):
        files = {}
        if image is not None:
            try:
                files["image"] = SimpleUploadedFile(image.name, image.read_bytes())
            except OSError as exc:
                raise CommandError(f"--image {image}: {exc.strerror or exc}") from None
        form = SearchForm({"q": text, "top_k": top_k, "corpus": corpus}, files)
        if not form.is_valid():
            raise CommandError(form.error_message())
        try:
            response = search_response(query=form.to_query())
        except (UserInputError, EncoderLoadError) as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(response, indent=2, ensure_ascii=False))
            return
        for rank, result in enumerate(response["results"], start=1):
            self.stdout.write(f"{rank:>3}  #{result['id']:<6} {result['kind']:<6} {result['score']:.4f}  {result['title']}")
        if not response["results"]:
            self.stdout.write("no results")
        timings = response["timings_ms"]
        self.stderr.write(f"encode {timings['encode']:.1f} ms, search {timings['search']:.1f} ms, total {timings['total']:.1f} ms")

