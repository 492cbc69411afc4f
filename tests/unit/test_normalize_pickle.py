"""A normalized result crosses from a pool process to the saving process unchanged.

The values of :mod:`syncer.mime.parsed` pickle as their class and fields
(``__reduce__``), not through the dataclasses' slower ``__getstate__``.
"""

from __future__ import annotations

import pickle

from syncer.mime import parsed
from syncer.mime.attachments import TextExtractor
from syncer.mime.normalize import normalize
from tests.golden import corpus


def test_normalized_results_of_the_golden_corpus_survive_pickling() -> None:
    raws = [raw for name, raw in corpus() if not name.startswith("bench/")][:120]
    with TextExtractor() as extractor:
        results = [normalize(raw, extractor=extractor) for raw in raws]
    assert any(r.attachments for r in results) and any(r.attachment_texts for r in results)
    for protocol in (pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL):
        copies = pickle.loads(pickle.dumps(results, protocol))
        assert copies == results
        assert [type(c.auth) for c in copies] == [parsed.AuthResults] * len(results)


def test_every_value_pickles_field_by_field() -> None:
    for cls in (
        parsed.Address,
        parsed.Attachment,
        parsed.AttachmentText,
        parsed.AuthResults,
        parsed.NormalizedMessage,
    ):
        assert len(cls.__match_args__) > 1  # _reduced's attrgetter then gives a tuple
        assert cls.__reduce__ is not object.__reduce__
