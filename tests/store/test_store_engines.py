"""The engines behind the store, run for real: the local Milvus server the product starts itself, shared by
several processes on default settings, surviving a restart; and Milvus Lite's one-process limit said plainly."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import milvus
import pytest

from multimodal import encoders, store
from multimodal.models import Corpus
from multimodal.query.types import SearchFilters, SearchQuery
from multimodal.selectors import search_response
from multimodal.store.local_server import PORTS_FILE, LocalServer, _ports_fresh

from ..conftest import image_bytes, ingest_files
from ..live_services import ROOT, free_port, wait_until

pytestmark = pytest.mark.django_db


def _titles(text: str, corpus: Corpus) -> list[tuple[str, float]]:
    query = SearchQuery(text=text, hybrid=False, top_k=10, filters=SearchFilters(corpora=[corpus]))
    return [(result["title"], round(result["score"], 4)) for result in search_response(query=query)["results"]]


def _titles_once_caught_up(text: str, corpus: Corpus, timeout_s: float = 180) -> list[tuple[str, float]]:
    """What a user searching again and again after a restart is shown: "catching up", then whole results."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return _titles(text, corpus)
        except store.StoreUnavailable as exc:
            assert "catching up" in str(exc), exc
            assert time.monotonic() < deadline, "the store never caught up"
            time.sleep(1)


def _binary_shared(folder, server_folder) -> None:
    """Give a new server folder the session server's unpacked binary (hard links): the product unpacks the
    package's binary into a folder only when its checksums are not there yet (~5 s of LZMA each time), and what
    these tests prove starts after that."""
    (folder / "bin").mkdir(parents=True)
    for path in (server_folder / "bin").iterdir():
        os.link(path, folder / "bin" / path.name)


@pytest.mark.parametrize("store_engine", ["server-hnsw"], indirect=True)
def test_a_restarted_local_server_has_every_vector_and_answers_the_same(store_engine, deterministic_encoder,
                                                                       settings, tmp_path, milvus_server_folder):
    # A server of its own: a restart replays every collection's log before it is whole again, and the
    # session's server carries every earlier test's writes (the tests after this one waited for them).
    folder = tmp_path / "restarted-server"
    _binary_shared(folder, milvus_server_folder)
    settings.MILVUS_URI = f"local:{folder}"
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {f"{index}.txt": f"red chair {index}".encode() for index in range(20)}
                 | {"blue.png": image_bytes((0, 0, 255)), "green.png": image_bytes((0, 255, 0))})
    collection = store.collection_for(encoders.get())
    try:
        before = _titles("red chair", corpus)
        assert len(before) == 10 and collection.count() == 22

        server = LocalServer(folder)
        old_pid = server.state().pid
        assert server.stop()  # nothing was flushed by hand: the server's log must carry the rows over
        assert server.state() is None
        # Started again by another process (same folder, same ports) while this one, like a running
        # site, holds its loaded collection: its first search sees every item (the server reports the
        # collection loaded before it has replayed unsealed writes; a search then missed most of them).
        subprocess.run([sys.executable, "manage.py", "milvus", "start"], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "MILVUS_URI": str(settings.MILVUS_URI)})
        assert server.state().pid != old_pid
        assert _titles_once_caught_up("red chair", corpus) == before
        assert collection.count() == 22
    finally:
        store.close_all()
        LocalServer(folder).stop()


@pytest.mark.parametrize("store_engine", ["server-hnsw"], indirect=True)
def test_a_collection_the_server_released_is_loaded_again_by_the_next_search(store_engine, deterministic_encoder,
                                                                             settings):
    """A restarted server reloads its collections in the background; until then it answers "collection not
    loaded" (what another client's release_collection does here, on purpose)."""
    from pymilvus import MilvusClient

    # A collection of its own: loading replays a collection's whole log, and the shared test collections
    # carry every earlier test's inserts and deletes (reloading them can outlast a search's timeout).
    settings.MILVUS_COLLECTION_PREFIX = "treload"
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {"red.txt": b"red chair", "blue.png": image_bytes((0, 0, 255))})
    before = _titles("blue chair", corpus)
    name = store.collection_for(encoders.get()).name
    other = MilvusClient(uri=store.engine_status().address)
    try:
        other.release_collection(name)
        assert _titles("blue chair", corpus) == before
        assert store.collection_for(encoders.get()).count() == 2
    finally:
        other.drop_collection(name)
        other.close()


@pytest.mark.parametrize("store_engine", ["server-hnsw"], indirect=True)
def test_a_stalled_server_fails_searches_in_seconds_instead_of_holding_them(store_engine, milvus_server_folder,
                                                                           deterministic_encoder, client, settings):
    """A server that stops answering (paused here; overloaded or cut off by a dropping network alike) costs a
    search MILVUS_READ_TIMEOUT_S and a 503 naming the store, and searches work again once it answers."""
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {"red.txt": b"red chair", "blue.png": image_bytes((0, 0, 255))})
    settings.MILVUS_READ_TIMEOUT_S = 2
    server_pid = LocalServer(milvus_server_folder).state().pid
    os.kill(server_pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = client.get("/api/search", {"q": "red chair", "hybrid": "false"})
        waited_s = time.monotonic() - started
    finally:
        os.kill(server_pid, signal.SIGCONT)
    assert response.status_code == 503, response.content[:300]
    assert "vector store" in response.json()["error"]
    assert waited_s < 15
    assert client.get("/api/search", {"q": "red chair", "hybrid": "false"}).json()["results"][0]["title"] == "red chair"


@pytest.mark.parametrize("store_engine", ["server-hnsw"], indirect=True)
def test_a_new_connection_waits_milvus_connect_timeout_s_for_a_busy_server(store_engine, milvus_server_folder,
                                                                         deterministic_encoder, client, settings):
    """A process's first connection to a server that answers late (busy loading collections for a job on a
    small machine) waits MILVUS_CONNECT_TIMEOUT_S: a patient setting rides it out, a short one answers 503."""
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {"red.txt": b"red chair", "blue.png": image_bytes((0, 0, 255))})
    # The server's address as a server run elsewhere: a late answer is then the connection's alone to wait for.
    server = LocalServer(milvus_server_folder).state()
    settings.MILVUS_URI, server_pid = server.address, server.pid

    def search_while_the_server_is_late(late_s: float):
        store.close_all()  # a new process: its first store call connects
        os.kill(server_pid, signal.SIGSTOP)
        resume = threading.Timer(late_s, os.kill, (server_pid, signal.SIGCONT))
        resume.start()
        try:
            started = time.monotonic()
            return client.get("/api/search", {"q": "red chair", "hybrid": "false"}), time.monotonic() - started
        finally:
            resume.join()

    settings.MILVUS_CONNECT_TIMEOUT_S = 1
    response, waited_s = search_while_the_server_is_late(4)
    assert response.status_code == 503, response.content[:300]
    assert "vector store" in response.json()["error"]
    assert waited_s < 3.5
    settings.MILVUS_CONNECT_TIMEOUT_S = 20
    response, waited_s = search_while_the_server_is_late(4)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["results"][0]["title"] == "red chair"
    assert waited_s >= 3.5


def test_milvus_lite_open_in_another_process_is_refused_with_a_way_out(tmp_path, settings):
    folder = tmp_path / "lite.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
         "MilvusClient(sys.argv[1]).list_collections(); print('open', flush=True); time.sleep(60)", str(folder)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        settings.MILVUS_URI = str(folder)
        with pytest.raises(store.StoreUnavailable, match="open in another process.*Leave MILVUS_URI unset"):
            store.collection("anything").exists()
    finally:
        holder.kill()
        holder.wait()


def _manage(*args: str, env: dict, timeout_s: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def test_site_commands_and_searches_share_the_default_store_at_once(tmp_path, milvus_server_folder):
    """The README's defaults (no MILVUS_URI): the site runs while ingest and search run beside it."""
    _binary_shared(tmp_path / "data" / "milvus", milvus_server_folder)
    env = {key: value for key, value in os.environ.items() if key not in ("MILVUS_URI", "DJANGO_TEST_DB")}
    env |= {"MULTIMODAL_DATA_DIR": str(tmp_path / "data"), "MULTIMODAL_CLIP_MODEL": "tiny-random",
            "CELERY_BROKER_URL": "", "PYTHONUNBUFFERED": "1"}
    notes = tmp_path / "notes"
    notes.mkdir()
    for word in ("moon", "river", "lamp"):
        (notes / f"{word}.txt").write_text(f"a note about the {word}")
    assert _manage("migrate", "-v0", env=env).returncode == 0
    port = free_port()
    site = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        api = f"http://127.0.0.1:{port}/api/search?q=moon"
        # The site's first search starts the local Milvus server; the commands below find it.
        first = wait_until(lambda: json.load(urllib.request.urlopen(api, timeout=120)), timeout_s=180,
                           what="the site answering a search")
        assert first["results"] == []
        ingest, search = [
            subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
            for args in (("ingest", str(notes), "--corpus", "notes"), ("search", "river"))
        ]
        outputs = [process.communicate(timeout=240)[0] for process in (ingest, search)]
        assert [process.returncode for process in (ingest, search)] == [0, 0], outputs
        assert "3 items landed" in outputs[0]
        assert not any("lock" in output.lower() or "Traceback" in output for output in outputs), outputs
        searched = _manage("search", "moon", "--corpus", "notes", env=env)
        assert searched.returncode == 0 and "a note about the moon" in searched.stdout.splitlines()[0]
        results = json.load(urllib.request.urlopen(api, timeout=60))["results"]
        assert results[0]["title"] == "a note about the moon"
        status = _manage("milvus", "status", env=env)
        assert "milvus-local" in status.stdout and "running" in status.stdout and "3 vectors" in status.stdout
    finally:
        os.killpg(site.pid, 15)
        site.wait(timeout=30)
        stopped = _manage("milvus", "stop", env=env)
    assert "stopped the local Milvus server" in stopped.stdout
    assert not LocalServer(tmp_path / "data" / "milvus").state()
    time.sleep(0.5)
    assert "not running" in _manage("milvus", "status", env=env).stdout


def test_a_local_server_whose_port_is_taken_says_so_before_starting(tmp_path, settings):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings.MILVUS_URI = f"local:{tmp_path / 'milvus'}"
        settings.MILVUS_LOCAL_PORT = port
        with pytest.raises(store.StoreUnavailable, match=f"port {port} .* is taken by another program"):
            store.collection("anything").exists()
    assert store.engine_status().running is False


def test_a_server_whose_port_is_taken_while_it_starts_moves_to_another(tmp_path, milvus_server_folder):
    # Another program (say, a server over another folder starting at the same moment) binds the gRPC port
    # after this server chose it as free and before it bound it. The server comes up healthy without
    # the port; callers of the port would reach, and write into, the other program.
    from pymilvus import MilvusClient

    folder = tmp_path / "server"
    _binary_shared(folder, milvus_server_folder)
    port = free_port()
    (folder / PORTS_FILE).write_text(json.dumps({**_ports_fresh(milvus.MilvusServerConfig(data_dir=str(folder))),
                                                 "proxy_port": port}))
    server = LocalServer(folder)
    with socket.socket() as squatter, ThreadPoolExecutor(max_workers=1) as pool:
        starting = pool.submit(server.ensure_running)
        # Its configuration is written once the ports are chosen, a moment before the binary starts.
        wait_until(lambda: (folder / "configs" / "milvus.yaml").exists() or starting.done(), timeout_s=60,
                   what="the server to choose its ports", interval_s=0.01)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            state = starting.result()
            assert state.port != port
            client = MilvusClient(uri=state.address, timeout=10)  # this folder's server, fresh: no collections
            assert client.list_collections() == []
            client.close()
        finally:
            server.stop()
