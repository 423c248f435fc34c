"""A progress bar for commands, fed by the services' progress callbacks."""
from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm

from ..services.ingest import IngestReport, ProgressCallback


@contextmanager
def progress_bar(*, total: int, description: str, stream) -> Iterator[ProgressCallback]:
    """Yield a callback that moves a bar to (processed of total, failures so far).

    ``stream`` may be a command's OutputWrapper; the bar writes to the stream inside it, because
    the wrapper would end every redraw with a newline.
    """
    stream = getattr(stream, "_out", stream)
    with tqdm(total=total, desc=description, unit="file", file=stream, dynamic_ncols=True) as bar:
        def update(processed: int, report: IngestReport) -> None:
            bar.update(processed - bar.n)
            bar.set_postfix(landed=report.landed, failed=len(report.failures), refresh=False)

        yield update
