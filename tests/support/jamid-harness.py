#!/usr/bin/python3
"""Drive real Jami daemons (jamid 13.7.0, Debian bookworm) headless, loopback only.

[rdv] A copy of ../shared/interop/jamid-harness.py (read-only there) with these changes for
today's jamid 16.0.0 (scripts/build-jamid): the MEDIA pseudo-state also reads 16.0's "\u2194"
in SOCKETS, and each instance remembers the jamid it was started with (JAMID_BIN at `start`),
so that 13.7 and 16.0 instances of one harness are each recognised, and stopped, as such.
Also, `dbus NAME cm.METHOD` / `ca.METHOD` picks the interface of a method name both have,
and `dbus` reads the interface files of the instance's own jamid (16.0's differ).

Every jamid instance gets its own private D-Bus session bus, HOME/XDG dirs and
PulseAudio server (null sinks); all jamid processes and the local DHT node run
inside one private network namespace that has only `lo` (127.0.0.1) and a veth
pair carrying 198.18.0.1/32.  That address exists only inside the namespace; it is
needed because jamid's pjnath never offers 127.0.0.0/8 as an ICE host candidate.
IPv6 is switched off inside the namespace (works around a jamid hang, see
interop/README.md).

Needs root, /usr/libexec/jamid, iproute2, dbus-daemon, python3-dbus, python3-gi,
python3-opendht (or dhtnode), pulseaudio + pulseaudio-utils (for audio).
Run with /usr/bin/python3 (the Debian interpreter that has dbus/gi/opendht).

Typical session:
  H=./jamid-harness.py
  $H netns-up
  $H dht-start --port 4222
  $H start alice; $H start bob
  $H create-account alice --dht 127.0.0.1:4222
  $H create-account bob --dht 127.0.0.1:4222 --auto-answer
  CALL=$($H call alice $($H id bob) --wait CURRENT)
  $H play alice tone.wav & $H record bob out.wav --seconds 5; $H analyze out.wav --freq 1000
  $H hangup alice --all
  $H stop-all            # stops jamid/pulse/dbus/dht and removes the namespace
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import wave

DEFAULT_ROOT = os.environ.get("JAMID_HARNESS_ROOT", "/tmp/jamid-harness")
DEFAULT_NETNS = os.environ.get("JAMID_HARNESS_NETNS", "jamidh")
JAMID = os.environ.get("JAMID_BIN", "/usr/libexec/jamid")
ICE_ADDR = "198.18.0.1"          # host-candidate address, exists only inside the netns
VETH = ("jh0", "jh1")
BUS_NAME = "cx.ring.Ring"
CM_PATH, CM_IF = "/cx/ring/Ring/ConfigurationManager", "cx.ring.Ring.ConfigurationManager"
CA_PATH, CA_IF = "/cx/ring/Ring/CallManager", "cx.ring.Ring.CallManager"
VM_PATH, VM_IF = "/cx/ring/Ring/VideoManager", "cx.ring.Ring.VideoManager"
FINAL_CALL_STATES = ("OVER", "HUNGUP", "FAILURE", "BUSY")

# Account settings that keep jamid off the internet (all overridable with --set).
LOOPBACK_ACCOUNT = {
    "Account.type": "RING",
    "TURN.enable": "false",
    "Account.upnpEnabled": "false",
    "Account.peerDiscovery": "false",       # DHT multicast peer discovery
    "Account.accountDiscovery": "false",
    "Account.accountPublish": "false",
    "Account.proxyEnabled": "false",        # no DHT proxy => no push notifications
    "Account.proxyServer": "",
    "Account.dhtProxyListUrl": "http://127.0.0.1:1/",
    "RingNS.uri": "http://127.0.0.1:1",     # name server lookups fail fast on loopback
    "Account.managerUri": "",
    "Account.archiveHasPassword": "false",
    "Account.archivePassword": "",
    "Account.localInterface": "default",    # NOT "lo": pjnath ignores loopback addresses
    "Account.publishedSameAsLocal": "true",
    "DHT.PublicInCalls": "true",            # accept calls from non-contacts
    "Account.allowCertFromHistory": "true",
    "Account.allowCertFromContact": "true",
    "Account.allowCertFromTrusted": "true",
    "Account.ringtoneEnabled": "false",
}

# Audio preferences written into dring.yml: no webrtc processing, so test tones
# pass through unchanged (webrtc noise suppression attenuates a sine by ~22 dB).
AUDIO_PREFS = {
    "audioProcessor": '"null"',
    "voiceActivityDetection": "false",
    "noiseReduce": '"no"',
    "echoCancel": '"null"',
    "automaticGainControl": "false",
}

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

DRING_TEMPLATE = """accounts:
  []
preferences:
  historyLimit: 0
  ringingTimeout: 30
  historyMaxCalls: 20
  md5Hash: false
  order: ""
  portNum: 5060
  searchBarDisplay: true
  zoneToneChoice: North America
voipPreferences:
  playDtmf: false
  playTones: false
  pulseLength: 250
audio:
  alsa:
    cardIn: 0
    cardOut: 0
    cardRing: 0
    plugin: default
    smplRate: 44100
  alwaysRecording: false
  audioApi: {audio_api}
  captureMuted: false
  playbackMuted: false
  pulse:
    devicePlayback: ""
    deviceRecord: ""
    deviceRingtone: ""
  portaudio:
    devicePlayback: ""
    deviceRecord: ""
    deviceRingtone: ""
  recordPath: {record_path}
  volumeMic: 1
  volumeSpkr: 1
  audioProcessor: "null"
  automaticGainControl: false
  voiceActivityDetection: false
  noiseReduce: "no"
  echoCancel: "null"
video:
  recordPreview: false
  recordQuality: 0
  decodingAccelerated: false
  encodingAccelerated: false
  conferenceResolution: 1280x720
  devices:
    []
plugins:
  pluginsEnabled: false
  installedPlugins:
    []
  loadedPlugins:
    []
"""


def die(msg, code=1):
    print("jamid-harness: " + msg, file=sys.stderr)
    sys.exit(code)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


# --------------------------------------------------------------------------- state

class Harness:
    def __init__(self, root, netns):
        self.root = os.path.abspath(root)
        self.netns = netns
        os.makedirs(self.root, exist_ok=True)

    def idir(self, name):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            die("bad instance name %r" % name)
        return os.path.join(self.root, name)

    def state_path(self, name):
        return os.path.join(self.idir(name), "state.json")

    def load(self, name, must=True):
        p = self.state_path(name)
        if not os.path.exists(p):
            if must:
                die("instance %r not started (no %s)" % (name, p))
            return None
        with open(p) as f:
            return json.load(f)

    def save(self, name, st):
        tmp = self.state_path(name) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f, indent=1)
        os.replace(tmp, self.state_path(name))

    def instances(self):
        out = []
        for n in sorted(os.listdir(self.root)):
            if os.path.exists(os.path.join(self.root, n, "state.json")):
                out.append(n)
        return out

    # ------------------------------------------------------------------ netns
    def netns_exists(self):
        return os.path.exists("/run/netns/" + self.netns)

    def nsexec(self, cmd):
        return ["ip", "netns", "exec", self.netns] + list(cmd)

    def netns_up(self):
        if not self.netns_exists():
            run(["ip", "netns", "add", self.netns])
        ns = self.netns
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # IPv6 off: jamid 13.7's pjnath get_invalid_addresses() loops forever on
        # kernels that put NLMSG_DONE in the same datagram as the last RTM_NEWADDR.
        run(self.nsexec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                         "net.ipv6.conf.default.disable_ipv6=1",
                         "net.ipv6.conf.lo.disable_ipv6=1"]))
        links = run(["ip", "-n", ns, "-o", "link"]).stdout
        if VETH[0] + "@" not in links:
            run(["ip", "-n", ns, "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1]])
        addrs = run(["ip", "-n", ns, "-o", "addr", "show", "dev", VETH[0]]).stdout
        if ICE_ADDR not in addrs:
            run(["ip", "-n", ns, "addr", "add", ICE_ADDR + "/32", "dev", VETH[0]])
        run(["ip", "-n", ns, "link", "set", VETH[0], "up"])
        run(["ip", "-n", ns, "link", "set", VETH[1], "up"])
        # `ip netns exec` bind-mounts /etc/netns/NS/* over /etc: send any DNS to loopback.
        etc = "/etc/netns/" + ns
        os.makedirs(etc, exist_ok=True)
        with open(etc + "/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        return run(["ip", "-n", ns, "-br", "addr"]).stdout

    def netns_down(self):
        if self.netns_exists():
            run(["ip", "netns", "del", self.netns], check=False)
        shutil.rmtree("/etc/netns/" + self.netns, ignore_errors=True)


# --------------------------------------------------------------------------- processes

def proc_alive(pid, expect=None):
    if not pid:
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ")[-1].startswith("Z"):
                return False
    except OSError:
        return False
    return expect is None or expect in cmd


def stop_pid(pid, expect, timeout=10.0, what="process"):
    """SIGTERM one process we started (identified by pid + cmdline), SIGKILL after timeout."""
    if not proc_alive(pid, expect):
        return "not running"
    os.kill(pid, signal.SIGTERM)
    t = time.time()
    while time.time() - t < timeout:
        if not proc_alive(pid, expect):
            return "stopped"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    return "killed (SIGTERM ignored for %.0fs)" % timeout


def spawn(cmd, logfile, env=None):
    lf = open(logfile, "ab")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True, close_fds=True)
    lf.close()
    return p.pid


def wait_for(pred, timeout, interval=0.1, what="condition"):
    t = time.time()
    while True:
        v = pred()
        if v:
            return v
        if time.time() - t > timeout:
            die("timeout after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def proc_stats(pid):
    """RSS (MiB), cumulative CPU seconds, thread count of a process."""
    try:
        with open("/proc/%d/status" % pid) as f:
            st = dict(l.split(":", 1) for l in f if ":" in l)
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().split(") ")[-1].split()
        tck = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / tck
        return {"pid": pid, "rss_mib": round(int(st["VmRSS"].split()[0]) / 1024, 1),
                "cpu_s": round(cpu, 2), "threads": int(st["Threads"])}
    except OSError:
        return None


# --------------------------------------------------------------------------- D-Bus

def bus(st):
    import dbus
    return dbus.bus.BusConnection(st["bus_address"])


def ifaces(st):
    import dbus
    b = bus(st)
    cm = dbus.Interface(b.get_object(BUS_NAME, CM_PATH), CM_IF)
    ca = dbus.Interface(b.get_object(BUS_NAME, CA_PATH), CA_IF)
    return b, cm, ca


def plain(v):
    """dbus types -> json-able python."""
    import dbus
    if isinstance(v, (dbus.Dictionary, dict)):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (dbus.Array, list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64, dbus.Byte)):
        return int(v)
    if isinstance(v, dbus.Double):
        return float(v)
    return str(v)


def account_of(st, cm=None):
    acc = st.get("account_id")
    if not acc:
        if cm is None:
            _, cm, _ = ifaces(st)
        lst = [str(a) for a in cm.getAccountList()]
        if not lst:
            die("instance has no account; run create-account first")
        acc = lst[0]
    return acc


def media_list(audio_src="", video=False, video_src=""):
    import dbus
    m = [dbus.Dictionary({"MEDIA_TYPE": "MEDIA_TYPE_AUDIO", "ENABLED": "true", "MUTED": "false",
                          "SOURCE": audio_src, "LABEL": "audio_0"}, signature="ss")]
    if video:
        m.append(dbus.Dictionary({"MEDIA_TYPE": "MEDIA_TYPE_VIDEO", "ENABLED": "true", "MUTED": "false",
                                  "SOURCE": video_src, "LABEL": "video_0"}, signature="ss"))
    return dbus.Array(m, signature="a{ss}")


def call_states(st):
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    out = {}
    for c in ca.getCallList(acc):
        d = plain(ca.getCallDetails(acc, c))
        out[str(c)] = d
    return acc, out


# --------------------------------------------------------------------------- audio helpers

def write_tone(path, freqs, seconds, rate=48000, amp=0.5):
    n = int(seconds * rate)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        a = amp * 32767 / max(1, len(freqs))
        chunk = bytearray()
        for i in range(n):
            v = sum(math.sin(2 * math.pi * f * i / rate) for f in freqs)
            chunk += struct.pack("<h", int(a * v))
            if len(chunk) > 1 << 16:
                w.writeframes(bytes(chunk))
                chunk = bytearray()
        w.writeframes(bytes(chunk))


def read_pcm(path, rate=16000):
    """mono s16 samples at `rate`; uses ffmpeg when available, else the wave module."""
    if shutil.which("ffmpeg"):
        out = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", str(rate),
                              "-f", "s16le", "-"], capture_output=True, check=True).stdout
        return list(struct.unpack("<%dh" % (len(out) // 2), out)), rate
    with wave.open(path) as w:
        if w.getsampwidth() != 2:
            die("only 16-bit wav without ffmpeg")
        ch, r = w.getnchannels(), w.getframerate()
        data = w.readframes(w.getnframes())
    s = struct.unpack("<%dh" % (len(data) // 2), data)
    return list(s[::ch]), r


def goertzel_dbfs(x, rate, f):
    if not x:
        return -200.0
    k = 2 * math.cos(2 * math.pi * f / rate)
    s1 = s2 = 0.0
    for v in x:
        s0 = v + k * s1 - s2
        s2, s1 = s1, s0
    p = s1 * s1 + s2 * s2 - k * s1 * s2
    amp = 2 * math.sqrt(max(p, 0)) / len(x)      # sine amplitude in sample units
    return 20 * math.log10(max(amp, 1e-9) / 32768)


# --------------------------------------------------------------------------- commands

def cmd_netns_up(h, a):
    print(h.netns_up(), end="")


def cmd_netns_down(h, a):
    h.netns_down()


def cmd_exec(h, a):
    if not a.cmd:
        die("usage: exec -- CMD [ARGS...]")
    cmd = a.cmd[1:] if a.cmd[0] == "--" else a.cmd
    if not h.netns_exists():
        die("namespace %s missing; run netns-up" % h.netns)
    os.execvp("ip", h.nsexec(cmd))


DHT_NODE_PY = r"""
import opendht as dht, os, signal, sys, time
port = int(sys.argv[1])
r = dht.DhtRunner()
r.run(port=port, ipv4="127.0.0.1", ipv6="")   # bound to loopback only, network id 0
print("dht node", r.getNodeId().decode(), "bound", r.getBound(), flush=True)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
signal.signal(signal.SIGINT, lambda *a: os._exit(0))
while True:
    time.sleep(60)
"""


def cmd_dht_start(h, a):
    if not h.netns_exists():
        h.netns_up()
    sp = os.path.join(h.root, "dht.json")
    if os.path.exists(sp):
        st = json.load(open(sp))
        if proc_alive(st["pid"], st["expect"]):
            print("127.0.0.1:%d" % st["port"])
            return
    logf = os.path.join(h.root, "dht.log")
    if a.impl == "python":
        script = os.path.join(h.root, "dht_node.py")
        with open(script, "w") as f:
            f.write(DHT_NODE_PY)
        pid = spawn(h.nsexec(["/usr/bin/python3", script, str(a.port)]), logf)
        expect = "dht_node.py"
    else:
        # dhtnode binds 0.0.0.0/:: (inside the namespace: lo + the veth only); -s = no REPL.
        pid = spawn(h.nsexec(["/usr/bin/dhtnode", "-s", "-p", str(a.port), "-n", "0"]), logf)
        expect = "dhtnode"
    json.dump({"pid": pid, "port": a.port, "impl": a.impl, "expect": expect}, open(sp, "w"))

    def bound():
        out = run(h.nsexec(["ss", "-Hlun", "sport", "= :%d" % a.port]), check=False).stdout
        return out.strip()
    wait_for(bound, 15, what="DHT node on udp/%d" % a.port)
    print("127.0.0.1:%d" % a.port)


def cmd_dht_stop(h, a):
    sp = os.path.join(h.root, "dht.json")
    if not os.path.exists(sp):
        return
    st = json.load(open(sp))
    print("dht:", stop_pid(st["pid"], st["expect"], 5))
    os.remove(sp)


def pulse_config(d):
    return (
        "load-module module-native-protocol-unix socket={d}/pulse/native auth-anonymous=1\n"
        "load-module module-null-sink sink_name=spk rate=48000 channels=1 "
        "sink_properties=device.description=jamid-speaker\n"
        "load-module module-null-sink sink_name=mic rate=48000 channels=1 "
        "sink_properties=device.description=jamid-microphone-feed\n"
        "set-default-sink spk\n"
        "set-default-source mic.monitor\n").format(d=d)


def patch_dring(path, audio_api):
    txt = open(path).read()
    txt = re.sub(r"(?m)^  audioApi: .*$", "  audioApi: " + audio_api, txt)
    for k, v in AUDIO_PREFS.items():
        txt = re.sub(r"(?m)^  %s: .*$" % k, "  %s: %s" % (k, v), txt)
    open(path, "w").write(txt)


def cmd_start(h, a):
    name = a.name
    d = h.idir(name)
    old = h.load(name, must=False)
    if old and proc_alive(old.get("jamid_pid"), old.get("jamid_bin", JAMID)):
        print(json.dumps({"name": name, "already_running": True, "bus_address": old["bus_address"]}))
        return
    if old:   # restart after a crash/stop: reap what is left of the previous run
        stop_pid(old.get("pulse_pid"), "pulseaudio", 5)
        stop_pid(old.get("dbus_pid"), "dbus-daemon", 5)
    if not h.netns_exists():
        h.netns_up()
    for sub in ("home", "config/jami", "data", "cache", "runtime", "pulse", "recordings"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(os.path.join(d, "runtime"), 0o700)
    st = dict(old or {})
    st.update({"name": name, "dir": d, "netns": h.netns, "audio": a.audio})
    t0 = time.time()

    # 1. private session bus (unix socket in the instance dir: reachable from host and netns)
    sock = os.path.join(d, "bus.sock")
    if os.path.exists(sock):
        os.remove(sock)
    st["bus_address"] = "unix:path=" + sock
    # Own bus config WITHOUT service directories: the stock session config would
    # D-Bus-activate /usr/libexec/jamid (cx.ring.Ring.service) with HOME=/root in the
    # host network namespace whenever a client talks to a crashed/stopped instance.
    conf = os.path.join(d, "bus.conf")
    with open(conf, "w") as f:
        f.write(BUS_CONF.format(address=st["bus_address"]))
    st["dbus_pid"] = spawn(["dbus-daemon", "--nofork", "--nopidfile", "--config-file=" + conf],
                           os.path.join(d, "dbus.log"))
    wait_for(lambda: os.path.exists(sock), 10, what="dbus socket")

    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "DBUS_SESSION_BUS_ADDRESS": st["bus_address"],
        "HOME": os.path.join(d, "home"),
        "XDG_CONFIG_HOME": os.path.join(d, "config"),
        "XDG_DATA_HOME": os.path.join(d, "data"),
        "XDG_CACHE_HOME": os.path.join(d, "cache"),
        "XDG_RUNTIME_DIR": os.path.join(d, "runtime"),
    }
    # A jamid built from source (JAMID_BIN) may need its own libraries.
    if os.environ.get("JAMID_LD_LIBRARY_PATH"):
        env["LD_LIBRARY_PATH"] = os.environ["JAMID_LD_LIBRARY_PATH"]

    # 2. private PulseAudio with two null sinks: 'spk' (jamid plays here, record
    #    spk.monitor) and 'mic' (play into it; jamid captures mic.monitor).
    audio_api = "alsa"
    if a.audio == "pulse":
        if not shutil.which("pulseaudio"):
            die("pulseaudio not installed (apt-get install pulseaudio pulseaudio-utils) or use --audio none")
        psock = os.path.join(d, "pulse", "native")
        if os.path.exists(psock):
            os.remove(psock)
        with open(os.path.join(d, "pulse", "default.pa"), "w") as f:
            f.write(pulse_config(d))
        penv = dict(env, PULSE_RUNTIME_PATH=os.path.join(d, "pulse", "run"))
        st["pulse_pid"] = spawn(["pulseaudio", "-n", "-F", os.path.join(d, "pulse", "default.pa"),
                                 "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
                                 "--disable-shm=yes", "--log-target=stderr"],
                                os.path.join(d, "pulse", "pulse.log"), env=penv)
        wait_for(lambda: os.path.exists(psock), 10, what="pulseaudio socket")
        st["pulse_server"] = "unix:" + psock
        env["PULSE_SERVER"] = st["pulse_server"]
        audio_api = "pulseaudio"
    else:
        st.pop("pulse_pid", None)
        st.pop("pulse_server", None)

    # 3. dring.yml: audio API + no audio processing; accounts live in data/jami/<id>/
    dring = os.path.join(d, "config", "jami", "dring.yml")
    if not os.path.exists(dring):
        with open(dring, "w") as f:
            f.write(DRING_TEMPLATE.format(audio_api=audio_api,
                                          record_path=json.dumps(os.path.join(d, "recordings"))))
    else:
        patch_dring(dring, audio_api)

    # 4. jamid inside the namespace; -p keeps it alive between our short D-Bus clients
    jcmd = [JAMID, "-c", "-p"] + (["-d"] if not a.quiet else [])
    st["jamid_log"] = os.path.join(d, "jamid.log")
    st["jamid_pid"] = spawn(h.nsexec(jcmd), st["jamid_log"], env=env)
    st["jamid_bin"] = JAMID  # each instance is recognised by its own jamid (13.7 and 16.0 mix)
    st["dbus_interfaces"] = dbus_interfaces(JAMID)
    st["started_at"] = time.time()
    h.save(name, st)

    import dbus

    def up():
        if not proc_alive(st["jamid_pid"], st.get("jamid_bin", JAMID)):
            die("jamid exited during start; see " + st["jamid_log"])
        try:
            b = dbus.bus.BusConnection(st["bus_address"])
            ok = b.name_has_owner(BUS_NAME)
            b.close()
            return ok
        except dbus.DBusException:
            return False
    wait_for(up, 30, what="cx.ring.Ring on the private bus")
    _, cm, _ = ifaces(st)
    if audio_api == "pulseaudio" and str(cm.getAudioManager()) != "pulseaudio":
        cm.setAudioManager("pulseaudio")
    st["start_seconds"] = round(time.time() - t0, 2)
    h.save(name, st)
    print(json.dumps({"name": name, "bus_address": st["bus_address"], "jamid_pid": st["jamid_pid"],
                      "audio_manager": str(cm.getAudioManager()), "start_seconds": st["start_seconds"],
                      "pulse_server": st.get("pulse_server")}))


def cmd_create_account(h, a):
    st = h.load(a.name)
    _, cm, _ = ifaces(st)
    details = dict(LOOPBACK_ACCOUNT)
    details.update({
        "Account.alias": a.alias or a.name,
        "Account.displayName": a.alias or a.name,
        "Account.deviceName": a.name,
        "Account.hostname": a.dht,
        "Account.dhtPort": str(a.dht_port),
        "Account.autoAnswer": "true" if a.auto_answer else "false",
        "Account.rendezVous": "true" if a.rendezvous else "false",
        "Account.videoEnabled": "false" if a.no_video else "true",
    })
    for kv in a.set or []:
        k, _, v = kv.partition("=")
        details[k] = v
    import dbus
    t0 = time.time()
    acc = str(cm.addAccount(dbus.Dictionary(details, signature="ss")))
    st["account_id"] = acc
    h.save(a.name, st)
    seen = {}

    def ready():
        v = plain(cm.getVolatileAccountDetails(acc))
        s = v.get("Account.registrationStatus", "")
        if s and s not in seen:
            seen[s] = round(time.time() - t0, 2)
        if s.startswith("ERROR"):
            die("registration failed: %s" % json.dumps(v))
        return s == "REGISTERED" and v.get("Account.deviceAnnounced") == "true"
    wait_for(ready, a.timeout, 0.2, what="REGISTERED + deviceAnnounced")
    d = plain(cm.getAccountDetails(acc))
    st["jami_id"] = d["Account.username"]
    st["device_id"] = plain(cm.getVolatileAccountDetails(acc)).get("Account.deviceID")
    h.save(a.name, st)
    print(json.dumps({"name": a.name, "account_id": acc, "jami_id": st["jami_id"],
                      "device_id": st["device_id"], "seconds_to_ready": round(time.time() - t0, 2),
                      "states": seen}))


def cmd_id(h, a):
    st = h.load(a.name)
    if not st.get("jami_id"):
        _, cm, _ = ifaces(st)
        st["jami_id"] = str(cm.getAccountDetails(account_of(st, cm))["Account.username"])
        h.save(a.name, st)
    print(st["jami_id"])


def cmd_account(h, a):
    st = h.load(a.name)
    _, cm, _ = ifaces(st)
    acc = account_of(st, cm)
    print(json.dumps({"account_id": acc, "details": plain(cm.getAccountDetails(acc)),
                      "volatile": plain(cm.getVolatileAccountDetails(acc))}, indent=1, sort_keys=True))


def cmd_set_account(h, a):
    st = h.load(a.name)
    _, cm, _ = ifaces(st)
    acc = account_of(st, cm)
    d = cm.getAccountDetails(acc)
    for kv in a.kv:
        k, _, v = kv.partition("=")
        d[k] = v
    cm.setAccountDetails(acc, d)
    print(json.dumps({k.partition("=")[0]: str(cm.getAccountDetails(acc)[k.partition("=")[0]]) for k in a.kv}))


def state_matches(d, want):
    if want == "MEDIA":    # pseudo-state: CURRENT and the media ICE pairs are selected (RTP flows)
        # jamid 13.7 writes the selected pairs with "<->", 16.0 with "\u2194".
        sockets = d.get("SOCKETS", "")
        return d.get("CALL_STATE") == "CURRENT" and ("<->" in sockets or "\u2194" in sockets)
    return d.get("CALL_STATE") == want


class CallWatcher:
    """Follows callStateChanged signals of one instance.

    getCallDetails() is only used when no signal arrived for QUIET seconds: calling it
    while jamid is still creating the media ICE transport of a new call crashes jamid
    13.7 (IceTransport::isRunning() takes a NULL pj_grp_lock -> SIGSEGV in the D-Bus
    thread; seen 3 times when polling every 50 ms right after placeCallWithMedia)."""
    QUIET = 0.5

    def __init__(self, st):
        import dbus
        from dbus.mainloop.glib import DBusGMainLoop
        from gi.repository import GLib
        self.GLib = GLib
        DBusGMainLoop(set_as_default=True)
        self.bus = dbus.bus.BusConnection(st["bus_address"])
        self.cm = dbus.Interface(self.bus.get_object(BUS_NAME, CM_PATH), CM_IF)
        self.ca = dbus.Interface(self.bus.get_object(BUS_NAME, CA_PATH), CA_IF)
        self.acc = account_of(st, self.cm)
        self.state = {}          # call id -> last state from signals
        self.last_signal = time.time()   # first getCallDetails only after QUIET seconds
        self.bus.add_signal_receiver(self._on_state, "callStateChanged", CA_IF)
        self.bus.add_signal_receiver(self._on_media, "mediaNegotiationStatus", CA_IF)

    def _on_state(self, acc, cid, state, code):
        if str(acc) == self.acc:
            self.state[str(cid)] = str(state)
            self.last_signal = time.time()

    def _on_media(self, cid, event, media):
        self.last_signal = time.time()

    def pump(self, seconds):
        ctx = self.GLib.MainContext.default()
        end = time.time() + seconds
        while time.time() < end:
            while ctx.pending():
                ctx.iteration(False)
            time.sleep(0.01)
        while ctx.pending():
            ctx.iteration(False)

    def details(self):
        out = {}
        for c in self.ca.getCallList(self.acc):
            out[str(c)] = plain(self.ca.getCallDetails(self.acc, c))
        return out

    def wait(self, want, call=None, timeout=30.0, t0=None):
        """Wait for `call` (or any call) to reach `want`.  'OVER' = call gone,
        'MEDIA' = CURRENT and media ICE pairs selected (RTP flowing)."""
        t0 = t0 or time.time()
        want = want.upper()
        last_poll = 0.0
        while True:
            self.pump(0.05)
            now = time.time()
            # 1. signals (cheap, always safe)
            for cid, stt in list(self.state.items()):
                if call and cid != call:
                    continue
                if want == "OVER" and stt in FINAL_CALL_STATES:
                    return cid, {"CALL_STATE": stt}, now - t0
                if want not in ("OVER", "MEDIA") and stt == want:
                    return cid, {"CALL_STATE": stt}, now - t0
            # 2. details, only once jamid has been quiet for a while
            if now - self.last_signal >= self.QUIET and now - last_poll >= 0.25:
                last_poll = now
                calls = self.details()
                ids = [call] if call else list(calls)
                if want == "OVER" and (call and call not in calls or not call and not calls):
                    return call, {}, now - t0
                for cid in ids:
                    d = calls.get(cid)
                    if d and state_matches(d, want):
                        return cid, d, now - t0
            if now - t0 > timeout:
                states = {c: d.get("CALL_STATE") for c, d in self.details().items()}
                die("timeout (%.0fs) waiting for call state %s; calls now: %s"
                    % (timeout, want, json.dumps(states)), 2)


def wait_call_state(st, want, call=None, timeout=30.0, t0=None):
    return CallWatcher(st).wait(want, call, timeout, t0)


def cmd_call(h, a):
    st = h.load(a.name)
    w = CallWatcher(st) if a.wait else None     # subscribe before placing the call
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    target = a.target
    if not re.fullmatch(r"[0-9a-f]{40}", target) and not target.startswith(("jami:", "ring:")):
        peer = h.load(target, must=False)          # allow an instance name as target
        if peer and peer.get("jami_id"):
            target = peer["jami_id"]
    t0 = time.time()
    cid = str(ca.placeCallWithMedia(acc, target, media_list(a.audio_source, a.video, a.video_source)))
    if not cid:
        die("placeCallWithMedia returned no call id")
    if w:
        _, d, dt = w.wait(a.wait, cid, a.timeout, t0)
        log("call %s reached %s after %.3fs" % (cid, a.wait.upper(), dt))
    print(cid)


def cmd_wait_state(h, a):
    st = h.load(a.name)
    cid, d, dt = wait_call_state(st, a.state, a.call, a.timeout)
    print(json.dumps({"call": cid, "state": a.state.upper(), "seconds": round(dt, 3), "details": d}))


def cmd_calls(h, a):
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    acc, calls = call_states(st)
    confs = {}
    for c in ca.getConferenceList(acc):
        confs[str(c)] = {"details": plain(ca.getConferenceDetails(acc, c)),
                         "participants": plain(ca.getParticipantList(acc, c))}
    print(json.dumps({"account_id": acc, "calls": calls, "conferences": confs}, indent=1))


def pick_call(st, ca, acc, call):
    if call:
        return call
    lst = [str(c) for c in ca.getCallList(acc)]
    if not lst:
        die("no call on this instance")
    return lst[0]


def cmd_accept(h, a):
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    if not a.call:
        cid, _, _ = wait_call_state(st, "INCOMING", None, a.timeout)   # signal-driven
    else:
        cid = a.call
    print(json.dumps({"call": cid, "accepted": bool(ca.acceptWithMedia(acc, cid, media_list(video=a.video)))}))


def cmd_hangup(h, a):
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    out = {}
    targets = [str(c) for c in ca.getCallList(acc)] if a.all else [pick_call(st, ca, acc, a.call)]
    for c in targets:
        out[c] = bool(ca.hangUp(acc, c))
    if a.all:
        for c in ca.getConferenceList(acc):
            out["conf:" + str(c)] = bool(ca.hangUpConference(acc, c))
    print(json.dumps(out))


def conference_infos(st, call=None):
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    res = {}
    confs = [str(c) for c in ca.getConferenceList(acc)]
    for c in confs:      # we host a conference (rendezvous point / local conference)
        res[c] = {"role": "host", "infos": plain(ca.getConferenceInfos(acc, c)),
                  "details": plain(ca.getConferenceDetails(acc, c))}
    calls = [call] if call else [str(c) for c in ca.getCallList(acc)]
    for c in calls:      # we are a participant: the host's layout arrives on the call
        infos = plain(ca.getConferenceInfos(acc, c))
        if infos or call:
            res[c] = {"role": "participant", "infos": infos}
    return res


def nudge_host(st, call):
    """raiseHand(true) then raiseHand(false) on our call: the host answers each order
    with a fresh confInfo.  Works around a jamid 13.7 race where the host's first
    confInfo lands on the outgoing *subcall* (before it is merged into the parent call),
    so onConferenceInfosUpdated fires for an unknown call id and
    getConferenceInfos(parent) stays empty until the layout changes again."""
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    calls = [call] if call else [str(c) for c in ca.getCallList(acc)]
    for c in calls:
        ca.raiseHand(acc, c, "", "", True)
        time.sleep(0.3)
        ca.raiseHand(acc, c, "", "", False)
    return calls


def cmd_conference_info(h, a):
    st = h.load(a.name)
    t0 = time.time()
    nudged = False
    while True:
        res = conference_infos(st, a.call)
        n = max([len(v["infos"]) for v in res.values()] or [0])
        if n >= a.wait_count:
            break
        if a.nudge and not nudged and time.time() - t0 > a.nudge:
            log("only %d entries after %.1fs: nudging the host (raiseHand on/off)" % (n, a.nudge))
            nudge_host(st, a.call)
            nudged = True
        if time.time() - t0 > a.timeout:
            print(json.dumps(res, indent=1))
            die("timeout: %d participants < %d" % (n, a.wait_count), 2)
        time.sleep(0.2)
    print(json.dumps(res, indent=1))


def cmd_switch_input(h, a):
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    cid = pick_call(st, ca, acc, a.call)
    if a.media_change:
        cur = plain(ca.currentMediaList(acc, cid))
        import dbus
        ml = []
        for m in cur:
            m = dict(m)
            m.pop("ON_HOLD", None)
            if m.get("MEDIA_TYPE") == ("MEDIA_TYPE_VIDEO" if a.video else "MEDIA_TYPE_AUDIO"):
                m["SOURCE"] = a.uri
            ml.append(dbus.Dictionary(m, signature="ss"))
        ok = ca.requestMediaChange(acc, cid, dbus.Array(ml, signature="a{ss}"))
    else:
        ok = ca.switchInput(acc, cid, a.uri)
    print(json.dumps({"call": cid, "ok": bool(ok)}))


def cmd_media(h, a):
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    cid = pick_call(st, ca, acc, a.call)
    print(json.dumps(plain(ca.currentMediaList(acc, cid)), indent=1))


def cmd_record_call(h, a):
    """Start/stop jamid's own call recorder (ogg/opus, peer+local mixed) for N seconds."""
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    acc = account_of(st, cm)
    cid = pick_call(st, ca, acc, a.call)
    rec_dir = os.path.join(st["dir"], "recordings")
    before = set(os.listdir(rec_dir))
    ca.toggleRecording(acc, cid)
    time.sleep(a.seconds)
    ca.toggleRecording(acc, cid)
    time.sleep(1.0)
    new = sorted(set(os.listdir(rec_dir)) - before)
    print(json.dumps({"call": cid, "files": [os.path.join(rec_dir, f) for f in new]}))


def pulse_env(st):
    if not st.get("pulse_server"):
        die("instance %s runs without pulseaudio (--audio none)" % st["name"])
    # HOME/XDG_CONFIG_HOME of the instance: keeps the pulse client cookie out of /root
    return dict(os.environ, PULSE_SERVER=st["pulse_server"], HOME=os.path.join(st["dir"], "home"),
                XDG_CONFIG_HOME=os.path.join(st["dir"], "config"))


def cmd_play(h, a):
    st = h.load(a.name)
    env = pulse_env(st)
    cmd = ["paplay", "--device=mic", a.file]
    if not a.loop:
        os.execvpe("paplay", cmd, env)          # same pid: `kill $!` stops the sound
    child = [None]

    def stop(*_):
        if child[0] and child[0].poll() is None:
            child[0].terminate()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    n = 0
    while True:
        child[0] = subprocess.Popen(cmd, env=env)
        rc = child[0].wait()
        n += 1
        if rc != 0 or (a.loop > 0 and n >= a.loop):
            sys.exit(rc)


def cmd_record(h, a):
    st = h.load(a.name)
    env = pulse_env(st)
    p = subprocess.Popen(["parec", "--device=spk.monitor", "--format=s16le", "--rate=48000",
                          "--channels=1", "--file-format=wav", a.file], env=env)
    time.sleep(a.seconds)
    p.send_signal(signal.SIGINT)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
    print(a.file)


def cmd_tone(h, a):
    write_tone(a.file, a.freq, a.seconds, a.rate, a.amplitude)
    print(a.file)


def cmd_analyze(h, a):
    x, rate = read_pcm(a.file, 16000)
    if a.skip:
        x = x[int(a.skip * rate):]
    rms = math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0
    res = {"file": a.file, "seconds": round(len(x) / rate, 2),
           "rms_dbfs": round(20 * math.log10(max(rms, 1e-9) / 32768), 1),
           "tones_dbfs": {str(f): round(goertzel_dbfs(x, rate, f), 1) for f in a.freq}}
    print(json.dumps(res))
    if a.expect:
        bad = [f for f in a.expect if res["tones_dbfs"][str(f)] < a.min_dbfs]
        if bad:
            die("expected tones missing (< %.0f dBFS): %s" % (a.min_dbfs, bad), 3)


def dbus_interfaces(jamid):
    """[rdv] Where the D-Bus interface files of `jamid` are: scripts/build-jamid's root keeps
    16.0's (sendTextMessage takes a flag there), Debian's are in /usr/share."""
    built = os.path.join(os.path.dirname(os.path.abspath(jamid)), "..", "root", "opt", "jami",
                         "share", "dbus-1", "interfaces")
    return os.path.normpath(built) if os.path.isdir(built) else "/usr/share/dbus-1/interfaces"


def cmd_dbus(h, a):
    """Call any CallManager/ConfigurationManager method by name. Arguments are coerced to the
    types the daemon's D-Bus XML declares; a leading accountId is filled in when omitted.
    Booleans: true/false; dicts: JSON objects. Prints the result as JSON."""
    import dbus
    import xml.etree.ElementTree as ET
    st = h.load(a.name)
    _, cm, ca = ifaces(st)
    interfaces = st.get("dbus_interfaces", "/usr/share/dbus-1/interfaces")
    sigs = {}
    for iface, xml in (("ca", "cx.ring.Ring.CallManager.xml"), ("cm", "cx.ring.Ring.ConfigurationManager.xml")):
        try:
            root = ET.parse(os.path.join(interfaces, xml)).getroot()
        except OSError:
            continue
        for m in root.iter("method"):
            ins = [(x.get("name"), x.get("type")) for x in m.findall("arg") if x.get("direction", "in") == "in"]
            sigs.setdefault(m.get("name"), (iface, ins))
    # [rdv] "cm.NAME" / "ca.NAME" pick the interface of a name both have (sendTextMessage).
    method = a.method
    if method[:3] in ("cm.", "ca."):
        wanted, method = method[:2], method[3:]
        for iface, xml in (("ca", "cx.ring.Ring.CallManager.xml"), ("cm", "cx.ring.Ring.ConfigurationManager.xml")):
            if iface != wanted:
                continue
            root = ET.parse(os.path.join(interfaces, xml)).getroot()
            for m in root.iter("method"):
                if m.get("name") == method:
                    sigs[method] = (iface, [(x.get("name"), x.get("type")) for x in m.findall("arg")
                                            if x.get("direction", "in") == "in"])
    if method not in sigs:
        die("unknown method %s" % a.method)
    iface, ins = sigs[method]
    args = list(a.args)
    if ins and ins[0][0].lower() == "accountid" and len(args) == len(ins) - 1:
        args.insert(0, account_of(st, cm))
    if len(args) != len(ins):
        die("%s takes %s" % (a.method, ", ".join("%s:%s" % x for x in ins)))
    conv = {"s": dbus.String, "u": dbus.UInt32, "i": dbus.Int32, "t": dbus.UInt64, "x": dbus.Int64,
            "q": dbus.UInt16, "n": dbus.Int16, "d": dbus.Double}
    out = []
    for (name, t), v in zip(ins, args):
        if t == "b":
            out.append(dbus.Boolean(v.lower() in ("1", "true", "yes", "on")))
        elif t in conv:
            out.append(conv[t](v))
        elif t.startswith("a{"):
            out.append(dbus.Dictionary(json.loads(v), signature=t[2:-1]))
        elif t.startswith("a"):
            out.append(dbus.Array(json.loads(v), signature=t[1:]))
        else:
            die("argument %s has unsupported type %s" % (name, t))
    obj = ca if iface == "ca" else cm
    res = getattr(obj, method)(*out)
    print(json.dumps(plain(res) if res is not None else None))


def cmd_events(h, a):
    st = h.load(a.name)
    import dbus
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib
    DBusGMainLoop(set_as_default=True)
    b = dbus.bus.BusConnection(st["bus_address"])
    t0 = time.time()
    want = set(a.only or [])

    def on_sig(*args, **kw):
        if want and kw["member"] not in want:
            return
        print(json.dumps({"t": round(time.time() - t0, 3), "signal": kw["member"],
                          "interface": kw["interface"], "args": plain(list(args))}), flush=True)
    b.add_signal_receiver(on_sig, sender_keyword="sender", member_keyword="member",
                          interface_keyword="interface", path_keyword="path")
    loop = GLib.MainLoop()
    if a.seconds:
        GLib.timeout_add(int(a.seconds * 1000), loop.quit)
    signal.signal(signal.SIGTERM, lambda *x: loop.quit())
    try:
        loop.run()
    except KeyboardInterrupt:
        pass


def cmd_stats(h, a):
    names = [a.name] if a.name else h.instances()
    out = {}
    for n in names:
        st = h.load(n)
        out[n] = {"jamid": proc_stats(st["jamid_pid"]) if proc_alive(st.get("jamid_pid"), st.get("jamid_bin", JAMID)) else None,
                  "pulseaudio": proc_stats(st["pulse_pid"]) if proc_alive(st.get("pulse_pid"), "pulseaudio") else None}
    print(json.dumps(out, indent=1))


def cmd_logs(h, a):
    st = h.load(a.name)
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(st["jamid_log"], errors="replace") as f:
        lines = [ansi.sub("", l) for l in f]
    if a.grep:
        rx = re.compile(a.grep, re.I)
        lines = [l for l in lines if rx.search(l)]
    sys.stdout.write("".join(lines[-a.tail:] if a.tail else lines))


def stop_instance(h, name, timeout):
    st = h.load(name, must=False)
    if not st:
        return {"name": name, "state": "unknown"}
    res = {"name": name}
    if proc_alive(st.get("jamid_pid"), st.get("jamid_bin", JAMID)):
        res["stats_before_stop"] = proc_stats(st["jamid_pid"])
    res["jamid"] = stop_pid(st.get("jamid_pid"), st.get("jamid_bin", JAMID), timeout)
    res["pulseaudio"] = stop_pid(st.get("pulse_pid"), "pulseaudio", 5)
    res["dbus"] = stop_pid(st.get("dbus_pid"), "dbus-daemon", 5)
    st["stopped_at"] = time.time()
    for k in ("jamid_pid", "pulse_pid", "dbus_pid"):
        st.pop(k, None)
    h.save(name, st)
    return res


def cmd_stop(h, a):
    print(json.dumps(stop_instance(h, a.name, a.timeout)))


def cmd_stop_all(h, a):
    for n in h.instances():
        print(json.dumps(stop_instance(h, n, a.timeout)))
    cmd_dht_stop(h, a)
    if not a.keep_netns:
        h.netns_down()


def cmd_status(h, a):
    out = {"root": h.root, "netns": h.netns, "netns_exists": h.netns_exists()}
    sp = os.path.join(h.root, "dht.json")
    if os.path.exists(sp):
        d = json.load(open(sp))
        out["dht"] = dict(d, alive=proc_alive(d["pid"], d["expect"]))
    out["instances"] = {}
    for n in h.instances():
        st = h.load(n)
        out["instances"][n] = {"jamid_alive": proc_alive(st.get("jamid_pid"), st.get("jamid_bin", JAMID)),
                               "account_id": st.get("account_id"), "jami_id": st.get("jami_id"),
                               "bus_address": st.get("bus_address"), "pulse_server": st.get("pulse_server")}
    print(json.dumps(out, indent=1))


def cmd_remove(h, a):
    st = h.load(a.name, must=False)
    if st and proc_alive(st.get("jamid_pid"), st.get("jamid_bin", JAMID)):
        die("stop %s first" % a.name)
    shutil.rmtree(h.idir(a.name), ignore_errors=True)


# --------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=DEFAULT_ROOT, help="state dir (default %(default)s)")
    p.add_argument("--netns", default=DEFAULT_NETNS, help="network namespace name (default %(default)s)")
    sp = p.add_subparsers(dest="cmd", required=True)

    sp.add_parser("netns-up", help="create the loopback-only namespace").set_defaults(f=cmd_netns_up)
    sp.add_parser("netns-down", help="delete the namespace").set_defaults(f=cmd_netns_down)
    x = sp.add_parser("exec", help="run a command inside the namespace (e.g. the server under test)")
    x.add_argument("cmd", nargs=argparse.REMAINDER)
    x.set_defaults(f=cmd_exec)

    x = sp.add_parser("dht-start", help="start a DHT bootstrap node on 127.0.0.1:PORT in the namespace")
    x.add_argument("--port", type=int, default=4222)
    x.add_argument("--impl", choices=["python", "dhtnode"], default="python")
    x.set_defaults(f=cmd_dht_start)
    sp.add_parser("dht-stop").set_defaults(f=cmd_dht_stop)

    x = sp.add_parser("start", help="start dbus-daemon + pulseaudio + jamid for instance NAME")
    x.add_argument("name")
    x.add_argument("--audio", choices=["pulse", "none"], default="pulse")
    x.add_argument("--quiet", action="store_true", help="no -d (debug) logging")
    x.set_defaults(f=cmd_start)

    x = sp.add_parser("create-account", help="addAccount(RING) and wait until REGISTERED")
    x.add_argument("name")
    x.add_argument("--dht", required=True, help="bootstrap HOST:PORT, e.g. 127.0.0.1:4222")
    x.add_argument("--alias")
    x.add_argument("--dht-port", type=int, default=0, help="local DHT port (0 = random)")
    x.add_argument("--rendezvous", action="store_true", help="Account.rendezVous=true (implies hosting a conference)")
    x.add_argument("--auto-answer", action="store_true")
    x.add_argument("--no-video", action="store_true", help="Account.videoEnabled=false")
    x.add_argument("--set", action="append", metavar="KEY=VALUE", help="extra account detail")
    x.add_argument("--timeout", type=float, default=60)
    x.set_defaults(f=cmd_create_account)

    x = sp.add_parser("id", help="print the Jami ID (Account.username)")
    x.add_argument("name")
    x.set_defaults(f=cmd_id)
    x = sp.add_parser("account", help="account + volatile details as JSON")
    x.add_argument("name")
    x.set_defaults(f=cmd_account)
    x = sp.add_parser("set-account", help="setAccountDetails KEY=VALUE...")
    x.add_argument("name")
    x.add_argument("kv", nargs="+")
    x.set_defaults(f=cmd_set_account)

    x = sp.add_parser("call", help="placeCallWithMedia; prints the call id")
    x.add_argument("name")
    x.add_argument("target", help="Jami ID (40 hex), jami:ID, or an instance name")
    x.add_argument("--video", action="store_true", help="offer a video stream too")
    x.add_argument("--audio-source", default="", help="SOURCE of the audio media (see doc: file:// is broken at call start)")
    x.add_argument("--video-source", default="", help="e.g. file:///path/clip.mp4")
    x.add_argument("--wait", metavar="STATE", help="block until the call reaches STATE (CURRENT, or MEDIA = RTP flowing)")
    x.add_argument("--timeout", type=float, default=30)
    x.set_defaults(f=cmd_call)

    x = sp.add_parser("wait-state", help="wait until a call is in STATE (OVER = call gone, MEDIA = RTP flowing)")
    x.add_argument("name")
    x.add_argument("state")
    x.add_argument("--call")
    x.add_argument("--timeout", type=float, default=30)
    x.set_defaults(f=cmd_wait_state)

    x = sp.add_parser("calls", help="calls + hosted conferences as JSON")
    x.add_argument("name")
    x.set_defaults(f=cmd_calls)

    x = sp.add_parser("accept", help="accept an incoming call (when not auto-answering)")
    x.add_argument("name")
    x.add_argument("--call")
    x.add_argument("--video", action="store_true")
    x.add_argument("--timeout", type=float, default=30)
    x.set_defaults(f=cmd_accept)

    x = sp.add_parser("hangup")
    x.add_argument("name")
    x.add_argument("--call")
    x.add_argument("--all", action="store_true")
    x.set_defaults(f=cmd_hangup)

    x = sp.add_parser("conference-info", help="getConferenceInfos for hosted conferences and calls")
    x.add_argument("name")
    x.add_argument("--call", help="call id (participant side) or conference id (host side)")
    x.add_argument("--wait-count", type=int, default=0, help="wait until >= N participants are listed")
    x.add_argument("--nudge", type=float, default=0, metavar="SECONDS",
                   help="if still short after SECONDS, raiseHand on/off so the host resends confInfo")
    x.add_argument("--timeout", type=float, default=30)
    x.set_defaults(f=cmd_conference_info)

    x = sp.add_parser("switch-input", help="CallManager.switchInput (or requestMediaChange)")
    x.add_argument("name")
    x.add_argument("uri", help="e.g. file:///tmp/clip.mp4, camera://..., or '' for default")
    x.add_argument("--call")
    x.add_argument("--media-change", action="store_true", help="use requestMediaChange on one stream")
    x.add_argument("--video", action="store_true", help="with --media-change: change the video stream")
    x.set_defaults(f=cmd_switch_input)

    x = sp.add_parser("media", help="currentMediaList of a call")
    x.add_argument("name")
    x.add_argument("--call")
    x.set_defaults(f=cmd_media)

    x = sp.add_parser("record-call", help="jamid's own call recorder for N seconds (ogg)")
    x.add_argument("name")
    x.add_argument("--call")
    x.add_argument("--seconds", type=float, default=5)
    x.set_defaults(f=cmd_record_call)

    x = sp.add_parser("play", help="play a sound file into NAME's microphone")
    x.add_argument("name")
    x.add_argument("file")
    x.add_argument("--loop", type=int, nargs="?", const=-1, default=0, help="repeat N times (no N: forever)")
    x.set_defaults(f=cmd_play)

    x = sp.add_parser("record", help="record what NAME plays (its speaker) to a wav")
    x.add_argument("name")
    x.add_argument("file")
    x.add_argument("--seconds", type=float, default=5)
    x.set_defaults(f=cmd_record)

    x = sp.add_parser("tone", help="write a sine wav (sum of --freq)")
    x.add_argument("file")
    x.add_argument("--freq", type=float, action="append", required=True)
    x.add_argument("--seconds", type=float, default=10)
    x.add_argument("--rate", type=int, default=48000)
    x.add_argument("--amplitude", type=float, default=0.5)
    x.set_defaults(f=cmd_tone)

    x = sp.add_parser("analyze", help="level of given frequencies (dBFS) in a recording")
    x.add_argument("file")
    x.add_argument("--freq", type=float, action="append", required=True)
    x.add_argument("--expect", type=float, action="append", help="fail (exit 3) if this freq < --min-dbfs")
    x.add_argument("--min-dbfs", type=float, default=-30)
    x.add_argument("--skip", type=float, default=0, help="ignore the first N seconds")
    x.set_defaults(f=cmd_analyze)

    x = sp.add_parser("dbus", help="call any CallManager/ConfigurationManager method, e.g. "
                      "'dbus alice setConferenceLayout CALLID 1' or 'dbus alice muteStream CALLID URI DEV SINK true'")
    x.add_argument("name"); x.add_argument("method"); x.add_argument("args", nargs="*")
    x.set_defaults(f=cmd_dbus)
    x = sp.add_parser("events", help="print cx.ring.Ring signals as JSON lines")
    x.add_argument("name")
    x.add_argument("--seconds", type=float, default=0)
    x.add_argument("--only", action="append", help="signal name filter (repeatable)")
    x.set_defaults(f=cmd_events)

    x = sp.add_parser("stats", help="RSS/CPU of jamid and pulseaudio")
    x.add_argument("name", nargs="?")
    x.set_defaults(f=cmd_stats)

    x = sp.add_parser("logs", help="jamid log without colour codes")
    x.add_argument("name")
    x.add_argument("--grep")
    x.add_argument("--tail", type=int, default=0)
    x.set_defaults(f=cmd_logs)

    x = sp.add_parser("stop", help="stop jamid, pulseaudio and dbus-daemon of NAME")
    x.add_argument("name")
    x.add_argument("--timeout", type=float, default=10)
    x.set_defaults(f=cmd_stop)

    x = sp.add_parser("stop-all", help="stop every instance and the DHT node, delete the namespace")
    x.add_argument("--timeout", type=float, default=10)
    x.add_argument("--keep-netns", action="store_true")
    x.set_defaults(f=cmd_stop_all)

    sp.add_parser("status").set_defaults(f=cmd_status)
    x = sp.add_parser("remove", help="delete a stopped instance's directory (account included)")
    x.add_argument("name")
    x.set_defaults(f=cmd_remove)

    a = p.parse_args()
    if os.geteuid() != 0 and a.cmd in ("netns-up", "netns-down", "start", "dht-start", "exec", "stop-all"):
        die("needs root (network namespace)")
    a.f(Harness(a.root, a.netns), a)


if __name__ == "__main__":
    main()
