"""Every task kind beyond text2video: create, poll, result MP4 length, lookup by kind, refusals."""

from __future__ import annotations

import pytest

from kling_gateway.upstream.simulator.mp4 import mp4_duration, mp4_lasting, tiny_mp4


@pytest.mark.parametrize("millis", [1, 3000, 5100, 9600, 180_000])
def test_mp4_lasting_reports_its_length_in_the_movie_header(millis: int) -> None:
    data = mp4_lasting(millis)
    assert data[4:8] == b"ftyp"
    assert mp4_duration(data) == pytest.approx(millis / 1000)


def test_the_text2video_mp4_keeps_its_one_second() -> None:
    assert mp4_duration(tiny_mp4()) == 1.0
    assert len(mp4_lasting(1000)) == len(tiny_mp4())  # same frames, only the timing differs


def test_mp4_lasting_refuses_an_empty_length() -> None:
    with pytest.raises(ValueError):
        mp4_lasting(0)
