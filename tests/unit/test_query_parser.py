"""The query language: what a query means as a tree, and how a malformed one is reported.

Grammar and fields are specified in syncer/query/parser.py and syncer/query/fields.py;
these tests pin them down with examples, and two properties: any tree printed and
parsed again is the same tree, and no text makes the parser raise anything but a
positioned QuerySyntaxError.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.errors import UsageError
from syncer.query import (
    FIELDS,
    And,
    Field,
    MatchAll,
    Not,
    Or,
    Query,
    QuerySyntaxError,
    Text,
    format_query,
    parse,
)
from syncer.query.fields import (
    HAS_VALUES,
    IS_VALUES,
    SYSTEM_FLAGS,
    ValueProblem,
    canonical_value,
    day,
    size_bytes,
)
from syncer.query.parser import MAX_DEPTH


def T(value: str, prefix: bool = False) -> Text:
    return Text(value, prefix)


def F(name: str, value: str, prefix: bool = False) -> Field:
    return Field(name, value, prefix)


# --------------------------------------------------------------------------- meaning


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("", MatchAll()),
        ("   \t", MatchAll()),
        ("invoice", T("invoice")),
        ('"invoice"', T("invoice")),
        ('"quarterly report"', T("quarterly report")),
        ("invoic*", T("invoic", prefix=True)),
        ('"annual rep"*', T("annual rep", prefix=True)),
        ("e-mail", T("e-mail")),
        ("a b c", And((T("a"), T("b"), T("c")))),
        ("a AND b", And((T("a"), T("b")))),
        ("a or b", And((T("a"), T("or"), T("b")))),
        ('a "OR" b', And((T("a"), T("OR"), T("b")))),
        ("a OR b c", Or((T("a"), And((T("b"), T("c")))))),
        ("a b OR c", Or((And((T("a"), T("b"))), T("c")))),
        ("a (b OR c)", And((T("a"), Or((T("b"), T("c")))))),
        ("NOT a b", And((Not(T("a")), T("b")))),
        ("-a OR b", Or((Not(T("a")), T("b")))),
        ("-(a b)", Not(And((T("a"), T("b"))))),
        ("--a", Not(Not(T("a")))),
        ("a OR b OR c", Or((T("a"), T("b"), T("c")))),
        ("(a OR b) OR c", Or((Or((T("a"), T("b"))), T("c")))),
        ("from:alice", F("from", "alice")),
        ("FROM:Alice", F("from", "Alice")),
        ('from:"Alice Smith"', F("from", "Alice Smith")),
        ("from:*@example.com*", F("from", "@example.com")),
        ('from:"x\' OR 1=1 --"', F("from", "x' OR 1=1 --")),
        ("subject:invoic*", F("subject", "invoic", prefix=True)),
        ('body:"due date"', F("body", "due date")),
        ("filename:report.pdf", F("filename", "report.pdf")),
        ("folder:INBOX", F("folder", "INBOX")),
        ("account:work", F("account", "work")),
        ("flag:Seen", F("flag", "seen")),
        ("flag:\\Flagged", F("flag", "flagged")),
        ("flag:$Forwarded", F("flag", "$forwarded")),
        ("is:UNREAD", F("is", "unread")),
        ("has:attachment", F("has", "attachment")),
        ("larger:10K", F("larger", "10k")),
        ("smaller:5mb", F("smaller", "5mb")),
        ("before:2024-01-31", F("before", "2024-01-31")),
        ("thread:abc123", F("thread", "abc123")),
        ("message-id:<a.b@example.com>", F("message-id", "a.b@example.com")),
        ("message-id:a.b@example.com", F("message-id", "a.b@example.com")),
        ("sha256:" + "AB" * 32, F("sha256", "ab" * 32)),
        ("-from:bob", Not(F("from", "bob"))),
        ("from:-bob", F("from", "-bob")),
        ("10:30", T("10:30")),
    ],
)
def test_a_query_means_this_tree(text: str, tree: Query) -> None:
    assert parse(text) == tree


def test_terms_remember_where_they_start() -> None:
    tree = parse('a  from:"b c" d')
    assert isinstance(tree, And)
    assert [t.pos for t in tree.operands if isinstance(t, Text | Field)] == [0, 3, 14]


@pytest.mark.parametrize(
    ("value", "size"),
    [("2048", 2048), ("10k", 10240), ("10kb", 10240), ("5m", 5 * 1024**2), ("1g", 1024**3)],
)
def test_sizes_count_in_powers_of_1024(value: str, size: int) -> None:
    assert size_bytes(value) == size


def test_a_day_is_midnight_utc() -> None:
    assert day("2024-02-29").isoformat() == "2024-02-29T00:00:00+00:00"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("frm:bob", 1, "unknown field 'frm:'"),
        ("a (b", 3, "this '(' is never closed"),
        ("a (", 3, "this '(' is never closed"),
        ("a ) b", 3, "this ')' has no matching '('"),
        ('a "bc', 3, "this quote is never closed"),
        ("x OR", 5, "the query ends where a term was expected"),
        ("OR x", 1, "OR needs a term on each side"),
        ("x AND OR y", 7, "OR needs a term on each side"),
        ("x ()", 3, "empty parentheses"),
        ("x - y", 3, "'-' must be directly followed"),
        ("*", 1, "'*' must follow a word"),
        ('""', 1, "an empty phrase matches nothing"),
        ("from: bob", 6, "from: needs a value"),
        ("is:flagged", 4, "unknown value is:flagged"),
        ("has:pdf", 5, "unknown value has:pdf"),
        ("larger:10x", 8, "'10x' is not a size"),
        ("on:2024-02-30", 4, "on: takes a date as YYYY-MM-DD"),
        ("after:24-1-1", 7, "after: takes a date"),
        ("sha256:abc", 8, "sha256: takes the 64 hexadecimal digits"),
        ('flag:"a b"', 6, "flag: takes one flag name"),
        ("a NOT", 6, "the query ends where a term was expected"),
        ("(" * (MAX_DEPTH + 1) + "a", MAX_DEPTH + 1, "nests deeper than"),
    ],
)
def test_a_malformed_query_names_the_column(text: str, column: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse(text)
    assert raised.value.column == column
    assert reason in raised.value.reason
    assert isinstance(raised.value, UsageError) and raised.value.exit_code == 2


def test_the_error_shows_the_query_with_a_caret_under_the_problem() -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse("is:unread frm:bob")
    line, echo, caret = str(raised.value).split("\n")
    assert line.startswith("Malformed query at column 11: unknown field 'frm:' (known fields: ")
    assert all(f"{name}:" in line for name in FIELDS)
    assert echo == "  is:unread frm:bob"
    assert caret == "  " + " " * 10 + "^"


def test_the_caret_counts_wide_characters_twice_and_blanks_line_breaks() -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse("메일\n(x")
    _, echo, caret = str(raised.value).split("\n")
    assert echo == "  메일 (x"
    assert caret == "  " + " " * 5 + "^"


# --------------------------------------------------------------------------- properties

_nonblank = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")


def _canonical(name: str) -> st.SearchStrategy[str]:
    def ok(raw: str) -> bool:
        try:
            canonical_value(name, raw, quoted=True)
        except ValueProblem:
            return False
        return True

    return _nonblank.filter(ok).map(lambda raw: canonical_value(name, raw, quoted=True))


_values: dict[str, st.SearchStrategy[str]] = {
    "is": st.sampled_from(IS_VALUES),
    "has": st.sampled_from(HAS_VALUES),
    "flag": st.sampled_from(sorted(SYSTEM_FLAGS)) | _canonical("flag"),
    "larger": st.builds(
        lambda n, unit: f"{n}{unit}", st.integers(0, 10**6), st.sampled_from(["", "k", "m", "gb"])
    ),
    "before": st.dates().map(lambda d: d.isoformat()),
    "sha256": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
}
_values["smaller"] = _values["larger"]
_values["after"] = _values["on"] = _values["before"]

_fields = st.sampled_from(FIELDS).flatmap(
    lambda name: st.builds(
        Field,
        st.just(name),
        _values[name] if name in _values else _canonical(name),
        st.booleans() if name in ("subject", "body") else st.just(False),
    )
)
_words = st.builds(Text, _nonblank, st.booleans()) | st.builds(
    Text,
    st.text(alphabet=string.ascii_letters + "*-:\\'", min_size=1, max_size=6).filter(
        lambda s: s.strip("*") != ""
    ),
)
_trees: st.SearchStrategy[Query] = st.recursive(
    _words | _fields,
    lambda inner: (
        st.builds(Not, inner)
        | st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple))
        | st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple))
    ),
    max_leaves=8,
)


@given(_trees)
def test_a_printed_tree_parses_back_to_the_same_tree(tree: Query) -> None:
    assert parse(format_query(tree)) == tree


@given(st.text(max_size=40) | st.text(alphabet='ab :()"-*\\ORNTAD', max_size=30))
def test_any_text_parses_or_raises_a_positioned_query_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except QuerySyntaxError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    assert parse(format_query(tree)) == tree
