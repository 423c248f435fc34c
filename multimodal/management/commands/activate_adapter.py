from django.core.management.base import BaseCommand, CommandError

from ... import encoders, store
from ...errors import UserInputError
from ...models import Adapter, Corpus
from ...retrieval import indexes
from ...services.adapter_activation import adapter_activate, index_build_run, index_describe, index_rollback, index_switch
from ..progress import progress_bar
from ..tables import table_format


class Command(BaseCommand):
    help = (
        "Switch what a corpus is searched in. With VERSION: re-embed the corpus's stored vectors through "
        "that adapter into a new collection (searches keep using the current one meanwhile), then switch "
        "to it at once. --rollback returns to the index that was live before the last switch (instant; "
        "again to go forward); --base returns to the encoder's own vectors. Without any: list the "
        "corpus's adapters and what is live."
    )

    def add_arguments(self, parser):
        parser.add_argument("adapter_version", nargs="?", type=int, metavar="VERSION",
                            help="adapter version (of this corpus, see train_adapter)")
        parser.add_argument("--corpus", required=True, help="the corpus to switch")
        parser.add_argument("--rollback", action="store_true", help="back to the index live before the last switch")
        parser.add_argument("--base", action="store_true", help="back to the encoder's own vectors, no adapter")
        parser.add_argument("--batch-size", type=int, default=500, help="items re-embedded per batch (default 500)")

    def handle(self, *args, adapter_version, corpus, rollback, base, batch_size, **options):
        version = adapter_version
        target = Corpus.objects.filter(name=corpus).first()
        if target is None:
            raise CommandError(f"--corpus: no corpus named '{corpus}'")
        if sum([version is not None, rollback, base]) > 1:
            raise CommandError("give one of VERSION, --rollback or --base")
        try:
            if rollback:
                index_rollback(corpus=target)
            elif base:
                index_switch(corpus=target, build=None)
            elif version is not None:
                self._activate(target, version, batch_size)
            else:
                self._list(target)
                return
        except UserInputError as exc:
            raise CommandError(str(exc)) from None
        state = index_describe(target)
        self.stdout.write(f"corpus '{target.name}' is now searched in {state['live']} "
                          f"({self._vectors(target)} vectors; a rollback returns to {state['previous']})")

    def _activate(self, corpus: Corpus, version: int, batch_size: int) -> None:
        adapter = Adapter.objects.filter(corpus=corpus, version=version).first()
        if adapter is None:
            raise CommandError(f"corpus '{corpus.name}' has no adapter version {version} (see: activate_adapter --corpus {corpus.name})")
        build = adapter_activate(adapter=adapter, corpus=corpus)
        with progress_bar(description=f"re-embed {corpus.name}", stream=self.stderr, total=build.total) as update:
            index_build_run(build_id=build.pk, batch_size=batch_size,
                            on_progress=lambda current: update(current.done, total=current.total))

    def _vectors(self, corpus: Corpus) -> int:
        route = indexes.search_routes([corpus.pk])[0]
        return route.index.collection.count(store.VectorFilter(corpus_ids=[corpus.pk]))

    def _list(self, corpus: Corpus) -> None:
        state = index_describe(corpus)
        self.stdout.write(f"corpus '{corpus.name}' is searched in {state['live']}; encoder {encoders.get().name}")
        rows = []
        for adapter in corpus.adapters.order_by("version"):
            after = (adapter.metrics.get("after") or {}).get("text_to_image", {})
            before = (adapter.metrics.get("before") or {}).get("text_to_image", {})
            rows.append([adapter.version, adapter.status, adapter.hyperparameters.get("kind", ""), adapter.pairs,
                         before.get("recall@1"), after.get("recall@1"), adapter.created_at.strftime("%Y-%m-%d %H:%M")])
        if rows:
            self.stdout.write(table_format(["version", "status", "kind", "pairs", "R@1 before", "R@1 after", "trained"], rows))
        else:
            self.stdout.write(f"no adapters yet: manage.py train_adapter --corpus {corpus.name}")
