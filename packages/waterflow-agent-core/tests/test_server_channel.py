"""The agent's gRPC channel to the Waterflow server finds a server that comes back, however long
it was away: gRPC's own reconnection backoff (up to 120 s by default) stays under the agent's."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import grpc

from waterflow.agent.reporting import channel_for

#: How long the server stays away: long enough for gRPC's default backoff to wait 16 s and
#: more between connection attempts.
ABSENCE = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_server_back_after_a_long_absence_is_reached_within_seconds() -> None:
    address = f"127.0.0.1:{_free_port()}"
    channel = channel_for(address, tls=False, tls_ca=None)
    try:
        # Nothing listens: the channel keeps trying, and failing, for ABSENCE seconds.
        away_until = time.monotonic() + ABSENCE
        while time.monotonic() < away_until:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.channel_ready(), 1)
        assert channel.get_state() != grpc.ChannelConnectivity.READY
        server = grpc.aio.server()
        server.add_insecure_port(address)
        await server.start()
        try:
            await asyncio.wait_for(channel.channel_ready(), 8)
        finally:
            await server.stop(None)
    finally:
        await channel.close()
