"""One door to models: a configured name -> a lazily built, process-cached model.

Models load on first use, once per process, behind a lock, and stay warm; request code asks a
registry and never constructs a model. Names registered with ``register`` (tests add
deterministic models this way) are looked up before the registry's own ``build``.
"""
import threading
from typing import Callable, Generic, TypeVar

Model = TypeVar("Model")


class ModelRegistry(Generic[Model]):
    def __init__(self, *, default_name: Callable[[], str], build: Callable[[str], Model]):
        """``default_name()`` names the configured model (read per call, so settings apply);
        ``build(name)`` loads a model that was not registered."""
        self._default_name = default_name
        self._build = build
        self._factories: dict[str, Callable[[], Model]] = {}
        self._cache: dict[str, Model] = {}
        # Reentrant: a factory may itself ask the registry for another model.
        self._lock = threading.RLock()

    def register(self, name: str, factory: Callable[[], Model]) -> None:
        """Make ``name`` resolve to ``factory()`` (called once per process, on first use)."""
        with self._lock:
            self._factories[name] = factory
            self._cache.pop(name, None)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._factories.pop(name, None)
            self._cache.pop(name, None)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def loaded(self, name: str | None = None) -> bool:
        """Whether the model for ``name`` (default: the configured one) is loaded: `get` returns at once."""
        return (name or self._default_name()) in self._cache

    def get(self, name: str | None = None) -> Model:
        """The model for ``name`` (default: the configured one), loading it on first use."""
        name = name or self._default_name()
        model = self._cache.get(name)
        if model is not None:
            return model
        with self._lock:
            if name not in self._cache:
                factory = self._factories.get(name)
                self._cache[name] = factory() if factory else self._build(name)
            return self._cache[name]
