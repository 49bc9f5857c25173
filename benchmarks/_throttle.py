"""A loopback TCP proxy capping each connection's download speed: ``_throttle.py UPSTREAM RATE``.

Stands in for registry storage (S3, GCS, a CDN) that serves every connection at a fixed
speed, whatever the client does. Listens on ``127.0.0.1`` (a free port, printed on the
first line as ``PORT <n>``) and forwards every connection to ``127.0.0.1:UPSTREAM``; bytes
from the upstream to the client flow at most ``RATE`` bytes per second per connection
(bytes to the upstream are not limited). It parses nothing, so ``Host`` and every header
pass untouched. Runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
import time

_PIECE = 256 * 1024


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float | None
) -> None:
    started = time.monotonic()
    sent = 0
    try:
        while data := await reader.read(_PIECE):
            writer.write(data)
            await writer.drain()
            if rate is not None:
                sent += len(data)
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve(upstream: int, rate: float) -> None:
    async def handle(creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(_pump(creader, uwriter, None), _pump(ureader, cwriter, rate))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), float(sys.argv[2])))
