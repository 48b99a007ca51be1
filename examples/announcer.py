#!/usr/bin/env python3
"""An announcement bot for rdv, using only the public admin API.

It joins a room's audio over the API's WebSocket and plays an announcement into the room
(looped if asked), meanwhile printing how loud the room is, once a second. It also follows
the room's event stream and announces each newcomer by name in the log. The announcement is
either a WAV file here, sent as PCM over the WebSocket:

    python3 examples/announcer.py --api http://127.0.0.1:8474 --token TOKEN --room lobby \\
        --wav announcement.wav [--loop]

or any media file (MP3, Ogg, MP4...) in the server's media directory (`media.files_dir`),
which the server plays itself (POST /api/v1/rooms/ROOM/playbacks); the bot then only
listens, and ends with the playback's `playback_finished` event:

    python3 examples/announcer.py --token TOKEN --room lobby --file announcements/welcome.mp3

The token is the admin token or the room's token (POST /api/v1/rooms/ROOM/tokens). The WAV
must be 16-bit PCM, mono, 48 kHz, for example from ffmpeg:

    ffmpeg -i anything.mp3 -ac 1 -ar 48000 -sample_fmt s16 announcement.wav

Needs Python 3.9+ and the `websockets` package (Debian: python3-websockets).
"""

import argparse
import asyncio
import json
import math
import os
import struct
import sys
import time
import urllib.error
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


def open_events(api, token, room):
    """The room's event stream (Server-Sent Events), open from now on."""
    request = urllib.request.Request(
        "%s/api/v1/rooms/%s/events" % (api, room), headers={"Authorization": "Bearer " + token})
    return urllib.request.urlopen(request)


def follow_events(stream, on_finished):
    """Logs the room's events, announcing who joins; calls `on_finished(playback id, outcome)`
    when a playback ends. Runs in a thread."""
    for line in stream:
        line = line.decode().strip()
        if not line.startswith("data:"):
            continue
        kind = json.loads(line[5:])["kind"]
        if kind["type"] == "joined":
            print("welcome, %s" % kind["account"], flush=True)
        elif kind["type"] == "chat":
            print("%s says: %s" % (kind["account"], kind["text"]), flush=True)
        elif kind["type"] == "playback_finished":
            on_finished(kind["playback"], kind["outcome"])


class Refused(Exception):
    """The server would not play the file."""


def play_on_server(api, token, room, name, loop):
    """Asks the server to play `name` from its media directory; the playback's id."""
    body = json.dumps({"file": name, "loop": loop}).encode()
    request = urllib.request.Request(
        "%s/api/v1/rooms/%s/playbacks" % (api, room), data=body, method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as reply:
            playback = json.load(reply)
    except urllib.error.HTTPError as error:
        reason = json.load(error)["error"]["message"]
        raise Refused("the server refused %s: %s" % (name, reason)) from None
    print("playing %s (%s, %s)" % (name, playback["container"], playback["audio"]), flush=True)
    return playback["id"]


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8474", help="the admin API's URL")
    parser.add_argument("--token", required=True, help="admin token or the room's token")
    parser.add_argument("--room", required=True)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--wav", help="16-bit mono 48 kHz WAV to send")
    what.add_argument("--file", help="a file in the server's media directory for it to play")
    parser.add_argument("--loop", action="store_true", help="play it again and again")
    args = parser.parse_args()
    frames = read_frames(args.wav) if args.wav else None
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    def on_finished(playback, outcome):
        def settle():
            if not finished.done():
                finished.set_result((playback, outcome))
        loop.call_soon_threadsafe(settle)

    events = open_events(args.api, args.token, args.room)
    loop.run_in_executor(None, follow_events, events, on_finished)
    url = args.api.replace("http", "ws", 1) + "/api/v1/rooms/%s/bot" % args.room
    headers = {"Authorization": "Bearer " + args.token}
    async with websockets.connect(url, extra_headers=headers) as socket:
        listener = asyncio.ensure_future(listen(socket))
        if frames is not None:
            await speak(socket, frames, args.loop)
        else:
            # The bot is in the room now, so the server has someone to play to.
            try:
                playback = await loop.run_in_executor(
                    None, play_on_server, args.api, args.token, args.room, args.file, args.loop)
            except Refused as refused:
                print(refused, file=sys.stderr, flush=True)
                os._exit(1)
            while True:
                ended, outcome = await finished
                if ended == playback:
                    break
                finished = loop.create_future()
            print("playback %s" % outcome, flush=True)
        listener.cancel()
    print("done", flush=True)
    # The event thread blocks on its stream; leave without waiting for it.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
