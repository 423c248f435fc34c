import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ... import store


class Command(BaseCommand):
    help = (
        "The vector store's engine, as MILVUS_URI names it: 'status' (engine, address, process, memory, "
        "collections and their vectors), 'start' (start the local Milvus server and wait until it answers; "
        "any command that needs the store also starts it) or 'stop' (stop the local Milvus server; the "
        "site, commands and workers start it again when they next need it). Milvus Lite and remote servers "
        "are not started or stopped here."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "start", "stop"], help="what to do (default: status)",
                            nargs="?", default="status")

    def handle(self, *args, action, **options):
        try:
            if action == "start":
                started = time.monotonic()
                self.stderr.write(f"starting the vector store of {settings.MILVUS_URI}")
                status = store.engine_start(on_wait=lambda: self.stderr.write(".", ending=""))
                self.stderr.write(f" answering after {time.monotonic() - started:.1f} s")
            elif action == "stop":
                if store.engine_stop():
                    self.stdout.write(f"stopped the local Milvus server of {settings.MILVUS_URI}")
                else:
                    self.stdout.write(f"nothing to stop: {_describe(store.engine_status())}")
                return
            status = store.engine_status()
        except store.StoreUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_describe(status))
        if status.running:
            self._collections()

    def _collections(self) -> None:
        try:
            collections = store.collections_with_prefix()
            for found in collections:
                self.stdout.write(f"  {found.name}: {found.count():,} vectors")
        except store.StoreUnavailable as exc:
            raise CommandError(str(exc)) from None
        if not collections:
            self.stdout.write("  no collections yet (ingest something)")


def _describe(status: store.EngineStatus) -> str:
    line = f"{status.engine}: {status.uri} — {'running' if status.running else 'not running'}"
    if status.address and status.address != status.uri:
        line += f" at {status.address}"
    if status.pid:
        line += f", pid {status.pid}, {_rss_mb(status.pid):,.0f} MB resident"
    if status.version:
        line += f", Milvus {status.version}"
    return line + (f"; {status.detail}" if status.detail else "")


def _rss_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
