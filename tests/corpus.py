"""A deterministic generator of realistic mail, for benchmarks, demos and tests.

syncer's performance targets (``docs/performance.md``) are ratios to peers
measured on *the same* corpus, and its normalizer must cope with what real
mailboxes hold: RFC 2047 headers in Korean, German and Japanese (also in legacy
charsets), quoted-printable and base64 bodies, multipart/alternative and
multipart/mixed trees, threads linked by In-Reply-To/References, a long tail of
multi-megabyte attachments. This module produces such a mailbox from a fixed
seed, byte for byte the same on every run and machine (``random.Random(seed)``,
no wall clock, no hash-order dependence), so benchmark runs compare and test
failures reproduce.

It streams: :func:`generate` yields one :class:`CorpusMessage` at a time, so
10,000 messages (about 650 MB) never sit in memory together. Bulk bytes are
slices of pools built once per seed (random bytes pre-encoded in base64, text
pre-wrapped into lines), which keeps generation far above 50 MB/s.

Public API: :class:`CorpusMessage`, :func:`generate`, :func:`folder_names`,
:func:`write_maildir`, :func:`describe` (size statistics), and a command line::

    python -m tests.corpus --count 10000 --stats
    python -m tests.corpus --count 300 --size-profile small --maildir /tmp/corpus
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import functools
import os
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Literal
from urllib.parse import quote

FolderProfile = Literal["standard", "many"]
SizeProfile = Literal["realistic", "small"]

KB = 1000  # decimal units, as docs/performance.md quotes them
MB = 1000 * 1000
CRLF = b"\r\n"


@dataclass(frozen=True)
class CorpusMessage:
    """One generated message and where it lives.

    ``folder`` is the IMAP display name (``/`` separates levels, non-ASCII as is),
    ``raw`` the RFC 5322 bytes with CRLF line endings, ``flags`` IMAP flags and
    keywords, ``internaldate`` an aware UTC datetime (whole seconds).
    """

    folder: str
    raw: bytes
    flags: tuple[str, ...]
    internaldate: datetime


# -- the shape of the corpus -------------------------------------------------------------------

#: Realistic size buckets: (low, high, per mille, log-uniform within the bucket).
#: Per mille of 1,000 exactly: 5-10 KB takes 31.1% instead of 32% so the list sums to 100%.
#: Messages are assigned in shuffled blocks of 1,000, so every full block has these counts.
REALISTIC_BUCKETS: tuple[tuple[int, int, int, bool], ...] = (
    (2 * KB, 5 * KB, 280, False),
    (5 * KB, 10 * KB, 311, False),
    (10 * KB, 20 * KB, 290, False),
    (20 * KB, 100 * KB, 20, True),
    (100 * KB, 500 * KB, 65, True),
    (500 * KB, 1 * MB, 15, True),
    (1 * MB, 2 * MB, 15, True),
    (2 * MB, 3 * MB, 4, True),
)
#: Buckets at or above this index always carry attachments (the ~10% of the corpus).
_ATTACHMENT_BUCKET = 4
#: The small profile: a few KB each, attachments on 10%.
SMALL_BUCKETS: tuple[tuple[int, int, int, bool], ...] = (
    (1500, 4 * KB, 600, False),
    (4 * KB, 8 * KB, 300, False),
    (8 * KB, 24 * KB, 100, True),
)

#: The standard folders and their shares over the whole corpus.
STANDARD_FOLDERS = {"INBOX": 0.39, "Archive/2024": 0.36, "Sent": 0.20, "Überweisungen": 0.05}

_OWNER = ("Lena Hoffmann", "lena@hoffmann.example")
_BANK = ("Sparkasse Musterstadt", "noreply@sparkasse-musterstadt.example")
_MAIL_HOST = "mx.hoffmann.example"

#: The corpus timeline: dates spread evenly over this span whatever the count.
_START = datetime(2024, 1, 2, 7, 0, tzinfo=UTC)
_END = datetime(2025, 10, 31, 20, 0, tzinfo=UTC)
_YEAR_2025 = datetime(2025, 1, 1, tzinfo=UTC)


def _words(text: str) -> list[str]:
    return text.split()


_WORDS = {
    "en": _words(
        "the of and to in is that for it as was with be by on not he this are or his from at "
        "which but have an they you were her she there been one all we their has would when "
        "if more will so no out up into do any your what time about than can only other new "
        "some could these two may first then like our over such also after year just where "
        "most made between back many those before must through well should because each "
        "people same under last never very while might great still since being long without "
        "project budget meeting schedule review report quarter customer invoice contract "
        "release draft proposal feedback deadline update team office travel agenda minutes "
        "server migration backup account payment delivery order shipment support ticket "
        "figures slides numbers presentation workshop conference call notes timeline scope "
        "estimate approval signature document version changes summary question answer"
    ),
    "de": _words(
        "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als "
        "auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem "
        "über einen so zum war haben nur oder aber vor zur bis mehr durch man sein wurde "
        "sei können müssen würde später schon heute morgen nächste Woche Besprechung "
        "Angebot Rechnung Änderung Bestätigung Rückmeldung Unterlagen Vertrag Termin "
        "Überweisung Kündigung Zahlung Lieferung Auftrag Kunde Projekt Frist Entwurf "
        "Grüße Frage Antwort Gespräch Übersicht Ergebnis Prüfung Straße München Köln "
        "Büro Größe Gebühr Schlüssel Verfügung Erklärung Abstimmung Lösung Kosten "
        "Zeitplan Protokoll Anhang Bericht Mitarbeiter Geschäftsführung Abteilung"
    ),
    "ko": _words(
        "안녕하세요 회의 일정 확인 부탁드립니다 감사합니다 자료 보고서 프로젝트 내일 오늘 "
        "다음 주 관련 공유드립니다 검토 의견 수정 요청 견적서 계약서 첨부 파일 참고 "
        "부탁 드립니다 진행 상황 결과 담당자 팀 회사 고객 일정표 변경 사항 예정 "
        "완료 준비 발표 자료를 메일 연락 주시면 좋겠습니다 시간 가능 여부 장소 "
        "회의실 오전 오후 금요일 월요일 지난번 말씀하신 내용 정리 드렸습니다 추가"
    ),
    "ja": _words(
        "お世話になっております 会議 資料 確認 よろしくお願いいたします 添付 予定 明日 本日 "
        "件 ご連絡 打ち合わせ 日程 調整 見積書 請求書 契約書 送付 ご査収 ください 担当 "
        "プロジェクト 進捗 報告 変更 修正 ご検討 お願い 申し上げます 来週 先日 "
        "ありがとうございました 取り急ぎ 以上 ファイル 共有 会社 部署 説明 内容 "
        "について ご確認 いただけますでしょうか 午前 午後 金曜日 月曜日 場所 会議室"
    ),
}

_NAMES = {
    "en": (
        _words(
            "James Mary Robert Patricia John Jennifer Michael Linda David Sarah Emily Daniel "
            "Olivia Thomas Grace"
        ),
        _words(
            "Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Clark Walker "
            "O'Neill Baker Carter Hughes"
        ),
    ),
    "de": (
        _words(
            "Jürgen Björn Käthe Sören Günther Anna Lukas Sophie Maximilian Marie Felix Jörg "
            "Hannah Paul Lea"
        ),
        _words(
            "Müller Schröder Bäcker Krüger Köhler Weiß Schäfer Wagner Becker Hoffmann Schulz "
            "Fuchs Groß Jäger Möller"
        ),
    ),
    "ko": (
        _words("민준 서연 지훈 하은 도윤 지우 서준 수빈 예준 지민"),
        _words("김 이 박 최 정 강 조 윤 장 임"),
    ),
    "ja": (
        _words("太郎 花子 健太 美咲 翔太 陽菜 大輔 さくら 拓也 結衣"),
        _words("佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤"),
    ),
}
_ROMAN = {  # ASCII local parts for the CJK names
    "민준": "minjun",
    "서연": "seoyeon",
    "지훈": "jihoon",
    "하은": "haeun",
    "도윤": "doyun",
    "지우": "jiwoo",
    "서준": "seojun",
    "수빈": "subin",
    "예준": "yejun",
    "지민": "jimin",
    "김": "kim",
    "이": "lee",
    "박": "park",
    "최": "choi",
    "정": "jung",
    "강": "kang",
    "조": "cho",
    "윤": "yoon",
    "장": "jang",
    "임": "lim",
    "太郎": "taro",
    "花子": "hanako",
    "健太": "kenta",
    "美咲": "misaki",
    "翔太": "shota",
    "陽菜": "hina",
    "大輔": "daisuke",
    "さくら": "sakura",
    "拓也": "takuya",
    "結衣": "yui",
    "佐藤": "sato",
    "鈴木": "suzuki",
    "高橋": "takahashi",
    "田中": "tanaka",
    "伊藤": "ito",
    "渡辺": "watanabe",
    "山本": "yamamoto",
    "中村": "nakamura",
    "小林": "kobayashi",
    "加藤": "kato",
}
_DOMAINS = {
    "en": ("acme.example", "northwind.example", "example.com", "contoso.example"),
    "de": (
        "muster-gmbh.example",
        "beispiel.example",
        "baeckerei-krueger.example",
        "stadtwerke.example",
    ),
    "ko": ("hanbit.example", "seoul-tech.example"),
    "ja": ("sakura-corp.example", "fuji-shoji.example"),
}
_TIMEZONES = {
    "en": (timezone(timedelta(hours=-5)), timezone(timedelta(hours=-8)), UTC),
    "de": (timezone(timedelta(hours=1)), timezone(timedelta(hours=2))),
    "ko": (timezone(timedelta(hours=9)),),
    "ja": (timezone(timedelta(hours=9)),),
}
_LANG_WEIGHTS = (("en", 0.50), ("de", 0.32), ("ko", 0.09), ("ja", 0.09))
#: Legacy charsets real mail still uses, and how often a message of that language uses one.
_LEGACY_CHARSET = {"de": ("iso-8859-1", 0.25), "ko": ("euc-kr", 0.3), "ja": ("iso-2022-jp", 0.3)}

_PROJECTS = _words("Apollo Hermes Phoenix Orion Atlas Nordlicht Kranich Ginkgo")
_WEEKDAYS = {
    "en": _words("Monday Tuesday Wednesday Thursday Friday"),
    "de": _words("Montag Dienstag Mittwoch Donnerstag Freitag"),
}
_SUBJECTS = {
    "en": (
        "Meeting notes {date}",
        "Q{q} budget review",
        "Invoice #{n}",
        "Your order {n} has shipped",
        "Weekly update: {project}",
        "Question about {project}",
        "Draft proposal for {project} - please review before {weekday}",
        "Lunch on {weekday}?",
        "Slides for the {project} kick-off",
        "Travel plans for {date}",
    ),
    "de": (
        "Rechnung Nr. {n}",
        "Besprechung am {weekday}",
        "Änderungen am Angebot für {project}",
        "Frage zur Überweisung vom {date}",
        "Termin für nächste Woche",
        "Protokoll der Sitzung vom {date}",
        "Grüße aus München",
        "Bestätigung Ihrer Bestellung {n}",
        "Rückmeldung zum Entwurf {project}",
        "Kündigung des Vertrags {n} – bitte prüfen",
    ),
    "ko": (
        "회의 일정 확인 부탁드립니다",
        "{project} 프로젝트 보고서",
        "견적서 송부드립니다 ({n})",
        "다음 주 미팅 관련",
        "자료 공유드립니다 - {project}",
        "계약서 검토 요청",
    ),
    "ja": (
        "会議の日程について",
        "{project}の資料送付の件",
        "お見積もりのご連絡 ({n})",
        "来週の打ち合わせについて",
        "請求書送付のお知らせ",
        "【ご確認】{project} 進捗報告",
    ),
}
_NEWSLETTERS = (
    ("en", "The Weekly Digest", "digest@news.example", "Issue {n}: what changed this week"),
    ("en", "Shop Deals", "offers@shop.example", "🎉 {q}0% off everything until {weekday}"),
    (
        "de",
        "Stadtwerke Newsletter",
        "newsletter@stadtwerke.example",
        "Neuigkeiten für März: Preisänderungen und Tipps",
    ),
    ("ja", "テック通信", "info@tech-tsushin.example", "【第{n}号】今週のニュース"),
)
_PAYEES = (
    "Stadtwerke Musterstadt",
    "Hausverwaltung Krüger",
    "Techniker Krankenkasse",
    "Müller & Söhne GmbH",
    "Finanzamt München",
)
_GREETING = {
    "en": ("Hi {first},", "Dear {first} {last},", "Hello {first},"),
    "de": ("Hallo {first},", "Sehr geehrte Damen und Herren,", "Moin {first},"),
    "ko": ("{last}{first}님, 안녕하세요.",),
    "ja": ("{last}様", "{last}さん"),
}
_SIGNOFF = {
    "en": ("Best regards,", "Thanks,", "Cheers,"),
    "de": ("Viele Grüße", "Mit freundlichen Grüßen", "Beste Grüße"),
    "ko": ("감사합니다.",),
    "ja": ("よろしくお願いいたします。",),
}
_WROTE = {
    "en": "On {date}, {name} wrote:",
    "de": "Am {date} schrieb {name}:",
    "ko": "{date}, {name} 님이 작성:",
    "ja": "{date} {name} さんは書きました:",
}
_MAILERS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0",
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3731.700.6)",
    "Roundcube Webmail/1.6.5",
    "K-9 Mail for Android",
)
_ATTACHMENT_NAMES = (
    ("application/pdf", "Rechnung_{n}.pdf"),
    ("application/pdf", "scan_{n}.pdf"),
    ("application/pdf", "Angebot {project} {n}.pdf"),
    ("application/pdf", "견적서_{n}.pdf"),
    ("application/pdf", "請求書_{n}.pdf"),
    ("image/png", "IMG_{n}.png"),
    ("image/png", "screenshot {n}.png"),
    ("image/png", "Übersicht_{n}.png"),
)
_MAGIC = {"application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "image/png": b"\x89PNG\r\n\x1a\n"}

#: The 96 extra folders of the "many" variant (plus the four standard ones).
_MANY_EXTRA = (
    [f"Projects/{p}" for p in _PROJECTS]
    + [f"Projects/{p}/Drafts" for p in _PROJECTS]
    + [
        f"Lists/{n}"
        for n in _words(
            "python-dev debian-user dovecot postgresql-general lwn rust-users golang-nuts "
            "sqlite-users isync-devel notmuch mutt-users openbsd-misc"
        )
    ]
    + [
        f"Kunden/{n}"
        for n in _words("Müller Schröder Bäcker Krüger Köhler Weiß Schäfer Wagner Becker Schulz")
    ]
    + [f"Kunden/{n}" for n in ("Fuchs", "Groß")]
    + [f"Clients/{n}" for n in _words("Acme Northwind Contoso Fabrikam Initech Globex Umbrella")]
    + ["Clients/Hooli", "Haus & Garten"]
    + _words(
        "보관함 보관함/계약 請求書 請求書/2024 Steuer Steuer/Belege Versicherung Wohnung Auto "
        "Familie Verein Bewerbungen Receipts Newsletters Notifications Notifications/GitHub "
        "Notifications/Jira Later Waiting Important Old Old/2019 Old/2020 Old/2021 Old/2022 "
        "Old/2023 Drafts Trash Archive Archive/Misc Personal Personal/Fotos Personal/Ärzte "
        "Finanzen Finanzen/Depot Finanzen/Kredite Gesundheit Übergabe Tickets Tickets/Open "
        "Tickets/Closed Team Team/1-on-1 Team/Hiring Conferences Conferences/FOSDEM "
        "Conferences/PyCon"
    )
)
assert len(_MANY_EXTRA) == 96, len(_MANY_EXTRA)


# -- pools, built once per seed ------------------------------------------------------------------


@dataclass(frozen=True)
class _TextPool:
    """Pre-wrapped text of one language: UTF-8 lines ending in CRLF, stored twice over."""

    data: bytes  # the pool twice, so a slice never has to wrap
    starts: tuple[int, ...]  # offset of every line start in the first copy
    size: int  # length of one copy


@dataclass(frozen=True)
class _Pools:
    text: dict[str, _TextPool]
    b64: bytes  # random bytes in base64, 76 characters + CRLF per line, stored twice
    b64_lines: int
    contacts: dict[str, tuple[tuple[str, str, str, str], ...]]  # lang -> (first, last, name, addr)


_B64_LINE = 78  # 76 characters + CRLF
_B64_RAW_LINE = 57


def _wrap(words: Iterable[str], width: int, joiner: str) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + len(joiner) + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line}{joiner}{word}" if line else word
    if line:
        lines.append(line)
    return lines


def _build_text_pool(rng: random.Random, lang: str, size: int) -> _TextPool:
    words = _WORDS[lang]
    cjk = lang in ("ko", "ja")
    joiner = "" if lang == "ja" else " "
    width = 36 if cjk else 72
    stop = "。" if lang == "ja" else "."
    lines: list[str] = []
    total = 0
    while total < size:
        sentences = []
        for _ in range(rng.randint(2, 6)):
            chosen = rng.choices(words, k=rng.randint(5, 16))
            sentence = joiner.join(chosen)
            if not cjk:
                sentence = sentence[0].upper() + sentence[1:]
            if lang == "ja" and rng.random() < 0.5:
                cut = rng.randrange(1, len(chosen))
                sentence = "".join(chosen[:cut]) + "、" + "".join(chosen[cut:])
            sentences.append(sentence + stop)
        if lang == "ja":  # no spaces to break at: cut every `width` characters
            text = "".join(sentences)
            paragraph = [text[i : i + width] for i in range(0, len(text), width)]
        else:
            paragraph = _wrap(" ".join(sentences).split(" "), width, " ")
        lines.extend(paragraph)
        lines.append("")
        total += sum(len(x.encode()) + 2 for x in paragraph) + 2
    data = ("\r\n".join(lines) + "\r\n").encode()
    starts = [0]  # every non-empty line: a slice never opens with a blank line
    pos = data.find(CRLF)
    while pos != -1 and pos + 2 < len(data):
        if data[pos + 2 : pos + 4] != CRLF:
            starts.append(pos + 2)
        pos = data.find(CRLF, pos + 2)
    return _TextPool(data=data + data, starts=tuple(starts), size=len(data))


def _build_contacts(rng: random.Random) -> dict[str, tuple[tuple[str, str, str, str], ...]]:
    contacts: dict[str, tuple[tuple[str, str, str, str], ...]] = {}
    for lang, (firsts, lasts) in _NAMES.items():
        people = []
        for first in firsts:
            for last in lasts:
                if lang in ("ko", "ja"):
                    name = f"{last}{first}"  # family name first, no space
                    local = f"{_ROMAN[first]}.{_ROMAN[last]}"
                else:
                    name = f"{first} {last}"
                    local = (
                        f"{first[0]}.{last}".lower()
                        .replace("'", "")
                        .replace("ä", "ae")
                        .replace("ö", "oe")
                        .replace("ü", "ue")
                        .replace("ß", "ss")
                        .replace("ø", "o")
                    )
                addr = f"{local}@{rng.choice(_DOMAINS[lang])}"
                people.append((first, last, name, addr))
        rng.shuffle(people)
        contacts[lang] = tuple(people)
    return contacts


@functools.lru_cache(maxsize=4)
def _pools(seed: int) -> _Pools:
    """Text, base64 and contact pools for *seed*; deterministic, cached (about 0.2 s)."""
    rng = random.Random(seed * 7919 + 104729)
    text = {lang: _build_text_pool(rng, lang, 160 * KB) for lang in _WORDS}
    raw = rng.randbytes(_B64_RAW_LINE * 60_000)  # 3.4 MB raw, 4.7 MB encoded
    b64 = base64.encodebytes(raw).replace(b"\n", CRLF)
    lines = len(b64) // _B64_LINE
    return _Pools(text=text, b64=b64 + b64, b64_lines=lines, contacts=_build_contacts(rng))


# -- header helpers ----------------------------------------------------------------------------


def _fold_ascii(value: str, first_offset: int) -> str:
    """Fold an ASCII header value at spaces so lines stay under 78 characters."""
    if first_offset + len(value) <= 78:
        return value
    out: list[str] = []
    line = ""
    limit = 78 - first_offset
    for word in value.split(" "):
        if line and len(line) + 1 + len(word) > limit:
            out.append(line)
            line = word
            limit = 77
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return "\r\n ".join(out)


def _charset_for(text: str, preferred: str) -> str:
    if preferred == "utf-8":
        return preferred
    try:
        text.encode(preferred)
    except UnicodeEncodeError:
        return "utf-8"
    return preferred


def _text_header(name: str, value: str, charset: str) -> bytes:
    if value.isascii():
        folded = _fold_ascii(value, len(name) + 2)
    else:
        folded = Header(value, _charset_for(value, charset), header_name=name).encode(
            linesep="\r\n", maxlinelen=76
        )
    return f"{name}: {folded}\r\n".encode("ascii")


def _address(name: str, addr: str, charset: str) -> str:
    if name.isascii():
        return formataddr((name, addr))
    return formataddr((name, addr), charset=_charset_for(name, charset))


def _address_header(name: str, addresses: Sequence[str]) -> bytes:
    line = ", ".join(addresses)
    if len(name) + 2 + len(line) > 78:
        line = ",\r\n ".join(addresses)
    return f"{name}: {line}\r\n".encode("ascii")


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + CRLF for i in range(0, len(encoded), 76))


# -- one message ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Thread:
    message_id: str
    references: tuple[str, ...]
    subject: str
    lang: str
    contact: tuple[str, str, str, str]
    date: datetime


class _Builder:
    """Turns a message index into a :class:`CorpusMessage`; holds the stream's state."""

    def __init__(
        self, seed: int, count: int, folders: FolderProfile, size_profile: SizeProfile
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.pools = _pools(seed)
        self.count = count
        self.folders = folders
        self.buckets = REALISTIC_BUCKETS if size_profile == "realistic" else SMALL_BUCKETS
        self.attachment_bucket = _ATTACHMENT_BUCKET if size_profile == "realistic" else 2
        self.block: list[int] = []
        self.recent: deque[_Thread] = deque(maxlen=200)
        if folders == "many":
            names = list(folder_names("many"))
            weights = [25.0, 15.0, 12.0, 3.0] + [
                45.0 / (k + 1) / sum(1 / (j + 1) for j in range(96)) for k in range(96)
            ]
            self.many = (names, weights)

    # -- choices

    def _bucket(self) -> tuple[int, int, int, bool, int]:
        if not self.block:
            self.block = [i for i, b in enumerate(self.buckets) for _ in range(b[2])]
            self.rng.shuffle(self.block)
        index = self.block.pop()
        low, high, share, log = self.buckets[index]
        return low, high, share, log, index

    def _size(self) -> tuple[int, int]:
        low, high, _share, log, index = self._bucket()
        if log:
            size = int(low * (high / low) ** self.rng.random())
        else:
            size = self.rng.randrange(low, high)
        return size, index

    def _folder(self, index: int, when: datetime) -> str:
        rng = self.rng
        if self.folders == "many":
            names, weights = self.many
            choice = rng.choices(names, weights)[0]
            # The first 100 messages visit every folder once, so each one exists.
            return names[index] if index < len(names) else choice
        # Archive/2024 holds 2024's mail, so it takes more of 2024 and none of 2025.
        u = rng.random()
        if u < 0.20:
            return "Sent"
        if u < 0.25:
            return "Überweisungen"
        frac_2024 = (_YEAR_2025 - _START) / (_END - _START)
        p_archive = 0.36 / 0.75 / frac_2024
        if when < _YEAR_2025 and rng.random() < p_archive:
            return "Archive/2024"
        return "INBOX"

    def _lang(self) -> str:
        u = self.rng.random()
        for lang, weight in _LANG_WEIGHTS:
            if u < weight:
                return lang
            u -= weight
        return "en"

    def _fill(self, template: str, lang: str, when: datetime) -> str:
        rng = self.rng
        return template.format(
            n=rng.randrange(1000, 99999),
            q=rng.randint(1, 4),
            project=rng.choice(_PROJECTS),
            weekday=rng.choice(_WEEKDAYS.get(lang, _WEEKDAYS["en"])),
            date=when.strftime("%d.%m.%Y" if lang == "de" else "%Y-%m-%d"),
        )

    # -- bulk content

    def _text(self, lang: str, nbytes: int) -> bytes:
        """About *nbytes* of whole lines of *lang* text (at least one line)."""
        pool = self.pools.text[lang]
        nbytes = max(1, min(nbytes, pool.size))
        start = pool.starts[self.rng.randrange(len(pool.starts))]
        end = pool.data.find(CRLF, start + nbytes - 2)
        return pool.data[start : end + 2]

    def _attachment_payload(self, mime: str, nbytes: int) -> bytes:
        """Base64 of random bytes (with the type's magic number first), about *nbytes* long."""
        pools = self.pools
        lines = max(0, round(nbytes / _B64_LINE) - 1)
        head = _MAGIC[mime]
        head += self.rng.randbytes(_B64_RAW_LINE - len(head))
        first = base64.b64encode(head) + CRLF
        chunks = [first]
        while lines > 0:
            take = min(lines, pools.b64_lines)
            start = self.rng.randrange(pools.b64_lines) * _B64_LINE
            chunks.append(pools.b64[start : start + take * _B64_LINE])
            lines -= take
        return b"".join(chunks)

    # -- parts

    def _encode_text(self, text: bytes, lang: str, charset: str) -> tuple[bytes, bytes, str]:
        """(encoded body, Content-Transfer-Encoding, charset) for UTF-8 *text*."""
        if charset != "utf-8":
            try:
                text = text.decode("utf-8").encode(charset)
            except UnicodeEncodeError:
                charset = "utf-8"
        if charset == "iso-2022-jp":
            return text, b"7bit", charset
        if text.isascii():
            return text, b"7bit", "us-ascii" if charset == "utf-8" else charset
        if lang in ("ko", "ja"):
            return _b64_lines(text), b"base64", charset
        if self.rng.random() < 0.3 and charset == "utf-8":
            return text, b"8bit", charset
        return binascii.b2a_qp(text), b"quoted-printable", charset

    def _text_part(
        self, lang: str, charset: str, budget: int, prefix: bytes, suffix: bytes, html: bool
    ) -> bytes:
        """A text/plain or text/html part (headers, blank line, body) about *budget* long.

        Encodings change the length (quoted-printable umlauts, base64 CJK), so the
        first try measures the ratio and a second try corrects the text slice.
        """
        overhead = len(prefix) + len(suffix)
        head = tail = b""
        if html:
            head = (
                b'<!DOCTYPE html>\r\n<html><head><meta http-equiv="Content-Type" '
                b'content="text/html; charset=' + charset.encode() + b'">\r\n'
                b"<style>body{font-family:Arial,sans-serif;font-size:14px;color:#222}"
                b"p{margin:0 0 12px 0}</style></head>\r\n<body><div>\r\n<p>"
            )
            tail = b"</p>\r\n</div></body></html>\r\n"
            overhead += len(head) + len(tail)
        factor = 1.37 if lang in ("ko", "ja") and charset != "iso-2022-jp" else 1.1
        want = int((budget - 100) / factor - overhead)
        state = self.rng.getstate()
        part = b""
        for _attempt in range(2):
            body = self._text(lang, max(60, want))
            text = prefix + body + suffix
            if html:
                text = (
                    head
                    + text.replace(b"\r\n\r\n", b"</p>\r\n<p>").replace(b"\r\n> ", b"<br>\r\n&gt; ")
                    + tail
                )
            encoded, cte, used = self._encode_text(text, lang, charset)
            mime = b"text/html" if html else b"text/plain"
            flowed = not html and cte == b"7bit" and self.rng.random() < 0.2
            part = (
                b"Content-Type: "
                + mime
                + b"; charset="
                + used.encode()
                + (b"; format=flowed" if flowed else b"")
                + CRLF
                + b"Content-Transfer-Encoding: "
                + cte
                + CRLF
                + CRLF
                + encoded
            )
            miss = budget - len(part)
            if abs(miss) < 120 or (want <= 60 and miss < 0):
                break
            # Same choices again (same random state), a corrected amount of text.
            want += int(miss * len(text) / max(1, len(encoded)))
            self.rng.setstate(state)
        return part

    def _boundary(self, index: int, depth: int) -> bytes:
        return f"----=_Part_{index}_{depth}.{self.rng.getrandbits(48):012x}".encode()

    @staticmethod
    def _multipart(
        subtype: bytes, boundary: bytes, parts: Sequence[bytes], preamble: bytes = b""
    ) -> tuple[bytes, bytes]:
        """(Content-Type header line, body) of a multipart entity made of *parts*."""
        header = b"Content-Type: multipart/" + subtype + b';\r\n boundary="' + boundary + b'"\r\n'
        chunks = [preamble]
        for part in parts:
            chunks.append(b"--" + boundary + CRLF + part)
        chunks.append(b"--" + boundary + b"--" + CRLF)
        return header, b"".join(chunks)

    def _attachment(self, budget: int, lang: str, when: datetime, inline: bool) -> bytes:
        """An attachment part (headers, blank line, base64) of about *budget* bytes."""
        rng = self.rng
        mime, pattern = rng.choice(_ATTACHMENT_NAMES)
        if inline:
            mime, pattern = "image/png", "image{n}.png"
        filename = self._fill(pattern, lang, when)
        if filename.isascii():
            param = f'name="{filename}"'
            disp = f'filename="{filename}"'
        else:
            encoded = quote(filename, safe="")
            param = f"name*=utf-8''{encoded}"
            disp = f"filename*=utf-8''{encoded}"
        kind = "inline" if inline else "attachment"
        headers = (
            f"Content-Type: {mime};\r\n {param}\r\n"
            f"Content-Disposition: {kind};\r\n {disp}\r\n"
            "Content-Transfer-Encoding: base64\r\n"
        )
        if inline:
            headers += f"Content-ID: <img{rng.getrandbits(40):010x}@hoffmann.example>\r\n"
        head = headers.encode() + CRLF
        return head + self._attachment_payload(mime, budget - len(head))

    # -- the message

    # Allowed (C901): one branch per kind of generated message.
    def message(self, index: int) -> CorpusMessage:  # noqa: C901
        rng = self.rng
        size, bucket = self._size()
        span = (_END - _START).total_seconds()
        sent_at = _START + timedelta(
            seconds=int(span * (index + rng.random()) / max(1, self.count))
        )
        folder = self._folder(index, sent_at)
        outgoing = folder == "Sent"
        bank = folder == "Überweisungen"
        with_attachment = bucket >= self.attachment_bucket or (
            bucket == self.attachment_bucket - 1 and rng.random() < 0.5
        )
        newsletter = (
            not outgoing
            and not bank
            and not with_attachment
            and (bucket == 3 or rng.random() < 0.06)
        )

        parent: _Thread | None = None
        replying = rng.random() < (0.70 if outgoing else 0.28)
        if replying and not bank and not newsletter and self.recent:
            parent = rng.choice(self.recent)

        if bank:
            lang = "de"
            contact = ("", "", *_BANK)
            subject = rng.choice(
                (
                    "Überweisung ausgeführt: {amount} EUR an {payee}",
                    "Ihre Überweisung vom {date} wurde gebucht",
                    "Lastschrift über {amount} € von {payee}",
                )
            ).format(
                amount=f"{rng.randrange(5, 250000) / 100:,.2f}".replace(",", "X")
                .replace(".", ",")
                .replace("X", "."),
                payee=rng.choice(_PAYEES),
                date=sent_at.strftime("%d.%m.%Y"),
            )
        elif newsletter:
            lang, list_name, list_addr, pattern = rng.choice(_NEWSLETTERS)
            contact = ("", "", list_name, list_addr)
            subject = self._fill(pattern, lang, sent_at)
        elif parent is not None:
            lang = parent.lang
            contact = parent.contact
            base = parent.subject
            reply_prefix = "AW: " if lang == "de" and rng.random() < 0.5 else "Re: "
            subject = base if base.startswith(("Re: ", "AW: ")) else reply_prefix + base
        else:
            lang = self._lang()
            contact = rng.choice(self.pools.contacts[lang])
            subject = self._fill(rng.choice(_SUBJECTS[lang]), lang, sent_at)

        charset = "utf-8"
        legacy = _LEGACY_CHARSET.get(lang)
        if legacy is not None and rng.random() < legacy[1]:
            charset = legacy[0]

        tz = rng.choice(_TIMEZONES["de" if outgoing else lang])
        sender_domain = (_OWNER if outgoing else contact)[3 if not outgoing else 1].split("@")[1]
        message_id = f"<{self.seed}.{index}.{rng.getrandbits(64):016x}@{sender_domain}>"
        owner = _address(*_OWNER, "utf-8")
        them = _address(contact[2], contact[3], charset)

        # -- headers
        h: list[bytes] = []
        if not outgoing:
            delay = rng.randint(2, 240)
            received_at = (sent_at + timedelta(seconds=delay)).astimezone(tz)
            h.append(f"Return-Path: <{contact[3]}>\r\n".encode())
            h.append(f"Delivered-To: {_OWNER[1]}\r\n".encode())
            # Newest hop first: LMTP delivery, our MX, then the sender's own relays.
            local_tz = _TIMEZONES["de"][0 if received_at.month in (1, 2, 3, 11, 12) else 1]
            delivered = format_datetime(received_at.astimezone(local_tz))
            h.append(
                f"Received: from {_MAIL_HOST} by imap.hoffmann.example with LMTP\r\n"
                f"\tid {rng.getrandbits(40):010X}\r\n"
                f"\tfor <{_OWNER[1]}>; {delivered}\r\n".encode()
            )
            hop_at = received_at - timedelta(seconds=1)
            ip = f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"
            h.append(
                f"Received: from mail.{sender_domain} (mail.{sender_domain} [{ip}])\r\n"
                f"\tby {_MAIL_HOST} (Postfix) with ESMTPS id {rng.getrandbits(40):010X}\r\n"
                f"\tfor <{_OWNER[1]}>; {format_datetime(hop_at.astimezone(local_tz))}\r\n".encode()
            )
            for hop in range(rng.randint(0, 2)):
                hop_at -= timedelta(seconds=rng.randint(0, 30))
                inner = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                h.append(
                    f"Received: from app{hop + 1}.{sender_domain} ([{inner}])\r\n"
                    f"\tby mail.{sender_domain} with ESMTP id {rng.getrandbits(40):010X};\r\n"
                    f"\t{format_datetime(hop_at.astimezone(tz))}\r\n".encode()
                )
            if rng.random() < 0.7:
                sig = self._attachment_payload("application/pdf", 8 * _B64_LINE)[78:]
                sig = sig.replace(CRLF, b"")
                folded = b"\r\n\t ".join(sig[i : i + 70] for i in range(0, 344, 70))
                h.append(
                    f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={sender_domain};\r\n"
                    f"\ts=mail2024; t={int(sent_at.timestamp())};\r\n"
                    f"\tbh={sig[344:387].decode()}=;\r\n"
                    "\th=from:to:subject:date:message-id:mime-version:content-type;\r\n"
                    "\tb=".encode()
                    + folded
                    + CRLF
                )
            internaldate = (sent_at + timedelta(seconds=delay)).astimezone(UTC)
        else:
            internaldate = (sent_at + timedelta(seconds=1)).astimezone(UTC)
        h.append(f"Date: {format_datetime(sent_at.astimezone(tz))}\r\n".encode())
        h.append(_address_header("From", [owner if outgoing else them]))
        recipients = [them if outgoing else owner]
        if not bank and not newsletter and rng.random() < 0.25:
            others = rng.sample(self.pools.contacts[lang], rng.randint(1, 4))
            h.append(_address_header("To", recipients))
            h.append(_address_header("Cc", [_address(c[2], c[3], charset) for c in others]))
        else:
            h.append(_address_header("To", recipients))
        h.append(f"Message-ID: {message_id}\r\n".encode())
        h.append(_text_header("Subject", subject, charset))
        references: tuple[str, ...] = ()
        if parent is not None:
            references = (*parent.references[-9:], parent.message_id)
            h.append(f"In-Reply-To: {parent.message_id}\r\n".encode())
            h.append(b"References: " + "\r\n ".join(references).encode() + CRLF)
        if newsletter:
            list_host = contact[3].split("@")[1]
            h.append(f"List-Id: <{list_host.split('.')[0]}.{list_host}>\r\n".encode())
            h.append(
                f"List-Unsubscribe: <mailto:unsubscribe@{list_host}?subject=unsubscribe>,\r\n"
                f" <https://{list_host}/u/{rng.getrandbits(64):016x}>\r\n".encode()
            )
            h.append(b"Precedence: bulk\r\n")
        elif not bank and rng.random() < 0.6:
            h.append(f"User-Agent: {rng.choice(_MAILERS)}\r\n".encode())
        h.append(b"MIME-Version: 1.0\r\n")

        # -- body: everything after the header block must fill `budget` bytes
        budget = size - sum(len(x) for x in h)
        first, last = (contact[0], contact[1]) if not outgoing or contact[0] else ("", "")
        greeting_tpl = (
            rng.choice(_GREETING[lang]) if first else ("Guten Tag," if lang == "de" else "Hello,")
        )
        greeting = greeting_tpl.format(first=first, last=last)
        sign_name = _OWNER[0] if outgoing else contact[2]
        prefix = (greeting + "\r\n\r\n").encode()
        suffix = f"\r\n{rng.choice(_SIGNOFF[lang])}\r\n{sign_name}\r\n".encode()
        if parent is not None:
            wrote = _WROTE[lang].format(date=format_datetime(parent.date), name=parent.contact[2])
            quoted = self._text(lang, min(rng.randint(200, 1500), budget // 4))
            suffix += (
                b"\r\n"
                + wrote.encode()
                + CRLF
                + b"> "
                + quoted[:-2].replace(CRLF, b"\r\n> ")
                + CRLF
            )

        alternative = (
            newsletter or (not bank and rng.random() < 0.35) or (bank and rng.random() < 0.5)
        )
        if with_attachment:
            n_att = 1 if rng.random() < 0.8 else rng.randint(2, 3)
            inline = bucket < self.attachment_bucket and rng.random() < 0.5
            boundary = self._boundary(index, 0)
            preamble = (
                b"This is a multi-part message in MIME format.\r\n" if rng.random() < 0.5 else b""
            )
            body_part = self._body(
                index,
                lang,
                charset,
                min(rng.randint(600, 3500), budget // 3),
                prefix,
                suffix,
                alternative or inline,
            )
            # What the multipart costs besides its parts: header, delimiters, preamble.
            ctype, shell = self._multipart(
                b"related" if inline else b"mixed", boundary, [b""] * (1 + n_att), preamble
            )
            rest = budget - len(ctype) - len(CRLF) - len(shell) - len(body_part)
            attachments = [
                self._attachment(rest // n_att, lang, sent_at, inline) for _ in range(n_att)
            ]
            ctype, body = self._multipart(
                b"related" if inline else b"mixed", boundary, [body_part, *attachments], preamble
            )
            entity = ctype + CRLF + body
        else:
            entity = self._body(index, lang, charset, budget, prefix, suffix, alternative)
        raw = b"".join(h) + entity

        flags = self._flags(outgoing, bank, newsletter)
        self.recent.append(
            _Thread(
                message_id=message_id,
                references=references,
                subject=subject,
                lang=lang,
                contact=contact,
                date=sent_at.astimezone(tz),
            )
        )
        if bank or newsletter:
            self.recent.pop()  # nobody replies to these
        return CorpusMessage(folder=folder, raw=raw, flags=flags, internaldate=internaldate)

    def _body(
        self,
        index: int,
        lang: str,
        charset: str,
        budget: int,
        prefix: bytes,
        suffix: bytes,
        alternative: bool,
    ) -> bytes:
        """A text/plain entity, or multipart/alternative of text and HTML, about *budget* long.

        The entity starts with its Content-Type header and includes the blank line.
        """
        if not alternative:
            return self._text_part(lang, charset, budget, prefix, suffix, False)
        boundary = self._boundary(index, 1)
        ctype, shell = self._multipart(b"alternative", boundary, [b"", b""])
        rest = budget - len(ctype) - len(CRLF) - len(shell)
        plain = self._text_part(lang, charset, int(rest * 0.4), prefix, suffix, False)
        html = self._text_part(lang, charset, rest - len(plain), prefix, suffix, True)
        ctype, body = self._multipart(b"alternative", boundary, [plain, html])
        return ctype + CRLF + body

    def _flags(self, outgoing: bool, bank: bool, newsletter: bool) -> tuple[str, ...]:
        rng = self.rng
        flags: list[str] = []
        if outgoing or rng.random() < 0.875:
            flags.append("\\Seen")
        if not outgoing and not bank and not newsletter:
            if rng.random() < 0.115:
                flags.append("\\Answered")
            if rng.random() < 0.03:
                flags.append("$Forwarded")
        if rng.random() < 0.05:
            flags.append("\\Flagged")
        return tuple(flags)


def folder_names(folders: FolderProfile = "standard") -> tuple[str, ...]:
    """Every folder a corpus of this profile can use (4, or 100 for ``"many"``)."""
    if folders == "many":
        return (*STANDARD_FOLDERS, *_MANY_EXTRA)
    return tuple(STANDARD_FOLDERS)


def generate(
    count: int,
    *,
    seed: int = 1,
    folders: FolderProfile = "standard",
    size_profile: SizeProfile = "realistic",
) -> Generator[CorpusMessage, None, None]:
    """Yield *count* messages, the same bytes for the same arguments on every run.

    :param folders: ``"standard"`` (INBOX, Archive/2024, Sent, Überweisungen) or
        ``"many"`` (those four plus 96 more, a skewed spread).
    :param size_profile: ``"realistic"`` (docs/performance.md's mix: median about 8 KB,
        about 65 KB on average, a tail up to 3 MB) or ``"small"`` (a few KB each).
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if folders not in ("standard", "many"):
        raise ValueError(f"folders must be 'standard' or 'many', not {folders!r}")
    if size_profile not in ("realistic", "small"):
        raise ValueError(f"size_profile must be 'realistic' or 'small', not {size_profile!r}")
    builder = _Builder(seed, count, folders, size_profile)
    for index in range(count):
        yield builder.message(index)


# -- writers and statistics ----------------------------------------------------------------------

_MAILDIR_LETTERS = {
    "\\Seen": "S",
    "\\Answered": "R",
    "\\Flagged": "F",
    "\\Draft": "D",
    "\\Deleted": "T",
}


def write_maildir(root: Path, messages: Iterable[CorpusMessage]) -> Counter[str]:
    """Write *messages* as a Maildir tree (one directory level per folder level).

    INBOX goes to ``root/INBOX``; keywords are dropped (plain Maildir has no
    portable way to keep them). Good enough for notmuch or for eyeballing; to load
    a test Dovecot, use ``DovecotServer.seed`` instead. Returns messages per folder.
    """
    counts: Counter[str] = Counter()
    for n, message in enumerate(messages):
        directory = root.joinpath(*message.folder.split("/"))
        if message.folder not in counts:
            for sub in ("cur", "new", "tmp"):
                (directory / sub).mkdir(parents=True, exist_ok=True)
        counts[message.folder] += 1
        info = "".join(sorted(_MAILDIR_LETTERS[f] for f in message.flags if f in _MAILDIR_LETTERS))
        path = directory / "cur" / f"{n:07d}.corpus:2,{info}"
        path.write_bytes(message.raw)
        stamp = message.internaldate.timestamp()
        os.utime(path, (stamp, stamp))
    return counts


def describe(messages: Iterable[CorpusMessage]) -> dict[str, object]:
    """Totals, size percentiles, bucket shares, folder and flag counts of *messages*."""
    sizes: list[int] = []
    folders: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    replies = 0
    for message in messages:
        sizes.append(len(message.raw))
        folders[message.folder] += 1
        flags.update(message.flags)
        head = message.raw[: message.raw.find(b"\r\n\r\n")]
        replies += b"\r\nIn-Reply-To:" in head
    sizes.sort()
    n = len(sizes)
    edges = [b[0] for b in REALISTIC_BUCKETS[1:]]
    buckets = Counter(bisect.bisect_right(edges, s) for s in sizes)

    def pct(p: float) -> int:
        return sizes[min(n - 1, int(p / 100 * n))] if n else 0

    return {
        "messages": n,
        "bytes": sum(sizes),
        "percentiles": {p: pct(p) for p in (10, 25, 50, 75, 90, 95, 99, 99.9)},
        "max": sizes[-1] if n else 0,
        "buckets": {
            f"{REALISTIC_BUCKETS[i][0] // KB}K-{REALISTIC_BUCKETS[i][1] // KB}K"
            if i
            else "<5K": buckets[i] / max(1, n)
            for i in range(len(REALISTIC_BUCKETS))
        },
        "folders": dict(folders.most_common()),
        "flags": dict(flags.most_common()),
        "replies": replies,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folders", choices=("standard", "many"), default="standard")
    parser.add_argument("--size-profile", choices=("realistic", "small"), default="realistic")
    parser.add_argument("--maildir", type=Path, help="write the messages into this Maildir tree")
    parser.add_argument("--stats", action="store_true", help="print size/folder/flag statistics")
    args = parser.parse_args(argv)
    stream = generate(
        args.count, seed=args.seed, folders=args.folders, size_profile=args.size_profile
    )
    started = time.perf_counter()
    if args.maildir:
        print(dict(write_maildir(args.maildir, stream)))
    else:
        stats = describe(stream)
        elapsed = time.perf_counter() - started
        total = stats["bytes"]
        assert isinstance(total, int)
        print(
            f"{args.count} messages, {total / MB:.1f} MB in {elapsed:.2f} s "
            f"({total / MB / elapsed:.0f} MB/s, {args.count / elapsed:.0f} msg/s)"
        )
        if args.stats:
            for key, value in stats.items():
                print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
