"""The shared core of the "tool against the bare tool" benchmarks: contenders timed in turns, one result shape.

Contenders take turns (a, b, a, b, ...) rather than running in blocks, so a neighbour's load or a
warming cache falls on both alike; the median of each one's runs is its figure. Free of Django.
"""
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Turns:
    seconds: dict[str, float]  # contender -> median seconds of its runs
    last: dict[str, Any]  # contender -> what its last run returned
    repeats: int


def turns_run(contenders: dict[str, Callable[[], Any]], *, repeats: int,
              prepare: dict[str, Callable[[], None]] | None = None) -> Turns:
    """Run every contender once per round, in the order given, for ``repeats`` rounds.

    ``prepare[name]()``, when given, runs untimed before each run of contender ``name`` (e.g. emptying
    the corpus an ingest lands in, so each run creates its items rather than updating them).
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    times: dict[str, list[float]] = {name: [] for name in contenders}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for name, run in contenders.items():
            if prepare and name in prepare:
                prepare[name]()
            started = time.perf_counter()
            last[name] = run()
            times[name].append(time.perf_counter() - started)
    return Turns(seconds={name: statistics.median(values) for name, values in times.items()}, last=last,
                 repeats=repeats)


@dataclass(frozen=True)
class Comparison:
    """The product's path (``tool``) against a bare tool doing the same work on the same input.

    ``work`` units (pages, seconds of video) were done by each. A ``unit`` ending in "/s" or
    "x real time" is a speed (work / seconds); "s/page" a cost (seconds / work). ``ratio`` is the
    tool's speed over the bare tool's whatever the unit: 1.0 as fast, the goal is >= 0.7.
    """

    step: str  # the command's row name: documents, ocr, video, ingest
    tool: str  # what the product runs, e.g. "document_read"
    bare: str  # what it is held against, e.g. "pypdfium2 loop"
    work: float
    unit: str
    tool_s: float  # median seconds of the tool's runs
    bare_s: float
    repeats: int
    input: str  # the input both worked on, e.g. "50-page PDF"
    notes: tuple[str, ...] = ()  # further figures of the same run, one phrase each

    def figure(self, seconds: float) -> float:
        return seconds / self.work if self.unit.startswith("s/") else self.work / seconds

    @property
    def tool_figure(self) -> float:
        return self.figure(self.tool_s)

    @property
    def bare_figure(self) -> float:
        return self.figure(self.bare_s)

    @property
    def ratio(self) -> float:
        return self.bare_s / self.tool_s

    def report(self) -> str:
        line = (f"{self.step}: {self.input}, medians of {self.repeats}: {self.tool} {self.tool_s:.3f} s = "
                f"{self.tool_figure:.2f} {self.unit}; {self.bare} {self.bare_s:.3f} s = {self.bare_figure:.2f} "
                f"{self.unit} -> ratio {self.ratio:.2f}")
        return "; ".join((line, *self.notes))
