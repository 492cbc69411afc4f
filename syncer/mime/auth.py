"""Authentication and phishing triage for the normalizer.

Why this module exists: the receiving server already judged SPF, DKIM and
DMARC and wrote its verdicts into Authentication-Results (:rfc:`8601`); this
module reads them, can check DKIM signatures itself (dkimpy, with a pluggable
DNS function so tests need no network), and turns the header evidence into a
short risk note for phishing triage.

Which Authentication-Results to trust: the topmost one, which the last hop
(the receiving server) added. Anyone can write such a header into a message
before sending it; those end up further down and are ignored.

Public API: :func:`parse_auth_results`, :func:`verify_dkim`, :func:`assess_risk`,
:func:`org_domain`, :data:`DNSFunc`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from syncer.mime.parsed import Address, AuthResults

#: ``dns(name, timeout=...) -> TXT record bytes or None``: dkimpy's ``dnsfunc``.
DNSFunc = Callable[..., bytes | None]

_COMMENT = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_RESULT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z0-9_-]+)")
_METHODS = ("spf", "dkim", "dmarc")


def _strip_comments(value: str) -> str:
    value = _QUOTED.sub('""', value)
    previous = None
    while previous != value:  # nested comments, innermost first
        previous = value
        value = _COMMENT.sub(" ", value)
    return value


def parse_auth_results(values: Sequence[str], received_spf: str | None = None) -> AuthResults:
    """Verdicts from the topmost Authentication-Results header of ``values`` (top first).

    DKIM: ``pass`` when any signature passed, else the first result. SPF falls
    back to the topmost Received-SPF header when Authentication-Results has none.
    """
    found: dict[str, list[str]] = {}
    authserv: str | None = None
    raw: str | None = None
    if values:
        raw = values[0]
        items = _strip_comments(raw).split(";")
        authserv = items[0].strip().split()[0].lower() if items[0].strip() else None
        for item in items[1:]:
            match = _RESULT.match(item)
            if match is None:
                continue
            method, result = match.group(1).lower(), match.group(2).lower()
            if method in _METHODS:
                found.setdefault(method, []).append(result)
    dkim = found.get("dkim", [])
    spf = found.get("spf", [None])[0]
    if spf is None and received_spf:
        word = received_spf.strip().split(None, 1)
        if word and re.fullmatch(r"[A-Za-z]+", word[0]):
            spf = word[0].lower()
    return AuthResults(
        spf=spf,
        dkim=("pass" if "pass" in dkim else dkim[0]) if dkim else None,
        dmarc=found.get("dmarc", [None])[0],
        authserv_id=authserv,
        raw=raw,
    )


def verify_dkim(raw: bytes, dns: DNSFunc | None = None, *, has_signature: bool = True) -> str:
    """Check the topmost DKIM-Signature of ``raw`` ourselves.

    :param dns: the TXT lookup (``dns(b"sel._domainkey.example.com", timeout=5)``);
        default: dkimpy's, which asks the system resolver.
    :returns: ``pass``, ``fail`` (the signature does not match the message),
        ``none`` (no signature), ``permerror`` (a malformed signature or key,
        no key published) or ``temperror`` (the lookup failed).
    """
    if not has_signature:
        return "none"
    import dkim  # dkimpy ships no type information: pyproject.toml lets mypy skip it

    checker = dkim.DKIM(raw, minkey=1024, timeout=5)
    try:
        ok = checker.verify() if dns is None else checker.verify(dnsfunc=dns)
    except dkim.KeyFormatError:
        return "permerror"
    except dkim.ValidationError as exc:
        # dkimpy raises for a changed body instead of returning False; that is a
        # failed signature (RFC 8601 "fail"), whereas a malformed one is "permerror".
        return "fail" if "body hash mismatch" in str(exc) else "permerror"
    except dkim.DKIMException:
        return "temperror"
    except Exception:  # DNS errors (dnspython) and the like
        return "temperror"
    return "pass" if ok else "fail"


# --------------------------------------------------------------------------- risk

# Second-level labels under which registrations happen in many country domains
# (example.co.uk, example.com.au): a heuristic, not the Public Suffix List.
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go", "gv"})
_EMAIL_IN_NAME = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def org_domain(domain: str | None) -> str | None:
    """The registrable part of a domain, by heuristic: ``a.example.co.uk`` → ``example.co.uk``."""
    if not domain:
        return None
    labels = [label for label in domain.lower().strip(".").split(".") if label]
    if len(labels) <= 2:
        return ".".join(labels) or None
    if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _domain_of(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].lower() or None


# Allowed (C901): one branch per risk signal, each documented.
def assess_risk(  # noqa: C901
    auth: AuthResults,
    dkim_verified: str | None,
    addresses: Sequence[Address],
    return_path: str | None,
    from_headers: int,
) -> tuple[bool, tuple[str, ...]]:
    """(suspicious, notes) from the header evidence, strong signals first.

    Strong (make the message suspicious): DMARC, DKIM or SPF ``fail``; our own
    DKIM check failing; a From display name that carries another address; a
    Reply-To on another organisation's domain than From; several From headers.
    Weak (noted only): SPF ``softfail``; a Return-Path on another domain, which
    mailing lists and bulk senders produce legitimately.
    """
    strong: list[str] = []
    weak: list[str] = []
    if auth.dmarc == "fail":
        strong.append("DMARC fail")
    if auth.dkim in ("fail", "permerror"):
        strong.append(f"DKIM {auth.dkim}")
    if auth.spf == "fail":
        strong.append("SPF fail")
    elif auth.spf == "softfail":
        weak.append("SPF softfail")
    if dkim_verified == "fail":
        strong.append("DKIM signature does not verify")
    froms = [a for a in addresses if a.role == "from"]
    if from_headers > 1:
        strong.append(f"{from_headers} From headers")
    sender = froms[0] if froms else None
    from_org = org_domain(_domain_of(sender.address)) if sender else None
    if sender is not None and sender.display_name:
        for shown in _EMAIL_IN_NAME.findall(sender.display_name):
            if sender.address is None or shown.lower() != sender.address.lower():
                strong.append(
                    f"From display name shows {shown} but the address is {sender.address or '-'}"
                )
                break
    if from_org is not None:
        for reply in (a for a in addresses if a.role == "reply-to"):
            reply_org = org_domain(_domain_of(reply.address))
            if reply_org is not None and reply_org != from_org:
                strong.append(f"Reply-To on another domain ({reply_org}, From {from_org})")
                break
        bounce_org = org_domain(_domain_of(return_path))
        if bounce_org is not None and bounce_org != from_org:
            weak.append(f"Return-Path on another domain ({bounce_org}, From {from_org})")
    return bool(strong), (*strong, *weak)
