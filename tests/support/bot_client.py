#!/usr/bin/env python3
"""A meeting bot for tests, using only the public API: joins a room's audio over the admin
API's WebSocket, says a tone in real time, and listens.

    bot_client.py WS_URL TOKEN FREQ SECONDS LISTEN_FREQ...

Prints one JSON line at the end: the frames it received and each LISTEN_FREQ's level in
what it heard over its last 2 s, dBFS."""

import asyncio
import json
import math
import struct
import sys
import time

import websockets

RATE = 48000
FRAME = 960  # 20 ms


def tone_frame(freq, index):
    start = index * FRAME
    samples = (int(0.5 * 32767 * math.sin(2 * math.pi * freq * (start + n) / RATE)) for n in range(FRAME))
    return struct.pack("<%dh" % FRAME, *samples)


def level(samples, freq):
    """Goertzel: the level of `freq` in `samples` (floats in [-1, 1]) as a sine's dBFS."""
    if not samples:
        return -270.0
    coeff = 2 * math.cos(2 * math.pi * freq / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    amplitude = 2 * math.sqrt(max(power, 0.0)) / len(samples)
    return round(20 * math.log10(amplitude), 1) if amplitude > 0 else -270.0


async def main():
    url, token, freq, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    listen = [float(f) for f in sys.argv[5:]]
    heard = []
    async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + token}) as socket:
        async def say():
            start = time.monotonic()
            for index in range(int(seconds * 1000 / 20)):
                await socket.send(tone_frame(freq, index))
                delay = start + (index + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

        async def hear():
            async for message in socket:
                if isinstance(message, bytes):
                    heard.append(message)

        listener = asyncio.ensure_future(hear())
        await say()
        listener.cancel()
    last = b"".join(heard[-100:])
    samples = [s / 32768 for s in struct.unpack("<%dh" % (len(last) // 2), last)]
    print(json.dumps({"frames": len(heard), "levels": {str(int(f)): level(samples, f) for f in listen}}), flush=True)


asyncio.run(main())
