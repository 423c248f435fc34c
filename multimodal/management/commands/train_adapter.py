import json
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...encoders import EncoderLoadError
from ...errors import UserInputError
from ...learning.adaptation import KINDS, SIDES, AdapterError, TrainingConfig
from ...learning.metrics import NDCG_K, RECALL_KS
from ...models import Adapter, Corpus
from ...services.adapter_training import adapter_create, adapter_train
from ..progress import progress_bar
from ..tables import table_format

DIRECTION_NAMES = {"text_to_image": "text->image", "image_to_text": "image->text"}


class Command(BaseCommand):
    help = (
        "Train a small adapter over the frozen encoder on a corpus's image-text pairs (products with an "
        "image; images with a caption file of the same name) or on a JSONL file of pairs, on CPU. Prints "
        "recall@1/5/10, MRR and nDCG@10 on held-out pairs before and after training, and saves the adapter "
        "as the corpus's next version. Search is unchanged until it is activated (activate_adapter)."
    )

    def add_arguments(self, parser):
        defaults = TrainingConfig()
        parser.add_argument("--corpus", required=True, help="the corpus the adapter is for (its pairs, unless --pairs)")
        parser.add_argument("--pairs", type=Path, metavar="FILE",
                            help='JSONL: {"text": ..., "image": PATH} or {"text": ..., "item": ID_OR_FILE_NAME} per line')
        parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"default {defaults.epochs}")
        parser.add_argument("--holdout", type=float, default=0.2, help="share of the images held out to measure (default 0.2)")
        parser.add_argument("--kind", choices=KINDS, default=defaults.kind,
                            help=f"residual linear head or 2-layer MLP (default {defaults.kind})")
        parser.add_argument("--sides", default=",".join(defaults.sides), help=f"which embeddings to adapt, of {','.join(SIDES)}")
        parser.add_argument("--hidden", type=int, default=defaults.hidden, help=f"MLP width (default {defaults.hidden})")
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"default {defaults.batch_size}")
        parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help=f"default {defaults.learning_rate}")
        parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help=f"default {defaults.weight_decay}")
        parser.add_argument("--temperature", type=float, default=defaults.temperature, help=f"default {defaults.temperature}")
        parser.add_argument("--seed", type=int, default=defaults.seed, help="for the split and the initialisation")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the adapter's record as JSON")

    def handle(self, *args, corpus, pairs, epochs, holdout, kind, sides, hidden, batch_size, learning_rate,
               weight_decay, temperature, seed, as_json, **options):
        target = Corpus.objects.filter(name=corpus).first()
        if target is None:
            raise CommandError(f"--corpus: no corpus named '{corpus}'")
        try:
            config = TrainingConfig(
                kind=kind, sides=tuple(side.strip() for side in sides.split(",") if side.strip()), hidden=hidden,
                epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                temperature=temperature, seed=seed,
            )
            adapter = adapter_create(corpus=target, config=config, holdout=holdout, pairs_file=str(pairs or ""))
            with ExitStack() as bars:
                shown = {"phase": None, "update": None}

                def show(current: Adapter) -> None:
                    if current.phase != shown["phase"]:
                        bars.close()
                        shown["phase"] = current.phase
                        shown["update"] = bars.enter_context(progress_bar(
                            description=current.phase, stream=self.stderr,
                            unit="epoch" if current.phase == "training" else "pair")) if current.phase else None
                    if shown["update"]:
                        shown["update"](current.done, total=current.total)

                adapter = adapter_train(adapter_id=adapter.pk, on_progress=show)
        except (UserInputError, AdapterError, EncoderLoadError) as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(adapter_record(adapter), indent=2))
            return
        self.stdout.write(
            f"{adapter}: {config.kind} head on {' and '.join(config.sides)}, {config.epochs} epochs, "
            f"{adapter.pairs - adapter.holdout_pairs} pairs trained on, {adapter.holdout_pairs} held out"
        )
        before, after = adapter.metrics.get("before"), adapter.metrics.get("after")
        if before:
            self.stdout.write(comparison_table(before, after))
            if after["text_to_image"]["recall@1"] < before["text_to_image"]["recall@1"]:
                self.stdout.write("WARNING: the adapter finds held-out images worse than the base encoder does: "
                                  "do not activate it")
        else:
            self.stdout.write("no pairs were held out (--holdout 0): nothing was measured")
        self.stdout.write(f"saved {Path(settings.MULTIMODAL_ADAPTER_ROOT) / adapter.weights_path}")
        self.stdout.write(f"search is unchanged; to use it: manage.py activate_adapter --corpus {target.name} "
                          f"{adapter.version}")


def comparison_table(before: dict, after: dict) -> str:
    headers = ["held-out pairs", "", *(f"R@{k}" for k in RECALL_KS), "MRR", f"nDCG@{NDCG_K}"]
    rows = []
    for direction, name in DIRECTION_NAMES.items():
        for label, figures in (("before", before), ("after", after)):
            scores = figures[direction]
            rows.append([name, label, *(scores[f"recall@{k}"] for k in RECALL_KS), scores["mrr"],
                         scores[f"ndcg@{NDCG_K}"]])
    return table_format(headers, rows)


def adapter_record(adapter: Adapter) -> dict:
    return {
        "id": adapter.pk, "corpus": adapter.corpus.name, "version": adapter.version, "encoder": adapter.encoder_name,
        "status": adapter.status, "pairs": adapter.pairs, "holdout_pairs": adapter.holdout_pairs,
        "hyperparameters": adapter.hyperparameters, "metrics": adapter.metrics, "weights": adapter.weights_path,
        "error": adapter.error or None,
    }
