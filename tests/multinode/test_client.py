"""The multinode tests' client: its pooled connections expire before the servers close them, and a
read whose connection was dropped before any answer is sent again (the flake of a full run: a
read-back of tasks on a connection the node had just closed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from tests.multinode.cluster import CLIENT_KEEPALIVE_SECONDS, client, read

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


def test_pooled_connections_expire_before_the_servers_close_them() -> None:
    server_idle = uvicorn.Config(app="none").timeout_keep_alive  # `serve` and `simulator` keep it
    assert server_idle / 2 > CLIENT_KEEPALIVE_SECONDS


@pytest.fixture
async def dropping_server() -> AsyncIterator[str]:
    """Answers the first request of a connection, then closes the connection when the next one
    comes: what a client meets when it reuses a connection the server has just closed."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/"


async def test_a_read_on_a_connection_closed_without_an_answer_is_sent_again(
    dropping_server: str,
) -> None:
    async with client() as http:
        assert (await read(http, dropping_server)).text == "ok"
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.get(dropping_server)  # what a plain GET met
        assert (await read(http, dropping_server)).text == "ok"
        assert (await read(http, dropping_server)).text == "ok"
