"""The web archive's pages and API over HTTP (Starlette's TestClient), SQLite and PostgreSQL.

Roles and isolation (a reader never reaches another account's mail by any
path), CSRF on every state-changing route, the sign-in lockout without user
enumeration, security headers and cookies, byte-exact downloads and exports,
and the access trail. The same checks in a real browser are in test_browser.py.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from syncer.archive.store import ArchiveStore
from syncer.formats.mbox import read_messages
from syncer.web.auth import FAILED, MAX_FAILURES
from tests.mail_samples import mail
from tests.web.conftest import csrf_of
from tests.web.corpus import HOME, WORK, WebArchive

Client = Callable[..., TestClient]


def _bearer(archive: WebArchive, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {archive.tokens[user]}"}


def test_pages_need_sign_in_and_sign_in_works(client: Client) -> None:
    anon = client()
    assert anon.get("/search").headers["location"] == "/login?next=/search"
    assert anon.get("/api/search").status_code == 401
    root = client("root")
    page = root.get("/search?q=invoice")
    assert page.status_code == 200 and "root (admin)" in page.text
    out = root.post("/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert root.get("/search").status_code == 303


def test_reader_cannot_reach_another_accounts_mail(client: Client, web_archive: WebArchive) -> None:
    rita = client("rita")
    token = _bearer(web_archive, "rita")
    for name in HOME:
        pk, sha = web_archive.ids[name], web_archive.shas[name]
        for ref in (str(pk), sha, sha[:12]):
            pages = ("", "/raw", "/frame", "/attachments/1", "/attachments.zip")
            for tail in pages:
                assert rita.get(f"/messages/{ref}{tail}").status_code == 404, tail
            for path in (f"/api/messages/{ref}", f"/api/messages/{ref}/raw",
                         f"/api/messages/{ref}/attachments/1"):  # fmt: skip
                assert rita.get(path, headers=token).status_code == 404, path
    # Search, export and the thread list show only work's messages.
    hits = rita.get("/api/search?q=&limit=500", headers=token).json()
    assert {h["sha256"] for h in hits["hits"]} == {web_archive.shas[n] for n in [*WORK, "hostile"]}
    assert hits["total"] == len(WORK) + 1
    assert rita.get("/api/search?q=account:home", headers=token).json()["total"] == 0
    export = rita.get("/api/export?q=&format=mbox", headers=token).content
    assert not any(web_archive.shas[n][:12] in export.decode("latin-1") for n in HOME)
    assert all(mail(n) not in export for n in HOME)
    thread_page = rita.get(f"/messages/{web_archive.ids['71-thread-reply']}").text
    assert f"/messages/{web_archive.ids['72-thread-reply-to-reply']}" not in thread_page
    hank_page = client("hank").get(f"/messages/{web_archive.ids['72-thread-reply-to-reply']}")
    assert hank_page.status_code == 200
    # Readers see neither the audit trail nor the holds.
    assert rita.get("/audit").status_code == 403
    assert rita.get("/api/audit", headers=token).status_code == 403


def test_the_message_page_shows_the_gmail_labels(client: Client, web_archive: WebArchive) -> None:
    page = client("audrey").get(f"/messages/{web_archive.ids['70-thread-root']}").text
    assert "<dt>Labels</dt>" in page and "Projects" in page


def test_admin_sees_the_thread_across_accounts(client: Client, web_archive: WebArchive) -> None:
    page = client("audrey").get(f"/messages/{web_archive.ids['71-thread-reply']}").text
    assert f"/messages/{web_archive.ids['72-thread-reply-to-reply']}" in page
    assert f"/messages/{web_archive.ids['70-thread-root']}" in page


def test_every_state_changing_route_refuses_a_request_without_csrf(
    client: Client, web_store: ArchiveStore
) -> None:
    root = client("root")
    app = root.app
    changing = [
        r
        for r in app.routes  # type: ignore[attr-defined]
        if isinstance(r, Route) and set(r.methods or ()) & {"POST", "DELETE", "PUT", "PATCH"}
    ]
    assert {r.path for r in changing} >= {"/login", "/logout", "/holds", "/api/holds"}
    for r in changing:
        path = r.path.replace("{name}", "x")
        method = "DELETE" if "DELETE" in (r.methods or ()) else "POST"
        response = root.request(method, path, data={"name": "x", "query": ""})
        assert response.status_code == 403, (method, path, response.status_code)
        assert "CSRF" in response.text
    assert "x" not in [h.name for h in web_store.holds(released=True)]
    page = root.get("/holds").text
    added = root.post(
        "/holds", data={"name": "case-1", "query": "from:alice", "csrf": csrf_of(page)}
    )
    assert added.status_code == 303
    assert "case-1" in [h.name for h in web_store.holds()]


def test_ten_wrong_passwords_lock_out_without_revealing_the_user(client: Client) -> None:
    http = client()
    answers: dict[str, list[tuple[int, str]]] = {}
    for name in ("lena", "no-such-user"):
        for _ in range(MAX_FAILURES):
            token = csrf_of(http.get("/login").text)
            reply = http.post("/login", data={"name": name, "password": "wrong", "csrf": token})
            answers.setdefault(name, []).append((reply.status_code, reply.text))
    assert answers["lena"] == answers["no-such-user"]
    assert all(code == 401 and FAILED in text for code, text in answers["lena"])
    token = csrf_of(http.get("/login").text)
    from tests.web.corpus import PASSWORD

    locked = http.post("/login", data={"name": "lena", "password": PASSWORD, "csrf": token})
    assert locked.status_code == 401 and FAILED in locked.text


def test_headers_and_cookies(client: Client, web_archive: WebArchive) -> None:
    http = client()
    login = http.get("/login")
    assert "default-src 'self'" in login.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    assert login.headers["x-content-type-options"] == "nosniff"
    assert login.headers["referrer-policy"] == "no-referrer"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    root = client("root")
    frame = root.get(f"/messages/{web_archive.ids['hostile']}/frame")
    csp = frame.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; img-src data:") and "sandbox" in csp
    for bad in ("<script", "onerror", "javascript:", "<form", "<meta", "<svg", "<iframe",
                "<object", "<link", "<style", "127.0.0.1:9"):  # fmt: skip
        assert bad not in frame.text.split("<body>", 1)[1].lower(), bad
    assert "Hostile but readable text" in frame.text
    cid = root.get(f"/messages/{web_archive.ids['04-nested-mixed-alternative-related']}/frame")
    assert 'src="data:image/png;base64,' in cid.text


def test_downloads_are_byte_exact_and_named_safely(
    client: Client, web_archive: WebArchive, web_store: ArchiveStore
) -> None:
    headers = _bearer(web_archive, "rita")
    http = client()
    for name in WORK:
        raw = http.get(f"/api/messages/{web_archive.shas[name]}/raw", headers=headers)
        assert raw.content == mail(name)
    pk = web_archive.ids["10-unsafe-filenames"]
    detail = web_store.message_detail(pk)
    for item in detail.attachments:
        got = http.get(f"/api/messages/{pk}/attachments/{item.index}", headers=headers)
        assert got.status_code == 200
        import hashlib

        assert hashlib.sha256(got.content).hexdigest() == item.sha256
        disposition = got.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="')
        assert "/" not in disposition and "\\" not in disposition  # never a path
        served = got.headers["content-type"].split(";")[0]
        assert served in ("application/octet-stream", "text/plain", "application/pdf", "image/png")
    zipped = client("rita").get(f"/messages/{pk}/attachments.zip")
    members = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert len(members) == len(detail.attachments)
    assert all("/" not in m and not m.startswith(".") for m in members)


def test_export_mbox_and_zip_hold_the_exact_messages(
    client: Client, web_archive: WebArchive, tmp_path: Path
) -> None:
    headers = _bearer(web_archive, "audrey")
    http = client()
    box = http.get("/api/export?q=account:work&format=mbox", headers=headers)
    assert box.status_code == 200 and box.headers["content-type"].startswith("application/mbox")
    path = tmp_path / "export.mbox"
    path.write_bytes(box.content)
    got = sorted(m.raw for m in read_messages(path))
    assert got == sorted([mail(n) for n in WORK] + [_hostile(web_archive)])
    zipped = http.get("/api/export?q=account:home&format=zip", headers=headers)
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert sorted(archive.read(n) for n in archive.namelist()) == sorted(mail(n) for n in HOME)


def _hostile(web_archive: WebArchive) -> bytes:
    from tests.web.conftest import NO_CANARY
    from tests.web.corpus import hostile_message

    return hostile_message(NO_CANARY)


def test_api_holds_and_audit(client: Client, web_archive: WebArchive) -> None:
    http = client()
    admin, auditor = _bearer(web_archive, "root"), _bearer(web_archive, "audrey")
    made = http.post("/api/holds", json={"name": "lit-7", "query": "from:mallory"}, headers=admin)
    assert made.status_code == 201 and made.json()["name"] == "lit-7"
    assert (
        http.post("/api/holds", json={"name": "x", "query": ""}, headers=auditor).status_code == 403
    )
    bad = http.post("/api/holds", json={"name": "y", "query": "from:"}, headers=admin)
    assert bad.status_code == 400
    listed = http.get("/api/holds", headers=auditor).json()["holds"]
    assert "lit-7" in [h["name"] for h in listed]
    assert http.delete("/api/holds/lit-7", headers=admin).json()["released_at"] is not None
    listed = http.get("/api/holds", headers=auditor).json()["holds"]
    assert "lit-7" not in [h["name"] for h in listed]
    trail = http.get("/api/audit", headers=auditor).json()
    assert trail["verify"]["ok"] is True
    kinds = [e["kind"] for e in trail["events"]]
    assert "hold.added" in kinds and "hold.released" in kinds


def test_every_read_of_mail_is_in_the_audit_trail(
    client: Client, web_archive: WebArchive, web_store: ArchiveStore
) -> None:
    rita = client("rita")
    sha = web_archive.shas["04-nested-mixed-alternative-related"]
    pk = web_archive.ids["04-nested-mixed-alternative-related"]
    rita.get("/search?q=logo")
    rita.get(f"/messages/{pk}")
    rita.get(f"/messages/{pk}/raw")
    rita.get(f"/messages/{pk}/attachments/1")
    rita.get(f"/messages/{pk}/attachments.zip")
    rita.get("/api/export?q=logo&format=zip", headers=_bearer(web_archive, "rita"))
    failed = client()
    failed.post("/login", data={"name": "rita", "password": "nope",
                                "csrf": csrf_of(failed.get("/login").text)})  # fmt: skip
    events = [e for e in web_store.audit_events() if e.actor == "rita"]
    seen = [(e.kind, e.subject) for e in events]
    for expected in [
        ("web.sign_in", "rita"),
        ("web.searched", "logo"),
        ("web.message_viewed", sha),
        ("web.raw_downloaded", sha),
        ("web.attachment_downloaded", sha),
        ("web.attachments_downloaded", sha),
        ("web.exported", "logo"),
        ("web.sign_in_failed", "rita"),
    ]:
        assert expected in seen, expected
    assert web_store.audit_verify().ok


@pytest.mark.parametrize(
    "path", ["/folders", "/status", "/holds", "/retention", "/audit", "/users"]
)
def test_admin_pages_render(client: Client, path: str) -> None:
    page = client("root").get(path)
    assert page.status_code == 200, page.text
    assert "<script>" not in page.text  # no inline script anywhere


def test_single_sign_on_header_is_believed_only_from_a_trusted_proxy(
    web_archive: WebArchive, web_store: ArchiveStore
) -> None:
    from syncer.config.schema import parse_config
    from syncer.web.app import create_app

    def app(trusted: list[str]) -> TestClient:
        config = parse_config(
            {
                "archive": {"url": web_archive.url},
                "web": {"trusted_proxies": trusted, "sso_header": "X-Remote-User"},
            }
        )
        return TestClient(create_app(config, web_store, secret="s"), follow_redirects=False)

    # Starlette's TestClient connects from the address "testclient".
    with app(["testclient"]) as proxied, app(["10.0.0.1"]) as direct:
        assert proxied.get("/search", headers={"X-Remote-User": "rita"}).status_code == 200
        assert proxied.get("/search", headers={"X-Remote-User": "nobody"}).status_code == 303
        assert direct.get("/search", headers={"X-Remote-User": "root"}).status_code == 303
    events = [e for e in web_store.audit_events() if e.kind == "web.searched"]
    assert events[-1].details["via"] == "sso" and events[-1].actor == "rita"


def test_sign_in_attempts_are_rate_limited_per_client() -> None:
    from syncer.web.security import RateLimit

    limit = RateLimit(limit=3, window=60)
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b")


def test_facets_become_query_terms_and_the_export_link_carries_them(client: Client) -> None:
    from syncer.web.pages import facet_query

    assert facet_query(
        {
            "q": "invoice",
            "account": "work",
            "folder": "Sent Items",
            "since": "2024-01-01",
            "until": "2024-01-31",
            "attachments": "1",
            "from": "alice",
        }
    ) == (
        'invoice account:work folder:"Sent Items" from:alice after:2023-12-31 '
        "before:2024-02-01 has:attachment"
    )
    page = client("root").get("/search?q=&account=home").text
    assert "/api/export?q=account%3Ahome&amp;format=mbox" in page
    assert "<mark>" not in page or "[[" not in page


def test_snippets_are_escaped_and_marked() -> None:
    from syncer.web.routing import highlight

    assert str(highlight("<b>[[x]]</b>")) == "&lt;b&gt;<mark>x</mark>&lt;/b&gt;"


def test_api_audit_newest(client: Client, web_archive: WebArchive) -> None:
    auditor = _bearer(web_archive, "audrey")
    trail = client().get("/api/audit?newest=3", headers=auditor).json()["events"]
    assert len(trail) == 3 and trail[0]["id"] > trail[1]["id"] > trail[2]["id"]


def test_a_bounded_count_stops_past_its_limit(web_store: ArchiveStore) -> None:
    assert web_store.count_messages("") == len(WORK) + len(HOME) + 1
    assert web_store.count_messages("", at_most=3) == 4
    assert web_store.count_messages("account:home", at_most=100) == len(HOME)


def test_an_admin_removes_a_user_from_the_users_page(
    client: Client, web_store: ArchiveStore
) -> None:
    web_store.add_user("temp", "reader", None, ("work",), actor="test")
    rita = client("rita")
    assert rita.get("/users").status_code == 403
    root = client("root")
    page = root.get("/users").text
    assert "temp" in page
    done = root.post("/users/temp/remove", data={"csrf": csrf_of(page)})
    assert done.status_code == 303 and web_store.user("temp") is None
    refused = root.post("/users/root/remove", data={"csrf": csrf_of(page)})
    assert refused.status_code == 400 and web_store.user("root") is not None


def test_searches_confined_to_accounts(web_store: ArchiveStore, web_archive: WebArchive) -> None:
    work = {web_archive.ids[n] for n in [*WORK, "hostile"]}
    assert {h.id for h in web_store.search("", limit=100, accounts=("work",))} == work
    assert web_store.count_messages("", accounts=()) == 0
    assert web_store.count_messages("account:work", accounts=("home",)) == 0
    thread = web_store.search("thread:x OR -thread:x", limit=100, accounts=("home",))
    assert {h.id for h in thread} == {web_archive.ids[n] for n in HOME}
    batches = list(web_store.select_message_ids("", accounts=("home", "work")))
    assert sum(map(len, batches)) == len(WORK) + len(HOME) + 1
