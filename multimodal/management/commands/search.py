import json
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from ...encoders import EncoderLoadError
from ...errors import UserInputError
from ...query.parse import query_parse
from ...query.parts import PARTS, UPLOAD_TYPES
from ...selectors import search_response


class Command(BaseCommand):
    help = (
        "Search like the site does: print ranked results (id, kind, title, score) or, with --json, the "
        "API's JSON. Combine a text, an image, a voice recording and an item, each with a weight."
    )

    def add_arguments(self, parser):
        parser.add_argument("text", nargs="?", default="", help="text to search for")
        parser.add_argument("--image", type=Path, help="an image file to search with")
        parser.add_argument("--voice", type=Path, help="a recording of a spoken query (transcribed first)")
        parser.add_argument("--item", type=int, help="more like this item id")
        for part in PARTS:
            parser.add_argument(f"--{part}-weight", type=float, help=f"weight of the {part} part (default 1)")
        parser.add_argument("--fusion", choices=["vector", "rrf", "weighted"], help="how parts are fused")
        parser.add_argument("--no-keyword", action="store_true", help="vector channel only (no keyword channel)")
        parser.add_argument("--kind", default="", help="only these kinds, comma-separated")
        parser.add_argument("--modality", default="",
                            help="match only these of an item's vectors (image, text): --modality image finds products by their picture")
        parser.add_argument("--min-score", type=float, help="drop results scoring below this")
        parser.add_argument("--top-k", type=int, default=10, help="how many results (default 10)")
        parser.add_argument("--page", type=int, default=1, help="which page of top-k results (default 1)")
        parser.add_argument("--corpus", default="", help="only these corpora, comma-separated")
        parser.add_argument("--spec", action="append", default=[], metavar="NAME=VALUE",
                            help="only products with this spec (e.g. colour=red; repeat for several)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the same JSON as /api/search")

    def handle(self, *args, text, item, fusion, no_keyword, kind, modality, min_score, top_k, page, corpus, spec,
               as_json, **options):
        files = {name: self._file(name, options[name]) for name in UPLOAD_TYPES if options[name]}
        data = {"q": text, "item": item, "fusion": fusion, "hybrid": "false" if no_keyword else "", "kind": kind,
                "modality": modality, "min_score": min_score, "top_k": top_k, "page": page, "corpus": corpus}
        data.update({f"{part}_weight": options[f"{part}_weight"] for part in PARTS})
        for condition in spec:
            name, equals, value = condition.partition("=")
            if not equals:
                raise CommandError(f"--spec {condition}: give NAME=VALUE, e.g. --spec colour=red")
            data[f"spec.{name}"] = value
        try:
            response = search_response(query=query_parse({key: value for key, value in data.items()
                                                          if value not in (None, "")}, files))
        except (UserInputError, EncoderLoadError) as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(response, indent=2, ensure_ascii=False))
            return
        for part in response["query"]["parts"]:
            if part.get("transcript"):
                self.stderr.write(f"You said: {part['transcript']['text']}")
        first_rank = (page - 1) * top_k + 1
        for rank, result in enumerate(response["results"], start=first_rank):
            self.stdout.write(f"{rank:>3}  #{result['id']:<6} {result['kind']:<7} {result['score']:.4f}  {result['title']}")
        if not response["results"]:
            self.stdout.write("no results")
        self.stderr.write(", ".join(f"{name} {value:.1f} ms" for name, value in response["timings_ms"].items()))

    @staticmethod
    def _file(option: str, path: Path) -> SimpleUploadedFile:
        try:
            return SimpleUploadedFile(path.name, path.read_bytes())
        except OSError as exc:
            raise CommandError(f"--{option} {path}: {exc.strerror or exc}") from None
