"""Every contract file loads, and every transcript names its source."""

from __future__ import annotations

import pytest

from conformance.sandbox import contracts


@pytest.mark.parametrize("service", contracts.services())
def test_every_transcript_names_a_source(service: str) -> None:
    transcripts = contracts.load(service)
    assert transcripts, f"{service}.yaml has no transcripts"
    for transcript in transcripts.values():
        assert transcript.source.strip()
        assert (transcript.http is None) != (transcript.cli is None)


def test_a_missing_placeholder_is_an_error() -> None:
    transcript = contracts.Transcript("x", "y", "src", (), contracts.HttpAnswer(200), None)
    with pytest.raises(contracts.ContractError, match=r"no value for \['name'\]"):
        transcript.render("hello {name}")
    assert transcript.render("hello {name}", name="you") == "hello you"
