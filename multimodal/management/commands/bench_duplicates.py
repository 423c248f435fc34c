from django.core.management.base import BaseCommand
from django.db import transaction

from ...benchmarks.duplicates import duplicates_measure, labelled_set
from ...models import Corpus


class Command(BaseCommand):
    help = (
        "Measure the near-duplicate groups ingest makes: generate distinct photos, copies of each (crops of up "
        "to 10 %, rescales, JPEG quality 30-95, turns of up to 5 degrees), other shots of each (a view shifted "
        "over 60-70 % of it, another exposure) and unrelated photos; ingest them into a throw-away corpus with "
        "the configured encoder and thresholds (MULTIMODAL_DUPLICATE_*); print precision and recall over pairs "
        "for the 'same' and 'similar' levels. The corpus, its items and vectors are deleted afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scenes", type=int, default=20, help="photos with copies and other shots (default 20)")
        parser.add_argument("--unrelated", type=int, default=20, help="photos alone (default 20)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, scenes, unrelated, seed, **options):
        pictures = labelled_set(scenes=scenes, unrelated=unrelated, seed=seed)
        corpus = Corpus.objects.create(name=f"bench-duplicates-{seed}-{Corpus.objects.count()}")
        try:
            figures = duplicates_measure(corpus=corpus, pictures=pictures)
        finally:
            with transaction.atomic():
                corpus.delete()
        self.stdout.write(f"{len(pictures)} pictures: {scenes} scenes with 6 copies and 2 other shots each, "
                          f"{unrelated} unrelated")
        self.stdout.write(f"{'level':8} {'precision':>9} {'recall':>7} {'true pairs':>10} {'found':>6} {'right':>6}")
        for figure in figures:
            self.stdout.write(f"{figure.level:8} {figure.precision:9.3f} {figure.recall:7.3f} {figure.true_pairs:10d} "
                              f"{figure.found_pairs:6d} {figure.right_pairs:6d}")
