#!/usr/bin/env python3
"""An announcement bot for rdv, using only the public admin API.

It joins a room's audio over the API's WebSocket, plays a WAV file into the room (looped if
asked), and meanwhile prints how loud the room is, once a second. It also follows the room's
event stream and announces each newcomer by name in the log.

    python3 examples/announcer.py --api http://127.0.0.1:8474 --token TOKEN --room lobby \\
        --wav announcement.wav [--loop]

The token is the admin token or the room's token (POST /api/v1/rooms/ROOM/tokens). The WAV
must be 16-bit PCM, mono, 48 kHz, for example from ffmpeg:

    ffmpeg -i anything.mp3 -ac 1 -ar 48000 -sample_fmt s16 announcement.wav

Needs Python 3.9+ and the `websockets` package (Debian: python3-websockets).
"""

import argparse
import asyncio
import json
import math
import struct
import sys
import time
import urllib.request
import wave

import websockets

RATE = 48000
FRAME = 960  # samples in 20 ms, the API's frame
FRAME_BYTES = FRAME * 2


def read_frames(path):
    """The WAV file as 1920-byte frames (the last one padded with silence)."""
    with wave.open(path, "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, RATE):
            sys.exit("%s: need 16-bit mono 48 kHz PCM (see --help for an ffmpeg command)" % path)
        data = wav.readframes(wav.getnframes())
    data += b"\0" * (-len(data) % FRAME_BYTES)
    return [data[i:i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]


def rms_dbfs(frame):
    samples = struct.unpack("<%dh" % FRAME, frame)
    power = sum(s * s for s in samples) / FRAME
    return 10 * math.log10(power / 32768 ** 2) if power > 0 else -120.0


async def speak(socket, frames, loop):
    """Sends the frames in real time: one every 20 ms, on a steady clock."""
    start, index = time.monotonic(), 0
    while True:
        for frame in frames:
            await socket.send(frame)
            index += 1
            delay = start + index * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if not loop:
            return


async def listen(socket):
    """Prints the room's loudness (what the bot hears) once a second."""
    levels = []
    async for message in socket:
        if isinstance(message, bytes) and len(message) == FRAME_BYTES:
            levels.append(rms_dbfs(message))
            if len(levels) == 50:
                print("room level: %.0f dBFS" % max(levels), flush=True)
                levels.clear()


def follow_events(api, token, room):
    """Logs the room's events (Server-Sent Events), announcing who joins. Runs in a thread."""
    request = urllib.request.Request(
        "%s/api/v1/rooms/%s/events" % (api, room), headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request) as stream:
        for line in stream:
            line = line.decode().strip()
            if not line.startswith("data:"):
                continue
            kind = json.loads(line[5:])["kind"]
            if kind["type"] == "joined":
                print("welcome, %s" % kind["account"], flush=True)
            elif kind["type"] == "chat":
                print("%s says: %s" % (kind["account"], kind["text"]), flush=True)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8474", help="the admin API's URL")
    parser.add_argument("--token", required=True, help="admin token or the room's token")
    parser.add_argument("--room", required=True)
    parser.add_argument("--wav", required=True, help="16-bit mono 48 kHz WAV to play")
    parser.add_argument("--loop", action="store_true", help="play it again and again")
    args = parser.parse_args()
    frames = read_frames(args.wav)
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, follow_events, args.api, args.token, args.room)
    url = args.api.replace("http", "ws", 1) + "/api/v1/rooms/%s/bot" % args.room
    headers = {"Authorization": "Bearer " + args.token}
    async with websockets.connect(url, extra_headers=headers) as socket:
        listener = asyncio.ensure_future(listen(socket))
        await speak(socket, frames, args.loop)
        listener.cancel()
    print("done", flush=True)
    # The event thread blocks on its stream; leave without waiting for it.
    sys.stdout.flush()
    import os
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
