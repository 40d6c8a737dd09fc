"""Property test of the create-body validator: for any JSON body it answers with a request or a
Kling 400, never with another exception (which would be a 500), and what it accepts is safe to
forward. Bodies: ``strategies.py``."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_gateway.domain.models import DEFAULT_CAPABILITIES
from kling_gateway.domain.request import Text2VideoRequest, validate_text2video
from kling_gateway.errors import BadRequest, InvalidParameter
from tests.fuzz.strategies import bodies

FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_accepted(req: Text2VideoRequest, upstream_model: str) -> None:
    body = req.upstream_body
    assert "callback_url" not in body and "external_task_id" not in body
    assert isinstance(body["duration"], str) and body["duration"] == str(req.duration)
    assert body["model_name"] == upstream_model
    orjson.dumps(body)  # forwardable as JSON


def test_validator_answers_a_request_or_a_kling_400_for_any_body() -> None:
    seen = {"accepted": 0, "refused": 0}

    @FUZZ
    @given(drawn=bodies, strict=st.booleans())
    def run(drawn: tuple[str, Any], strict: bool) -> None:
        model, body = drawn
        try:
            req = validate_text2video(
                body, caps=DEFAULT_CAPABILITIES[model], upstream_model="up-" + model, strict=strict
            )
        except (InvalidParameter, BadRequest) as exc:
            assert exc.http_status == 400 and exc.message
            seen["refused"] += 1
            return
        check_accepted(req, "up-" + model)
        seen["accepted"] += 1

    run()
    # Guards the generator: if nothing were ever accepted, the accepted-path checks proved nothing.
    assert seen["accepted"] > 0 and seen["refused"] > 0, seen
