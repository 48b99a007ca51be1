#!/usr/bin/python3
"""A real OpenDHT node driven by JSON lines, for tests: 2.4.12 (Debian's python3-opendht), or
4.3.1 (scripts/build-peers' bindings, first on PYTHONPATH).

Usage: opendht_peer.py PORT [--no-rate-limit] [BOOTSTRAP_HOST:PORT ...]
Prints {"ready": true, "node_id": ..., "port": ...} once running, then answers one JSON line per
command read on stdin:
  {"cmd": "put", "key": HEX40, "data": HEX, "id": N}          -> {"ok": bool}
  {"cmd": "get", "key": HEX40, "signed": BOOL}                -> {"values": [VALUE...]}
  {"cmd": "listen", "key": HEX40}                             -> {"ok": true}; later, unprompted:
                                                                 {"event": "value", "key": HEX40, "value": VALUE}
  {"cmd": "quit"}
VALUE = {"id": N, "data": HEX, "owner": HEX40 (signed values only)|null, "user_type": STR}
"""
import json
import sys
import threading

import opendht as dht

lock = threading.Lock()


def say(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def owner_id(value):
    # 2.4 gives the owner's id (an InfoHash), 4.x its public key.
    owner = value.owner
    return str(owner.getId() if hasattr(owner, "getLongId") else owner)


def hex_id(node_id):
    # 2.4 gives the node id as hex bytes, 4.x as an InfoHash.
    return node_id.decode() if isinstance(node_id, bytes) else str(node_id)


def describe(value, signed):
    # The 2.4 binding dereferences a null owner on unsigned values (segfault): ask only when
    # the caller says the values are signed.
    return {
        "id": value.id,
        "data": bytes(value.data).hex(),
        "owner": owner_id(value) if signed else None,
        "user_type": value.user_type,
    }


def main():
    port = int(sys.argv[1])
    arguments = sys.argv[2:]
    node = dht.DhtRunner()
    config = dht.DhtConfig()
    if "--no-rate-limit" in arguments:
        arguments.remove("--no-rate-limit")
        config.setRateLimit(-1, -1)
    node.run(port=port, ipv4="127.0.0.1", ipv6="", config=config)
    for address in arguments:
        host, bport = address.rsplit(":", 1)
        node.bootstrap(host, bport)
    say({"ready": True, "node_id": hex_id(node.getNodeId()), "port": port, "version": getattr(dht, "version", lambda: "2.4")()})
    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        if name == "quit":
            break
        key = dht.InfoHash(command["key"].encode()) if "key" in command else None
        if name == "put":
            value = dht.Value(bytes.fromhex(command["data"]))
            if "id" in command:
                value.id = command["id"]
            say({"ok": bool(node.put(key, value))})
        elif name == "get":
            signed = command.get("signed", False)
            say({"values": [describe(v, signed) for v in node.get(key)]})
        elif name == "listen":
            hexkey = command["key"]

            def on_value(value, expired, hexkey=hexkey):
                say({"event": "expired" if expired else "value", "key": hexkey, "value": describe(value, False)})
                return True

            node.listen(key, on_value)
            say({"ok": True})
        else:
            say({"error": "unknown command " + name})
    node.shutdown()
    node.join()


if __name__ == "__main__":
    main()
