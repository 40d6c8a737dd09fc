"""Log lines made in one turn of the event loop leave in one write; anything else at once."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import orjson
import pytest

from kling_gateway.observability.logs import JsonFormatter, TurnBatchedHandler, batch_on_loop


class Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)

    def messages(self) -> list[str]:
        return [orjson.loads(line)["msg"] for line in self.getvalue().splitlines()]


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, TurnBatchedHandler, Writes]]:
    stream = Writes()
    handler = TurnBatchedHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kling_gateway.test_batching")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, handler, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_without_a_loop_every_line_is_written_at_once(
    logged: tuple[logging.Logger, TurnBatchedHandler, Writes],
) -> None:
    logger, _, stream = logged
    logger.info("one")
    logger.info("two")
    assert len(stream.writes) == 2
    assert stream.messages() == ["one", "two"]


async def test_one_turns_lines_leave_together_after_the_turn(
    logged: tuple[logging.Logger, TurnBatchedHandler, Writes],
) -> None:
    logger, handler, stream = logged
    detach = handler.attach(asyncio.get_running_loop())
    try:
        for i in range(5):
            logger.info("line %d", i)
        assert stream.writes == []  # still this turn
        await asyncio.sleep(0)
        assert len(stream.writes) == 1
        assert stream.messages() == [f"line {i}" for i in range(5)]
        logger.info("next turn")
        await asyncio.sleep(0)
        assert len(stream.writes) == 2
    finally:
        detach()


async def test_other_threads_write_at_once_in_order_and_detach_writes_what_is_pending(
    logged: tuple[logging.Logger, TurnBatchedHandler, Writes],
) -> None:
    logger, handler, stream = logged
    detach = handler.attach(asyncio.get_running_loop())
    logger.info("pending")
    worker = threading.Thread(target=logger.info, args=("from a thread",))
    worker.start()
    worker.join()
    assert stream.messages() == [
        "pending",
        "from a thread",
    ]  # at once, after what was made before it
    logger.info("pending again")
    detach()  # the turn never ended: the line is written now, not lost
    assert stream.messages()[-1] == "pending again"
    logger.info("after")
    assert stream.messages()[-1] == "after"


async def test_batch_on_loop_finds_the_root_handler() -> None:
    stream = Writes()
    handler = TurnBatchedHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        detach = batch_on_loop(asyncio.get_running_loop())
        logging.getLogger("kling_gateway.test_root").warning("batched")
        assert stream.writes == []
        detach()
        assert stream.messages() == ["batched"]
    finally:
        root.removeHandler(handler)
