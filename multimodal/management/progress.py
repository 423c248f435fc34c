"""A progress bar for commands, fed by the services' progress callbacks."""
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm


@contextmanager
def progress_bar(*, description: str, stream, total: int = 0, unit: str = "item") -> Iterator[Callable[..., None]]:
    """Yield ``update(processed, *, total=None, landed=None, failed=None)`` that redraws a bar.

    ``processed`` and ``total`` count ``unit``s (items, or seconds of audio).

    ``stream`` may be a command's OutputWrapper; the bar writes to the stream inside it, because
    the wrapper would end every redraw with a newline.
    """
    stream = getattr(stream, "_out", stream)
    with tqdm(total=total, desc=description, unit=unit, file=stream, dynamic_ncols=True) as bar:
        last = {}

        def update(processed: int, *, total: int | None = None, landed: int | None = None, failed: int | None = None):
            state = {"processed": processed, "total": total, "landed": landed, "failed": failed}
            if state == last:  # pollers call this with unchanged figures; redraw only on change
                return
            last.update(state)
            if total is not None and total != bar.total:
                bar.total = total
            bar.update(processed - bar.n)
            if landed is not None:
                # As strings: tqdm shortens numbers, and "landed=1e+4" is no way to say 10000.
                bar.set_postfix(landed=str(landed), failed=str(failed or 0), refresh=False)
            bar.refresh()

        yield update
