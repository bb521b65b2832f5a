"""Streamed responses hold at most `webui.max_streams` of the server's threads; the rest stay free."""

from __future__ import annotations

import threading
from datetime import timedelta

from webui_data import TOKEN, make_doc


def test_a_download_beyond_max_streams_is_refused_until_one_ends_and_searches_still_answer(make_app, seed, now):
    seed([make_doc(now - timedelta(seconds=i), f"line {i}", offset=i) for i in range(3)])
    app = make_app(threads=3, max_streams=2)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    started, finish = threading.Barrier(3), [threading.Event(), threading.Event()]
    statuses: list[int] = []

    def download(finished: threading.Event) -> None:
        # a server thread per stream, as waitress runs them; the body is read only when told to
        response = client.get("/api/export", buffered=False)
        statuses.append(response.status_code)
        started.wait()
        finished.wait(30)
        response.get_data()
        response.close()  # the server closes a finished response: that frees its slot

    threads = [threading.Thread(target=download, args=(event,)) for event in finish]
    for thread in threads:
        thread.start()
    started.wait(30)
    try:
        assert statuses == [200, 200]
        refused = client.get("/api/export")
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert refused.get_json()["param"] is None and "webui.max_streams" in refused.get_json()["error"]
        assert client.get("/api/logs").status_code == 200  # ordinary requests are not held back
        finish[0].set()
        threads[0].join(30)
        again = client.get("/api/export")
        assert again.status_code == 200 and again.get_data().count(b"\n") == 3
    finally:
        for event in finish:
            event.set()
        for thread in threads:
            thread.join(30)
