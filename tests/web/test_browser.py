"""The web archive in a real browser: Debian's Chromium driven by Playwright.

One server (uvicorn in a thread of this process, on a free loopback port) and
one browser for the whole module; each test gets a fresh browser context
(cookies). The hostile-HTML test watches every request the page and its frames
make, and a loopback "canary" HTTP server that every remote reference in the
hostile corpus points at records any request that slips through.

The screenshots of the README's "Web archive" section are made here: into the
test's temporary directory, or into docs/images/web-*.png with
``SYNCER_UPDATE_SCREENSHOTS=1`` (so a test run leaves the checkout as it was).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from syncer.archive.store import ArchiveStore
from syncer.cli.app import main
from syncer.config.schema import parse_config
from syncer.formats.mbox import read_messages
from syncer.web.auth import MAX_FAILURES
from syncer.web.server import build_server
from tests.mail_samples import mail
from tests.web.corpus import HOME, PASSWORD, WORK, WebArchive, build_archive

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/images only when asked to update them."""
    if os.environ.get("SYNCER_UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOC_IMAGES
    return tmp_path_factory.mktemp("screenshots")


_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Canary(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Canary.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def canary() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), _Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, canary: str) -> Iterator[tuple[str, WebArchive]]:
    """The archive and the web server: (base URL, what the archive holds)."""
    root = tmp_path_factory.mktemp("browser")
    archive = build_archive(f"sqlite:///{root / 'archive.db'}", canary)
    (root / "syncer.toml").write_text('[archive]\nurl = "sqlite:///archive.db"\n')
    config = parse_config({"archive": {"url": archive.url}}, path=root / "syncer.toml")
    store = ArchiveStore.open(archive.url)
    port = _free_port()
    server = build_server(config, store, listen=("127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", archive
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: apt-get install chromium (make deps does).")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, site: tuple[str, WebArchive]) -> Iterator[Any]:
    context = browser.new_context(base_url=site[0], accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def _sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _download(page: Any, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    path = info.value.path()
    return Path(path).read_bytes()


def _cli(archive: WebArchive, *args: str) -> bytes:
    config = Path(archive.url.removeprefix("sqlite:///")).with_name("syncer.toml")
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_sign_in_search_read_download_export_and_hold(
    page: Any, site: tuple[str, WebArchive], tmp_path: Path, images: Path
) -> None:
    base, archive = site
    _sign_in(page, "root")
    assert page.url.endswith("/search")
    page.fill("input[name=q]", "subject:nested OR from:mallory")
    page.click("form.search button[type=submit]")
    assert page.text_content("#total") == "2"
    page.screenshot(path=str(images / "web-search.png"), full_page=True)

    name = "04-nested-mixed-alternative-related"
    page.click(f"a.hit[href='/messages/{archive.ids[name]}']")
    page.wait_for_selector("#mail-frame")
    assert page.frame_locator("#mail-frame").locator("img").first.get_attribute("src", timeout=5000)
    page.screenshot(path=str(images / "web-message.png"), full_page=True)
    raw = _download(page, "#raw")
    assert raw == mail(name) == _cli(archive, "show", str(archive.ids[name]), "--raw")
    report = _download(page, "a.attachment >> nth=1")
    with ArchiveStore.open(archive.url) as store:
        recorded = store.message_detail(archive.ids[name]).attachments[1].sha256
    assert hashlib.sha256(report).hexdigest() == recorded
    assert _download(page, "#all-attachments").startswith(b"PK")

    page.goto("/search?q=account:work")
    exported = tmp_path / "export.mbox"
    exported.write_bytes(_download(page, "a.export"))
    got = sorted(m.raw for m in read_messages(exported))
    assert got == sorted([mail(n) for n in WORK] + [_hostile(archive)])

    page.goto("/holds")
    page.fill("form.hold-add input[name=name]", "browser-case")
    page.fill("form.hold-add input[name=query]", "from:mallory")
    page.fill("form.hold-add input[name=reason]", "litigation")
    page.click("form.hold-add button[type=submit]")
    row = page.locator("tr[data-hold='browser-case']")
    assert "from:mallory" in row.inner_text()
    page.screenshot(path=str(images / "web-holds.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button").click()
    page.wait_for_load_state()
    assert row.locator("button").count() == 0  # released: no button any more
    with ArchiveStore.open(archive.url) as store:
        [hold] = [h for h in store.holds(released=True) if h.name == "browser-case"]
        assert hold.released_at is not None
    assert base


def _hostile(archive: WebArchive) -> bytes:
    with ArchiveStore.open(archive.url) as store:
        return store.get_raw(archive.shas["hostile"])


def test_hostile_html_runs_nothing_and_loads_nothing(
    page: Any, site: tuple[str, WebArchive], canary: str
) -> None:
    base, archive = site
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    _sign_in(page, "rita")
    _Canary.hits.clear()
    requests.clear()
    page.goto(f"/messages/{archive.ids['hostile']}")
    frame = page.frame_locator("#mail-frame")
    assert frame.get_by_text("Hostile but readable text").count() == 1
    frame.get_by_text("click").click()
    page.wait_for_timeout(500)
    assert "pwned" not in page.title()
    inner = next(f for f in page.frames if f.url.endswith("/frame"))
    assert "pwned" not in inner.title()
    assert inner.evaluate("document.querySelectorAll('script, form, svg, iframe').length") == 0
    assert not _Canary.hits, _Canary.hits
    outside = [url for url in requests if not url.startswith(base)]
    assert outside == [], outside
    allowed = ("/messages/", "/static/app.css", "/static/app.js")
    assert all(url.removeprefix(base).startswith(allowed) for url in requests), requests


def test_a_reader_reaches_no_other_account(page: Any, site: tuple[str, WebArchive]) -> None:
    _base, archive = site
    _sign_in(page, "rita")
    for name in HOME:
        pk, sha = archive.ids[name], archive.shas[name]
        for path in (f"/messages/{pk}", f"/messages/{sha}", f"/messages/{pk}/attachments/1",
                     f"/messages/{pk}/raw", f"/api/messages/{sha}"):  # fmt: skip
            response = page.request.get(path)
            assert response.status == 404, path
    exported = page.request.get("/api/export?q=account:home&format=mbox")
    assert exported.status == 200 and exported.body() == b""
    page.goto(f"/messages/{archive.ids['71-thread-reply']}")
    assert f"/messages/{archive.ids['72-thread-reply-to-reply']}" not in page.content()
    page.goto("/search?q=")
    assert page.text_content("#total") == str(len(WORK) + 1)


def test_a_request_without_the_csrf_token_is_refused(
    page: Any, site: tuple[str, WebArchive]
) -> None:
    _sign_in(page, "root")
    refused = page.request.post("/holds", form={"name": "sneaky", "query": ""})
    assert refused.status == 403
    refused = page.request.delete("/api/holds/browser-case")
    assert refused.status == 403
    with ArchiveStore.open(site[1].url) as store:
        assert "sneaky" not in [h.name for h in store.holds(released=True)]


def test_ten_wrong_passwords_lock_out_without_saying_who_exists(page: Any) -> None:
    texts: dict[str, list[str]] = {}
    for name in ("lena", "nobody-here"):
        for _ in range(MAX_FAILURES + 1):
            _sign_in(page, name, "wrong password")
            texts.setdefault(name, []).append(page.inner_text("p.error"))
    assert texts["lena"] == texts["nobody-here"]
    _sign_in(page, "lena")
    assert "/login" in page.url
    assert "Sign-in failed" in page.inner_text("p.error")


def test_every_read_is_in_the_audit_trail_and_it_verifies(
    page: Any, site: tuple[str, WebArchive], images: Path
) -> None:
    _base, archive = site
    _sign_in(page, "rita")
    pk = archive.ids["10-unsafe-filenames"]
    page.goto(f"/messages/{pk}")
    _download(page, "#raw")
    _download(page, "a.attachment >> nth=0")
    page.goto("/search?q=subject:hostile")
    _download(page, "a.export") if page.locator("a.export").count() else None
    page.context.clear_cookies()
    _sign_in(page, "audrey")
    page.goto("/audit")
    assert "chain intact" in page.inner_text("#verdict")
    page.screenshot(path=str(images / "web-audit.png"))
    trail = page.inner_text("table.audit")
    sha = archive.shas["10-unsafe-filenames"]
    for kind in ("web.message_viewed", "web.raw_downloaded", "web.attachment_downloaded",
                 "web.searched", "web.exported", "web.sign_in", "web.sign_in_failed"):  # fmt: skip
        assert kind in trail, kind
    assert sha in trail
    assert b"chain intact" in _cli(archive, "audit", "verify")
