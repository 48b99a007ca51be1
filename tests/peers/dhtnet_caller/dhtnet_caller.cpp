// dhtnet_caller: a test peer that calls a Jami account the way today's Jami (daemon 16.0.0,
// dhtnet 11f916f2, OpenDHT 4.3.1) does, built on the same libraries.
//
//   DHT: DeviceAnnouncement at the account hash -> certificate at InfoHash::get(PkId)
//   ConnectionManager (LegacyMode::Disabled) -> ICE-TCP -> TLS -> multiplexed channels
//   "sip" (channelTimeout 3 s, uniqueName), then "msg:<device>" and "svcdisc://query"
//   INVITE/SDP as jamid writes them, media over UDP ICE (controlling), SDES-SRTP, Opus.
//
// Every event is one JSON object per line on stdout; diagnostics go to stderr.
// Test tool only (links GPL dhtnet); not part of rdv.

#include <dhtnet/certstore.h>
#include <dhtnet/connectionmanager.h>
#include <dhtnet/diffie-hellman.h>
#include <dhtnet/ice_transport.h>
#include <dhtnet/ice_transport_factory.h>
#include <dhtnet/ip_utils.h>
#include <dhtnet/multiplexed_socket.h>

#include <opendht/crypto.h>
#include <opendht/default_types.h>
#include <opendht/dhtrunner.h>
#include <opendht/securedht.h>
#include <opendht/log.h>
#include <opendht/thread_pool.h>
#include <opendht/value.h>

#include <asio.hpp>
#include <msgpack.hpp>

#include <opus/opus.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <unistd.h>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The value a Jami account puts at its account hash for each device (jami-daemon
// src/jamidht/jami_contact.h). Signed by the account key.
struct DeviceAnnouncement : public dht::SignedValue<DeviceAnnouncement>
{
private:
    using BaseClass = dht::SignedValue<DeviceAnnouncement>;

public:
    static const constexpr dht::ValueType& TYPE = dht::ValueType::USER_DATA;
    dht::InfoHash dev;
    std::shared_ptr<dht::crypto::PublicKey> pk;
    MSGPACK_DEFINE_MAP(dev, pk)
};

// ---------------------------------------------------------------------------------------------
// JSON output

static std::mutex g_outMtx;
static Clock::time_point g_start = Clock::now();

static std::string
jstr(std::string_view s)
{
    std::string o;
    o.reserve(s.size() + 2);
    o += '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\r': o += "\\r"; break;
        case '\t': o += "\\t"; break;
        default:
            if (c < 0x20) {
                char b[8];
                snprintf(b, sizeof b, "\\u%04x", c);
                o += b;
            } else
                o += (char) c;
        }
    }
    o += '"';
    return o;
}

// A JSON object built field by field.
struct J
{
    std::string s;
    explicit J(std::string_view event) { s = "{\"event\":" + jstr(event); }
    J& str(std::string_view k, std::string_view v)
    {
        s += "," + jstr(k) + ":" + jstr(v);
        return *this;
    }
    J& num(std::string_view k, long long v)
    {
        s += "," + jstr(k) + ":" + std::to_string(v);
        return *this;
    }
    J& unum(std::string_view k, unsigned long long v)
    {
        s += "," + jstr(k) + ":" + std::to_string(v);
        return *this;
    }
    J& dbl(std::string_view k, double v)
    {
        char b[64];
        if (std::isfinite(v))
            snprintf(b, sizeof b, "%.1f", v);
        else
            snprintf(b, sizeof b, "null");
        s += "," + jstr(k) + ":" + b;
        return *this;
    }
    J& boolean(std::string_view k, bool v)
    {
        s += "," + jstr(k) + ":" + (v ? "true" : "false");
        return *this;
    }
    J& raw(std::string_view k, std::string_view v)
    {
        s += "," + jstr(k) + ":" + std::string(v);
        return *this;
    }
    void emit()
    {
        s += "}";
        std::lock_guard lk(g_outMtx);
        fwrite(s.data(), 1, s.size(), stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
};

static long long
msSince(Clock::time_point t)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

[[noreturn]] static void
fail(std::string_view stage, std::string_view message, int code = 1)
{
    J("error").str("stage", stage).str("message", message).num("t_ms", msSince(g_start)).emit();
    fflush(stdout);
    fflush(stderr);
    _exit(code);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

static std::mt19937_64&
rng()
{
    static std::mt19937_64 r {std::random_device {}()};
    return r;
}
static std::mutex g_rngMtx;

static std::string
randomHex(size_t n)
{
    static const char* d = "0123456789abcdef";
    std::lock_guard lk(g_rngMtx);
    std::string s(n, '0');
    for (auto& c : s)
        c = d[rng()() & 15];
    return s;
}

static uint64_t
randomU64()
{
    std::lock_guard lk(g_rngMtx);
    return rng()();
}

static const char* B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static std::string
b64encode(const uint8_t* p, size_t n)
{
    std::string o;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = p[i] << 16;
        if (i + 1 < n)
            v |= p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        o += B64[(v >> 18) & 63];
        o += B64[(v >> 12) & 63];
        o += i + 1 < n ? B64[(v >> 6) & 63] : '=';
        o += i + 2 < n ? B64[v & 63] : '=';
    }
    return o;
}

static std::vector<uint8_t>
b64decode(std::string_view s)
{
    std::vector<uint8_t> o;
    uint32_t v = 0;
    int bits = 0;
    for (char c : s) {
        const char* p = strchr(B64, c);
        if (c == '=' || !p || !c)
            break;
        v = (v << 6) | (uint32_t) (p - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o.push_back((v >> bits) & 0xff);
        }
    }
    return o;
}

static std::string
lower(std::string s)
{
    for (auto& c : s)
        c = (char) tolower((unsigned char) c);
    return s;
}

static std::string
trim(std::string_view s)
{
    size_t a = 0, b = s.size();
    while (a < b && isspace((unsigned char) s[a]))
        a++;
    while (b > a && isspace((unsigned char) s[b - 1]))
        b--;
    return std::string(s.substr(a, b - a));
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options
{
    fs::path identity;
    std::string bootstrap;
    std::string to;
    dhtnet::LegacyMode legacyMode {dhtnet::LegacyMode::Disabled};
    std::string legacyModeName {"disabled"};
    std::vector<std::string> say;
    std::vector<std::string> saySip;
    int seconds {5};
    double tone {0};
    std::vector<double> listenFor;
    bool media {true};
    bool verbose {false};
    int timeout {60};
    int lookupTimeout {30};
    std::string displayName;
    std::string userAgent {"Jami Daemon 16.0.0 (Linux)"};
    bool label {false};
    bool stdinCommands {false};
    bool waitAnnounce {true};
    bool connectOnly {false};
    bool compat137 {false};
    bool prepare {false};
    int calls {1};
    bool closeSip {false};
    double pause {1};
    fs::path dhParams;
    fs::path announceFor;
    int inviteTimeout {30};
};

static void
usage()
{
    fprintf(stderr,
            "usage: dhtnet_caller --identity DIR --bootstrap HOST:PORT --to ACCOUNT_ID [options]\n"
            "  --identity DIR        load DIR/id/id-server.{pem,crt} (as `dhtnet-crtmgr -s -o DIR`), create if missing\n"
            "  --bootstrap HOST:PORT DHT bootstrap node (network 0)\n"
            "  --to ID               callee Jami ID (40 hex)\n"
            "  --legacy-mode M       disabled (default, daemon 16.0.0) | supported | enabled\n"
            "  --say TEXT            text sent on the msg: channel once the call is answered (repeatable)\n"
            "  --say-sip TEXT        text sent as an in-dialog SIP MESSAGE text/plain after the ACK (repeatable)\n"
            "  --seconds N           stay N seconds in the call after the 200 OK, then BYE (default 5)\n"
            "  --calls N             N calls one after the other on the same link (default 1), --pause S apart\n"
            "                        (default 1); jamid reuses an open sip channel, else asks the link for one\n"
            "  --close-sip           with --calls: close the sip channel after each call, so that the next one\n"
            "                        asks the open link for a new channel (ConnectDeviceOptions.channelTimeout 3 s)\n"
            "  --tone HZ             send a sine tone at -6 dBFS (Opus); 0 = silence (default)\n"
            "  --listen-for HZ       print the received level at HZ once per second (repeatable)\n"
            "  --no-media            no media ICE/SRTP/Opus (offer still carries an SDP)\n"
            "  --timeout S           give up connecting after S seconds (default 60)\n"
            "  --lookup-timeout S    retry the DHT device lookup for up to S seconds (default 30)\n"
            "  --announce-for DIR    test helper: publish, signed by DIR/CA (dhtnet-crtmgr -s layout), the\n"
            "                        DeviceAnnouncement of DIR/id at the CA's id, as a Jami account does\n"
            "                        (lets a dnc peer be called by its 'account' id)\n"
            "  --compat-13.7         NOT today's Jami: reach a 13.7-protocol callee (legacy peer: key, certificate\n"
            "                        at SHA1(pk) as a fallback, own certificate also put at SHA1(pk))\n"
            "  --prepare             only create the identity and DIR/cache/dhParams, then exit (needs --identity)\n"
            "  --dh-params FILE      copy FILE (a dhtnet dhParams cache file) into DIR/cache when missing; an\n"
            "                        installed Jami has its DH parameters cached, generating them takes seconds\n"
            "  --connect-only        stop after the channels (sip, msg:, svcdisc) and --say; no INVITE (for a dnc peer)\n"
            "  --invite-timeout S    wait S seconds for the final answer to the INVITE (default 30)\n"
            "  --no-wait-announce    do not wait for our own certificate to be announced on the DHT\n"
            "  --display-name NAME   display name in From/Contact (default empty, as jamid's default)\n"
            "  --user-agent UA       default \"Jami Daemon 16.0.0 (Linux)\"\n"
            "  --label               add a=label:audio_0 to the m=audio section (jamid does not)\n"
            "  --stdin               read commands on stdin: say TEXT (msg:) | sip TEXT (in-dialog MESSAGE) | info | bye\n"
            "  --verbose             dhtnet/OpenDHT logs on stderr\n");
}

static Options
parseArgs(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                fail("args", "missing value for " + a, 64);
            }
            return argv[++i];
        };
        if (a == "--identity")
            o.identity = next();
        else if (a == "--bootstrap")
            o.bootstrap = next();
        else if (a == "--to")
            o.to = lower(next());
        else if (a == "--legacy-mode") {
            o.legacyModeName = lower(next());
            if (o.legacyModeName == "disabled")
                o.legacyMode = dhtnet::LegacyMode::Disabled;
            else if (o.legacyModeName == "supported")
                o.legacyMode = dhtnet::LegacyMode::Supported;
            else if (o.legacyModeName == "enabled")
                o.legacyMode = dhtnet::LegacyMode::Enabled;
            else
                fail("args", "bad --legacy-mode " + o.legacyModeName, 64);
        } else if (a == "--say")
            o.say.push_back(next());
        else if (a == "--say-sip")
            o.saySip.push_back(next());
        else if (a == "--seconds")
            o.seconds = std::stoi(next());
        else if (a == "--tone")
            o.tone = std::stod(next());
        else if (a == "--listen-for")
            o.listenFor.push_back(std::stod(next()));
        else if (a == "--no-media")
            o.media = false;
        else if (a == "--timeout")
            o.timeout = std::stoi(next());
        else if (a == "--lookup-timeout")
            o.lookupTimeout = std::stoi(next());
        else if (a == "--announce-for")
            o.announceFor = next();
        else if (a == "--compat-13.7") {
            o.compat137 = true;
            o.legacyMode = dhtnet::LegacyMode::Enabled;
            o.legacyModeName = "enabled";
        } else if (a == "--calls")
            o.calls = std::max(1, std::stoi(next()));
        else if (a == "--close-sip")
            o.closeSip = true;
        else if (a == "--pause")
            o.pause = std::stod(next());
        else if (a == "--prepare")
            o.prepare = true;
        else if (a == "--dh-params")
            o.dhParams = next();
        else if (a == "--connect-only")
            o.connectOnly = true;
        else if (a == "--invite-timeout")
            o.inviteTimeout = std::stoi(next());
        else if (a == "--no-wait-announce")
            o.waitAnnounce = false;
        else if (a == "--display-name")
            o.displayName = next();
        else if (a == "--user-agent")
            o.userAgent = next();
        else if (a == "--label")
            o.label = true;
        else if (a == "--stdin")
            o.stdinCommands = true;
        else if (a == "--verbose" || a == "-v")
            o.verbose = true;
        else if (a == "--help" || a == "-h") {
            usage();
            _exit(0);
        } else {
            usage();
            fail("args", "unknown argument " + a, 64);
        }
    }
    if (o.prepare && !o.identity.empty())
        return o;
    if (o.identity.empty() || o.bootstrap.empty() || o.to.empty()) {
        usage();
        fail("args", "--identity, --bootstrap and --to are required", 64);
    }
    if (o.to.rfind("jami:", 0) == 0)
        o.to = o.to.substr(5);
    if (o.to.size() != 40 || o.to.find_first_not_of("0123456789abcdef") != std::string::npos)
        fail("args", "--to must be a 40-hex Jami ID", 64);
    return o;
}

// ---------------------------------------------------------------------------------------------
// Identity, as `dhtnet-crtmgr -s -o DIR` lays it out: DIR/CA/ca-server.{pem,crt} (self-signed
// CA, whose key id is the account id) and DIR/id/id-server.{pem,crt} (device, signed by the CA).

static dht::crypto::Identity
loadOrCreateIdentity(const fs::path& dir)
{
    auto key = dir / "id" / "id-server.pem";
    auto crt = dir / "id" / "id-server.crt";
    bool created = false;
    if (!fs::exists(key) || !fs::exists(crt)) {
        fs::create_directories(dir / "CA");
        fs::create_directories(dir / "id");
        auto ca = dht::crypto::generateIdentity("ca-server");
        dht::crypto::saveIdentity(ca, (dir / "CA" / "ca-server").string());
        auto id = dht::crypto::generateIdentity("id-server", ca);
        dht::crypto::saveIdentity(id, (dir / "id" / "id-server").string());
        created = true;
    }
    auto load = [](const fs::path& p) {
        std::ifstream f(p, std::ios::binary);
        return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    };
    auto pk = std::make_shared<dht::crypto::PrivateKey>(load(key));
    auto cert = std::make_shared<dht::crypto::Certificate>(load(crt));
    if (!cert->issuer) {
        // A .crt holding only the device certificate: attach the CA from DIR/CA.
        auto caCrt = dir / "CA" / "ca-server.crt";
        if (fs::exists(caCrt))
            cert->issuer = std::make_shared<dht::crypto::Certificate>(load(caCrt));
    }
    if (!cert->issuer)
        fail("identity", "the device certificate has no issuer (CA) in " + dir.string());
    J("identity")
        .str("account", cert->issuer->getId().toString())
        .str("device", cert->getId().toString())
        .str("device_long", cert->getLongId().toString())
        .boolean("created", created)
        .emit();
    return {pk, cert};
}

// ---------------------------------------------------------------------------------------------
// SIP over the channel (text, Content-Length framed)

struct SipMsg
{
    bool request {false};
    std::string method; // requests
    std::string uri;    // requests
    int status {0};     // responses
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers; // name lowercased
    std::string body;
    std::string raw;

    static std::string canon(std::string n)
    {
        n = lower(trim(n));
        static const std::map<std::string, std::string> compact {{"i", "call-id"},
                                                                 {"f", "from"},
                                                                 {"t", "to"},
                                                                 {"v", "via"},
                                                                 {"l", "content-length"},
                                                                 {"c", "content-type"},
                                                                 {"m", "contact"},
                                                                 {"k", "supported"},
                                                                 {"s", "subject"}};
        auto it = compact.find(n);
        return it == compact.end() ? n : it->second;
    }
    std::string header(const std::string& name) const
    {
        auto n = canon(name);
        for (auto& [k, v] : headers)
            if (k == n)
                return v;
        return {};
    }
    std::vector<std::string> all(const std::string& name) const
    {
        std::vector<std::string> r;
        auto n = canon(name);
        for (auto& [k, v] : headers)
            if (k == n)
                r.push_back(v);
        return r;
    }
    unsigned cseqNum() const { return (unsigned) strtoul(header("cseq").c_str(), nullptr, 10); }
    std::string cseqMethod() const
    {
        auto c = header("cseq");
        auto p = c.find(' ');
        return p == std::string::npos ? "" : trim(c.substr(p + 1));
    }
};

// Extracts complete messages from a byte stream.
class SipStream
{
public:
    void feed(const uint8_t* d, size_t n) { buf_.append((const char*) d, n); }
    std::optional<SipMsg> next()
    {
        // skip keep-alive CRLFs
        while (buf_.size() >= 2 && buf_[0] == '\r' && buf_[1] == '\n')
            buf_.erase(0, 2);
        auto end = buf_.find("\r\n\r\n");
        if (end == std::string::npos)
            return std::nullopt;
        SipMsg m;
        std::string head = buf_.substr(0, end);
        std::istringstream hs(head);
        std::string line;
        std::getline(hs, line);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.rfind("SIP/2.0 ", 0) == 0) {
            m.status = atoi(line.c_str() + 8);
            auto p = line.find(' ', 8);
            m.reason = p == std::string::npos ? "" : line.substr(p + 1);
        } else {
            m.request = true;
            auto p1 = line.find(' ');
            auto p2 = line.rfind(' ');
            m.method = line.substr(0, p1);
            m.uri = p1 != std::string::npos && p2 > p1 ? line.substr(p1 + 1, p2 - p1 - 1) : "";
        }
        std::string prevName;
        while (std::getline(hs, line)) {
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            if (line.empty())
                continue;
            if ((line[0] == ' ' || line[0] == '\t') && !m.headers.empty()) {
                m.headers.back().second += " " + trim(line);
                continue;
            }
            auto c = line.find(':');
            if (c == std::string::npos)
                continue;
            m.headers.emplace_back(SipMsg::canon(line.substr(0, c)), trim(line.substr(c + 1)));
        }
        size_t clen = 0;
        auto cl = m.header("content-length");
        if (!cl.empty())
            clen = strtoul(cl.c_str(), nullptr, 10);
        if (buf_.size() < end + 4 + clen)
            return std::nullopt;
        m.body = buf_.substr(end + 4, clen);
        m.raw = buf_.substr(0, end + 4 + clen);
        buf_.erase(0, end + 4 + clen);
        return m;
    }

private:
    std::string buf_;
};

static std::string
headerParam(const std::string& h, const std::string& name)
{
    auto l = lower(h);
    auto key = ";" + name + "=";
    auto p = l.find(key);
    if (p == std::string::npos)
        return {};
    p += key.size();
    auto e = h.find_first_of(";>, ", p);
    return h.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

static std::string
uriOf(const std::string& nameAddr)
{
    auto a = nameAddr.find('<');
    auto b = nameAddr.find('>', a == std::string::npos ? 0 : a);
    if (a != std::string::npos && b != std::string::npos)
        return nameAddr.substr(a + 1, b - a - 1);
    auto s = nameAddr.find(';');
    return trim(nameAddr.substr(0, s));
}

// ---------------------------------------------------------------------------------------------
// SDP

struct SdpInfo
{
    std::string connAddr;
    int audioPort {0};
    std::string proto;
    std::vector<int> payloads;
    std::string ufrag, pwd;
    std::vector<std::string> candidates; // m=audio candidates (value after "candidate:")
    std::string cryptoSuite;
    std::vector<uint8_t> cryptoKey;
    std::string direction;
    int rtcpPort {0};
};

static SdpInfo
parseSdp(const std::string& sdp)
{
    SdpInfo r;
    std::istringstream s(sdp);
    std::string line;
    int mIndex = -1;
    bool inAudio = false;
    while (std::getline(s, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.size() < 2 || line[1] != '=')
            continue;
        char t = line[0];
        std::string v = line.substr(2);
        if (t == 'm') {
            mIndex++;
            inAudio = v.rfind("audio ", 0) == 0 && r.audioPort == 0 && r.proto.empty();
            if (inAudio) {
                std::istringstream ms(v);
                std::string media;
                ms >> media >> r.audioPort >> r.proto;
                int pt;
                while (ms >> pt)
                    r.payloads.push_back(pt);
            }
            continue;
        }
        bool session = mIndex < 0;
        if (!session && !inAudio)
            continue;
        if (t == 'c') {
            auto p = v.rfind(' ');
            if (p != std::string::npos)
                r.connAddr = v.substr(p + 1);
        } else if (t == 'a') {
            auto c = v.find(':');
            std::string name = v.substr(0, c);
            std::string val = c == std::string::npos ? "" : v.substr(c + 1);
            if (name == "ice-ufrag")
                r.ufrag = val;
            else if (name == "ice-pwd")
                r.pwd = val;
            else if (name == "candidate")
                r.candidates.push_back(val);
            else if (name == "crypto" && r.cryptoKey.empty()) {
                std::istringstream cs(val);
                std::string tag, suite, keyParams;
                cs >> tag >> suite >> keyParams;
                r.cryptoSuite = suite;
                if (keyParams.rfind("inline:", 0) == 0) {
                    auto k = keyParams.substr(7);
                    auto bar = k.find('|');
                    r.cryptoKey = b64decode(k.substr(0, bar));
                }
            } else if (name == "rtcp")
                r.rtcpPort = atoi(val.c_str());
            else if (name == "sendrecv" || name == "sendonly" || name == "recvonly" || name == "inactive")
                r.direction = name;
        }
    }
    return r;
}

// ---------------------------------------------------------------------------------------------
// Media: UDP ICE (2 components), SDES-SRTP, Opus

static constexpr int OPUS_PT = 104;
static constexpr int SAMPLE_RATE = 48000;
static constexpr int FRAME = 960; // 20 ms

struct Media
{
    std::shared_ptr<dhtnet::IceTransport> ice;
    std::atomic_bool initDone {false}, initOk {false};
    std::atomic_bool negoDone {false}, negoOk {false};
    std::mutex mtx;
    std::condition_variable cv;

    uint8_t localKey[30];
    std::string localKeyB64;
    srtp_t tx {nullptr}, rx {nullptr};
    std::mutex rxMtx;
    OpusEncoder* enc {nullptr};
    OpusDecoder* dec {nullptr};
    uint32_t ssrc {0};
    uint16_t seq {0};
    uint32_t ts {0};
    std::atomic<uint64_t> txRtp {0}, rxRtp {0}, rxRtcp {0}, rxBad {0}, txRtcp {0}, txBytes {0};
    std::atomic_bool firstRtp {false}, firstRtcp {false};
    std::vector<float> heard; // mono, decoded, since last report
    std::mutex heardMtx;
    std::atomic_bool running {false};
    std::thread sender;
};

static void
goertzelReport(const std::vector<float>& x, const std::vector<double>& freqs)
{
    size_t n = x.size();
    for (double f : freqs) {
        double dbfs = -INFINITY;
        if (n >= 480) {
            double w = 2 * M_PI * f / SAMPLE_RATE;
            double re = 0, im = 0, wsum = 0;
            for (size_t i = 0; i < n; i++) {
                double win = 0.5 - 0.5 * cos(2 * M_PI * i / (n - 1));
                wsum += win;
                re += win * x[i] * cos(w * i);
                im -= win * x[i] * sin(w * i);
            }
            double amp = 2 * sqrt(re * re + im * im) / wsum;
            dbfs = amp > 0 ? 20 * log10(amp) : -INFINITY;
            if (dbfs < -120)
                dbfs = -120;
        }
        J("heard").num("hz", (long long) llround(f)).dbl("dbfs", dbfs).num("samples", (long long) n).emit();
    }
}

static void
onRtp(Media& m, const std::vector<double>& listen, uint8_t* buf, size_t len)
{
    int l = (int) len;
    {
        std::lock_guard lk(m.rxMtx);
        if (!m.rx)
            return;
        auto st = srtp_unprotect(m.rx, buf, &l);
        if (st != srtp_err_status_ok) {
            if (m.rxBad++ < 5)
                J("media_error").str("what", "srtp_unprotect").num("status", st).num("len", (long long) len).emit();
            return;
        }
    }
    if (l < 12 || (buf[0] >> 6) != 2)
        return;
    int pt = buf[1] & 0x7f;
    size_t off = 12 + 4 * (buf[0] & 0x0f);
    if (buf[0] & 0x10) { // extension
        if ((size_t) l < off + 4)
            return;
        off += 4 + 4 * ((buf[off + 2] << 8) | buf[off + 3]);
    }
    size_t plen = (size_t) l - off;
    if (buf[0] & 0x20) // padding
        plen -= std::min<size_t>(plen, buf[l - 1]);
    if ((size_t) l < off)
        return;
    if (!m.firstRtp.exchange(true))
        J("media_rx").str("what", "first_rtp").num("pt", pt).num("t_ms", msSince(g_start)).emit();
    m.rxRtp++;
    if (pt == 101 || !m.dec)
        return;
    static thread_local std::vector<float> pcm(5760 * 2);
    int frames = opus_decode_float(m.dec, buf + off, (opus_int32) plen, pcm.data(), 5760, 0);
    if (frames <= 0)
        return;
    if (listen.empty())
        return;
    std::lock_guard lk(m.heardMtx);
    for (int i = 0; i < frames; i++)
        m.heard.push_back(0.5f * (pcm[2 * i] + pcm[2 * i + 1]));
    if (m.heard.size() > (size_t) SAMPLE_RATE * 4)
        m.heard.erase(m.heard.begin(), m.heard.begin() + (m.heard.size() - SAMPLE_RATE * 4));
}

static void
sendRtcpSr(Media& m)
{
    uint8_t p[28];
    p[0] = 0x80;
    p[1] = 200;
    p[2] = 0;
    p[3] = 6;
    auto put32 = [&](int o, uint32_t v) {
        p[o] = v >> 24;
        p[o + 1] = v >> 16;
        p[o + 2] = v >> 8;
        p[o + 3] = v;
    };
    put32(4, m.ssrc);
    auto now = std::chrono::system_clock::now().time_since_epoch();
    uint64_t us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    uint64_t sec = us / 1000000 + 2208988800ULL;
    uint64_t frac = ((us % 1000000) << 32) / 1000000;
    put32(8, (uint32_t) sec);
    put32(12, (uint32_t) frac);
    put32(16, m.ts);
    put32(20, (uint32_t) m.txRtp.load());
    put32(24, (uint32_t) m.txBytes.load());
    // Plain RTCP, as jamid sends it (FFmpeg writes to the RTCP socket unencrypted).
    if (m.ice->send(2, p, sizeof p) > 0)
        m.txRtcp++;
}

static void
senderLoop(Media* mp, double toneHz, std::vector<double> listen)
{
    Media& m = *mp;
    std::vector<float> pcm(FRAME * 2);
    std::vector<uint8_t> pkt(1500);
    double phase = 0;
    const double amp = 0.5; // -6 dBFS
    auto next = Clock::now();
    auto nextReport = Clock::now() + 1s;
    auto nextRtcp = Clock::now() + 1s;
    auto nextStats = Clock::now() + 5s;
    bool marker = true;
    while (m.running) {
        for (int i = 0; i < FRAME; i++) {
            float v = toneHz > 0 ? (float) (amp * sin(phase)) : 0.f;
            phase += 2 * M_PI * toneHz / SAMPLE_RATE;
            if (phase > 2 * M_PI)
                phase -= 2 * M_PI;
            pcm[2 * i] = pcm[2 * i + 1] = v;
        }
        int n = opus_encode_float(m.enc, pcm.data(), FRAME, pkt.data() + 12, 1400);
        if (n > 0) {
            pkt[0] = 0x80;
            pkt[1] = (marker ? 0x80 : 0) | OPUS_PT;
            marker = false;
            pkt[2] = m.seq >> 8;
            pkt[3] = m.seq & 0xff;
            pkt[4] = m.ts >> 24;
            pkt[5] = m.ts >> 16;
            pkt[6] = m.ts >> 8;
            pkt[7] = m.ts;
            pkt[8] = m.ssrc >> 24;
            pkt[9] = m.ssrc >> 16;
            pkt[10] = m.ssrc >> 8;
            pkt[11] = m.ssrc;
            int len = 12 + n;
            if (srtp_protect(m.tx, pkt.data(), &len) == srtp_err_status_ok) {
                if (m.ice->send(1, pkt.data(), len) > 0) {
                    m.txRtp++;
                    m.txBytes += n;
                }
            }
            m.seq++;
        }
        m.ts += FRAME;
        auto now = Clock::now();
        if (now >= nextRtcp) {
            sendRtcpSr(m);
            nextRtcp = now + 5s;
        }
        if (now >= nextReport) {
            nextReport += 1s;
            if (!listen.empty()) {
                std::vector<float> x;
                {
                    std::lock_guard lk(m.heardMtx);
                    size_t keep = std::min<size_t>(m.heard.size(), SAMPLE_RATE);
                    x.assign(m.heard.end() - keep, m.heard.end());
                    m.heard.clear();
                }
                goertzelReport(x, listen);
            }
        }
        if (now >= nextStats) {
            nextStats += 5s;
            J("media_stats")
                .num("tx_rtp", (long long) m.txRtp.load())
                .num("tx_rtcp", (long long) m.txRtcp.load())
                .num("rx_rtp", (long long) m.rxRtp.load())
                .num("rx_rtcp", (long long) m.rxRtcp.load())
                .num("rx_srtp_errors", (long long) m.rxBad.load())
                .emit();
        }
        next += 20ms;
        std::this_thread::sleep_until(next);
    }
}

// ---------------------------------------------------------------------------------------------
// msg: channel (MessageChannelHandler::Message = msgpack map {id, t, c, req})

static void
sendChatMessage(const std::shared_ptr<dhtnet::ChannelSocket>& sock, const std::string& text)
{
    uint64_t id = randomU64() % 9007199254740992ULL + 1; // jamid: uniform {1, JAMI_ID_MAX_VAL}
    msgpack::sbuffer buffer(UINT16_MAX);
    msgpack::packer<msgpack::sbuffer> pk(&buffer);
    pk.pack_map(4);
    pk.pack(std::string("id"));
    pk.pack(id);
    pk.pack(std::string("t"));
    pk.pack(std::string("text/plain"));
    pk.pack(std::string("c"));
    pk.pack(text);
    pk.pack(std::string("req"));
    pk.pack_nil(); // std::unique_ptr<ConversationRequest> null -> nil
    std::error_code ec;
    auto n = sock->write(reinterpret_cast<const uint8_t*>(buffer.data()), buffer.size(), ec);
    J("message_sent")
        .unum("id", (unsigned long long) id)
        .str("type", "text/plain")
        .str("text", text)
        .boolean("ok", !ec && n == buffer.size())
        .emit();
}

static void
attachMsgReader(const std::shared_ptr<dhtnet::ChannelSocket>& sock)
{
    auto unpacker = std::make_shared<msgpack::unpacker>();
    sock->setOnRecv([unpacker, name = sock->name()](const uint8_t* data, size_t size) {
        unpacker->reserve_buffer(size);
        memcpy(unpacker->buffer(), data, size);
        unpacker->buffer_consumed(size);
        msgpack::object_handle oh;
        try {
            while (unpacker->next(oh)) {
                const auto& o = oh.get();
                J ev("message");
                ev.str("channel", name);
                if (o.type == msgpack::type::MAP) {
                    for (uint32_t i = 0; i < o.via.map.size; i++) {
                        auto& kv = o.via.map.ptr[i];
                        if (kv.key.type != msgpack::type::STR)
                            continue;
                        std::string k(kv.key.via.str.ptr, kv.key.via.str.size);
                        auto& v = kv.val;
                        if (k == "id" && v.type == msgpack::type::POSITIVE_INTEGER)
                            ev.unum("id", (unsigned long long) v.via.u64);
                        else if (k == "t" && (v.type == msgpack::type::STR || v.type == msgpack::type::BIN))
                            ev.str("type", std::string(v.via.str.ptr, v.via.str.size));
                        else if (k == "c" && (v.type == msgpack::type::STR || v.type == msgpack::type::BIN))
                            ev.str("text", std::string(v.via.str.ptr, v.via.str.size));
                        else if (k == "req")
                            ev.boolean("req", v.type != msgpack::type::NIL);
                    }
                } else {
                    std::ostringstream os;
                    os << o;
                    ev.str("raw", os.str());
                }
                ev.emit();
            }
        } catch (const std::exception& e) {
            J("message_error").str("what", e.what()).emit();
        }
        return size;
    });
}

// ---------------------------------------------------------------------------------------------
// The call

struct Call
{
    Options opt;
    dht::crypto::Identity id;
    std::string myAccount, myDevice;
    std::shared_ptr<dhtnet::ChannelSocket> sip;
    std::shared_ptr<dhtnet::ChannelSocket> msg;
    std::mutex mtx;
    std::condition_variable cv;
    std::deque<SipMsg> inbox;
    bool sipClosed {false};

    // dialog
    std::string callId, fromTag, toTag, remoteTarget, localAddr, remoteAddr, jamiCallId;
    unsigned cseq {0};
    std::string toHeader, fromHeader, contact;
    std::string sdpOffer;
    unsigned sdpVersion {0};

    std::unique_ptr<Media> mediaPtr {std::make_unique<Media>()};
    std::vector<std::unique_ptr<Media>> pastMedia; // kept alive: their ICE callbacks may still run
    Media& media() { return *mediaPtr; }
    std::string localIp;
    std::atomic_bool byeReceived {false};
    std::atomic_bool inDialog {false};
    std::mutex txMtx; // requests we originate in the dialog (CSeq order)
    std::atomic_bool said {false};

    // --say texts go on msg: once the call is up (or at once with --connect-only)
    void maybeSay()
    {
        std::shared_ptr<dhtnet::ChannelSocket> s;
        {
            std::lock_guard lk(mtx);
            s = msg;
        }
        if (!s || !(inDialog || opt.connectOnly) || said.exchange(true))
            return;
        for (auto& text : opt.say)
            sendChatMessage(s, text);
    }

    void writeSip(const std::string& s, const std::string& what)
    {
        std::error_code ec;
        auto n = sip->write(reinterpret_cast<const uint8_t*>(s.data()), s.size(), ec);
        if (ec || n != s.size())
            J("sip_write_error").str("what", what).str("error", ec.message()).emit();
        if (opt.verbose)
            fprintf(stderr, ">>> %s\n%s\n", what.c_str(), s.c_str());
    }

    std::string via() const
    {
        return "Via: SIP/2.0/TLS " + localAddr + ";rport;branch=z9hG4bKPj" + randomHex(32) + "\r\n";
    }

    std::string buildSdp()
    {
        auto ipType = localIp.find(':') != std::string::npos ? "IP6" : "IP4";
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        auto ntp = (unsigned long long) (std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count()
                                          + 2208988800ULL);
        int rtpPort = 0, rtcpPort = 0;
        std::vector<std::string> c1, c2;
        std::string ufrag, pwd;
        if (media().ice && media().initOk) {
            auto a = media().ice->getLocalAttributes();
            ufrag = a.ufrag;
            pwd = a.pwd;
            c1 = media().ice->getLocalCandidates(1);
            c2 = media().ice->getLocalCandidates(2);
            rtpPort = media().ice->getLocalAddress(1).getPort();
            rtcpPort = media().ice->getLocalAddress(2).getPort();
        }
        if (!rtpPort) {
            // jamid takes a port in its audio range and port+1 for RTCP
            rtpPort = 16384 + 2 * (int) (randomU64() % 8000);
            rtcpPort = rtpPort + 1;
        }
        std::ostringstream s;
        s << "v=0\r\n";
        s << "o=" << host << " " << ntp << " " << sdpVersion << " IN " << ipType << " " << localIp << "\r\n";
        s << "s=Call ID " << jamiCallId << "\r\n";
        s << "c=IN " << ipType << " " << localIp << "\r\n";
        s << "t=0 0\r\n";
        if (!ufrag.empty()) {
            s << "a=ice-ufrag:" << ufrag << "\r\n";
            s << "a=ice-pwd:" << pwd << "\r\n";
        }
        s << "m=audio " << rtpPort << " RTP/SAVP " << OPUS_PT << " 101\r\n";
        s << "a=rtpmap:" << OPUS_PT << " opus/48000/2\r\n";
        s << "a=rtpmap:101 telephone-event/8000\r\n";
        s << "a=fmtp:101 0-15\r\n";
        s << "a=rtcp:" << rtcpPort << " IN " << ipType << " " << localIp << "\r\n";
        s << "a=sendrecv\r\n";
        s << "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" << media().localKeyB64 << "\r\n";
        if (opt.label)
            s << "a=label:audio_0\r\n";
        for (auto& c : c1)
            s << "a=candidate:" << c << "\r\n";
        for (auto& c : c2)
            s << "a=candidate:" << c << "\r\n";
        return s.str();
    }

    void sendInvite()
    {
        cseq = 1 + (unsigned) (randomU64() % 30000);
        callId = randomHex(8) + "-" + randomHex(4) + "-" + randomHex(4) + "-" + randomHex(4) + "-" + randomHex(12);
        fromTag = randomHex(32);
        jamiCallId = std::to_string(randomU64() % 9007199254740992ULL);
        std::string dn = opt.displayName.empty() ? "" : "\"" + opt.displayName + "\" ";
        fromHeader = dn + "<sip:" + myAccount + "@ring.dht>;tag=" + fromTag;
        toHeader = "<sips:" + opt.to + "@" + remoteAddr + ";transport=tls>";
        contact = "\"" + opt.displayName + "\" <sips:" + myDevice + "@" + localAddr + ";transport=tls>";
        remoteTarget = "sips:" + remoteAddr + ";transport=tls";
        sdpOffer = buildSdp();
        std::ostringstream s;
        s << "INVITE " << remoteTarget << " SIP/2.0\r\n";
        s << via();
        s << "Max-Forwards: 70\r\n";
        s << "From: " << fromHeader << "\r\n";
        s << "To: " << toHeader << "\r\n";
        s << "Contact: " << contact << "\r\n";
        s << "Call-ID: " << callId << "\r\n";
        s << "CSeq: " << cseq << " INVITE\r\n";
        s << "Subject: Phone call\r\n";
        s << "Allow: PRACK, SUBSCRIBE, NOTIFY, REFER, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, OPTIONS, MESSAGE, "
             "PUBLISH\r\n";
        s << "Supported: replaces, 100rel\r\n";
        s << "User-Agent: " << opt.userAgent << "\r\n";
        s << "Content-Type: application/sdp\r\n";
        s << "Content-Length: " << sdpOffer.size() << "\r\n\r\n";
        s << sdpOffer;
        writeSip(s.str(), "INVITE");
        J("invite_sent").str("call_id", callId).num("sdp_bytes", (long long) sdpOffer.size()).emit();
    }

    void sendAck(const SipMsg& ok)
    {
        std::ostringstream s;
        auto target = remoteTarget;
        s << "ACK " << target << " SIP/2.0\r\n";
        s << via();
        s << "Max-Forwards: 70\r\n";
        s << "From: " << fromHeader << "\r\n";
        s << "To: " << ok.header("to") << "\r\n";
        s << "Call-ID: " << callId << "\r\n";
        s << "CSeq: " << ok.cseqNum() << " ACK\r\n";
        s << "Content-Length: 0\r\n\r\n";
        writeSip(s.str(), "ACK");
    }

    void sendBye()
    {
        std::lock_guard txLk(txMtx);
        std::ostringstream s;
        s << "BYE " << remoteTarget << " SIP/2.0\r\n";
        s << via();
        s << "Max-Forwards: 70\r\n";
        s << "From: " << fromHeader << "\r\n";
        s << "To: " << toHeader << "\r\n";
        s << "Call-ID: " << callId << "\r\n";
        s << "CSeq: " << ++cseq << " BYE\r\n";
        s << "User-Agent: " << opt.userAgent << "\r\n";
        s << "Content-Length: 0\r\n\r\n";
        writeSip(s.str(), "BYE");
    }

    void sendInfo(const std::string& body)
    {
        std::lock_guard txLk(txMtx);
        std::ostringstream s;
        s << "INFO " << remoteTarget << " SIP/2.0\r\n";
        s << via();
        s << "Max-Forwards: 70\r\n";
        s << "From: " << fromHeader << "\r\n";
        s << "To: " << toHeader << "\r\n";
        s << "Call-ID: " << callId << "\r\n";
        s << "CSeq: " << ++cseq << " INFO\r\n";
        s << "Content-Type: application/media_control+xml\r\n";
        s << "Content-Length: " << body.size() << "\r\n\r\n"
          << body;
        writeSip(s.str(), "INFO");
        J("sip_sent").str("method", "INFO").str("content_type", "application/media_control+xml").str("body", body).emit();
    }

    void sendMessage(const std::string& ctype, const std::string& body)
    {
        std::lock_guard txLk(txMtx);
        std::ostringstream s;
        s << "MESSAGE " << remoteTarget << " SIP/2.0\r\n";
        s << via();
        s << "Max-Forwards: 70\r\n";
        s << "From: " << fromHeader << "\r\n";
        s << "To: " << toHeader << "\r\n";
        s << "Call-ID: " << callId << "\r\n";
        s << "CSeq: " << ++cseq << " MESSAGE\r\n";
        s << "User-Agent: " << opt.userAgent << "\r\n";
        s << "Content-Type: " << ctype << "\r\n";
        s << "Content-Length: " << body.size() << "\r\n\r\n"
          << body;
        writeSip(s.str(), "MESSAGE");
        J("sip_sent").str("method", "MESSAGE").str("content_type", ctype).str("body", body).emit();
    }

    void respond(const SipMsg& req, int code, const std::string& reason, const std::string& body = {},
                 const std::string& ctype = {})
    {
        std::ostringstream s;
        s << "SIP/2.0 " << code << " " << reason << "\r\n";
        for (auto& v : req.all("via"))
            s << "Via: " << v << "\r\n";
        s << "Call-ID: " << req.header("call-id") << "\r\n";
        s << "From: " << req.header("from") << "\r\n";
        auto to = req.header("to");
        if (headerParam(to, "tag").empty())
            to += ";tag=" + (req.header("call-id") == callId ? fromTag : randomHex(32));
        s << "To: " << to << "\r\n";
        s << "CSeq: " << req.header("cseq") << "\r\n";
        if (req.method == "INVITE") {
            s << "Contact: " << contact << "\r\n";
            s << "Allow: PRACK, SUBSCRIBE, NOTIFY, REFER, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, OPTIONS, MESSAGE, "
                 "PUBLISH\r\n";
            s << "Supported: replaces, 100rel\r\n";
            s << "User-Agent: " << opt.userAgent << "\r\n";
        }
        if (!body.empty())
            s << "Content-Type: " << ctype << "\r\n";
        s << "Content-Length: " << body.size() << "\r\n\r\n" << body;
        writeSip(s.str(), std::to_string(code) + " for " + req.method);
    }

    // wait for the next SIP message (or nullopt on timeout/closed)
    std::optional<SipMsg> nextSip(Clock::time_point deadline)
    {
        std::unique_lock lk(mtx);
        cv.wait_until(lk, deadline, [&] { return !inbox.empty() || sipClosed; });
        if (inbox.empty())
            return std::nullopt;
        auto m = std::move(inbox.front());
        inbox.pop_front();
        return m;
    }

    // handle a request received in (or out of) the dialog
    void handleRequest(const SipMsg& r)
    {
        auto ctype = r.header("content-type");
        J ev("sip");
        ev.str("method", r.method).str("content_type", ctype).num("bytes", (long long) r.body.size());
        if (ctype.find("json") != std::string::npos || ctype.find("text") != std::string::npos
            || ctype.find("xml") != std::string::npos)
            ev.str("body", r.body);
        ev.emit();
        if (r.method == "ACK")
            return;
        if (r.method == "BYE") {
            respond(r, 200, "OK");
            byeReceived = true;
            return;
        }
        if (r.method == "INVITE") {
            // re-INVITE: answer with our current session (same ICE, same key)
            sdpVersion++;
            auto sdp = buildSdp();
            respond(r, 200, "OK", sdp, "application/sdp");
            return;
        }
        if (r.method == "REFER") {
            respond(r, 405, "Method Not Allowed");
            return;
        }
        respond(r, 200, "OK");
    }
};

static Call* g_call = nullptr;

// ---------------------------------------------------------------------------------------------

int
main(int argc, char** argv)
{
    g_start = Clock::now();
    Options opt = parseArgs(argc, argv);
    setvbuf(stdout, nullptr, _IOLBF, 0);

    Call call;
    g_call = &call;
    call.opt = opt;

    auto identity = loadOrCreateIdentity(opt.identity);
    call.id = identity;
    call.myAccount = identity.second->issuer->getId().toString();
    call.myDevice = identity.second->getId().toString();

    std::shared_ptr<dht::log::Logger> logger = opt.verbose ? dht::log::getStdLogger() : nullptr;
    fs::path cache = opt.identity / "cache";
    fs::create_directories(cache);

    // TLS sessions load DIR/cache/dhParams (valid 3 days) or generate them, which takes seconds;
    // an installed Jami has them cached. Make sure they are there before connecting.
    auto dhPath = cache / "dhParams";
    if (!opt.dhParams.empty() && !fs::exists(dhPath)) {
        std::error_code ec;
        fs::copy_file(opt.dhParams, dhPath, ec);
        if (!ec)
            fs::last_write_time(dhPath, fs::file_time_type::clock::now(), ec);
    }
    auto dhReady = std::async(std::launch::async, [dhPath] {
        auto t = Clock::now();
        bool cached = fs::exists(dhPath);
        auto p = dhtnet::tls::DhParams::loadDhParams(dhPath);
        J("dh_params").boolean("cached", cached).boolean("ok", (bool) p).num("ms", msSince(t)).emit();
        return (bool) p;
    });

    if (opt.prepare) {
        dhReady.wait();
        J("prepared").str("identity", opt.identity.string()).emit();
        fflush(stdout);
        _exit(0);
    }

    // asio context for dhtnet
    auto ioContext = std::make_shared<asio::io_context>();
    auto work = asio::make_work_guard(*ioContext);
    std::thread ioThread([ioContext] { ioContext->run(); });

    auto certStore = std::make_shared<dhtnet::tls::CertificateStore>(cache / "certStore", logger);

    // DHT, configured as JamiAccount::initDhtConfig / initDhtContext
    std::atomic_bool dhtConnected {false}, announced {false};
    auto runner = std::make_shared<dht::DhtRunner>();
    {
        dht::DhtRunner::Config config {};
        config.dht_config.node_config.network = 0;
        config.dht_config.node_config.maintain_storage = false;
        config.dht_config.id = identity;
        config.dht_config.cert_cache_all = true;
        config.threaded = true;
        config.peer_discovery = false;
        config.peer_publish = false;
        dht::DhtRunner::Context context {};
        context.logger = logger;
        context.rng = std::make_unique<std::mt19937_64>(dht::crypto::getSeededRandomEngine<std::mt19937_64>());
        context.certificateStore = [certStore](const dht::PkId& pk_id) {
            std::vector<std::shared_ptr<dht::crypto::Certificate>> ret;
            if (auto cert = certStore->getCertificate(pk_id.toString()))
                ret.emplace_back(std::move(cert));
            return ret;
        };
        context.statusChangedCallback = [&](dht::NodeStatus s4, dht::NodeStatus s6) {
            auto st = std::max(s4, s6);
            if (st == dht::NodeStatus::Connected && !dhtConnected.exchange(true))
                J("dht_connected").num("t_ms", msSince(g_start)).emit();
        };
        context.identityAnnouncedCb = [&](bool ok) {
            J("identity_announced").boolean("ok", ok).num("t_ms", msSince(g_start)).emit();
            if (ok)
                announced = true;
        };
        runner->run(0, config, std::move(context));
        auto colon = opt.bootstrap.rfind(':');
        if (colon == std::string::npos)
            runner->bootstrap(opt.bootstrap, "4222");
        else
            runner->bootstrap(opt.bootstrap.substr(0, colon), opt.bootstrap.substr(colon + 1));
    }

    // Connection manager, as JamiAccount::initConnectionManager (no TURN, no UPnP)
    // pjlib logs to stdout by default: keep stdout for JSON only.
    pj_log_set_log_func([](int, const char* data, int len) { fwrite(data, 1, len, stderr); });
    pj_log_set_level(opt.verbose ? 4 : 0);
    auto iceFactory = std::make_shared<dhtnet::IceTransportFactory>(logger);
    pj_log_set_log_func([](int, const char* data, int len) { fwrite(data, 1, len, stderr); });
    pj_log_set_level(opt.verbose ? 4 : 0);
    auto cmConfig = std::make_shared<dhtnet::ConnectionManager::Config>();
    cmConfig->ioContext = ioContext;
    cmConfig->dht = runner;
    cmConfig->certStore = certStore;
    cmConfig->id = identity;
    cmConfig->upnpEnabled = false;
    cmConfig->turnEnabled = false;
    cmConfig->cachePath = cache;
    cmConfig->logger = logger;
    cmConfig->factory = iceFactory;
    cmConfig->rng = std::make_unique<std::mt19937_64>(dht::crypto::getSeededRandomEngine<std::mt19937_64>());
    cmConfig->legacyMode = opt.legacyMode;
    auto cm = std::make_shared<dhtnet::ConnectionManager>(cmConfig);
    cm->dhtStarted();
    cm->onICERequest([](const dhtnet::DeviceId& dev) {
        J("ice_request").str("from_device", dev.toString()).emit();
        return true;
    });
    cm->onChannelRequest([](const std::shared_ptr<dht::crypto::Certificate>& cert, const std::string& name) {
        bool accept = name.rfind("msg:", 0) == 0; // MessageChannelHandler accepts any peer with an issuer
        J("channel_request").str("name", name).boolean("accepted", accept).emit();
        return accept && cert && cert->issuer;
    });
    cm->onConnectionReady([](const dhtnet::DeviceId& dev, const std::string& name, std::shared_ptr<dhtnet::ChannelSocket> s) {
        if (!s || s->isInitiator())
            return;
        J("channel_ready").str("name", name).str("device", dev.toString()).boolean("initiator", false).emit();
        if (name.rfind("msg:", 0) == 0)
            attachMsgReader(s);
    });

    std::atomic_bool linkUp {false};
    Clock::time_point tConnect;
    std::mutex sayMtx;
    cm->onNewDeviceConnection([&](const std::shared_ptr<dht::crypto::Certificate>& cert) {
        if (!cert || !cert->issuer)
            return;
        linkUp = true;
        auto deviceId = cert->getLongId();
        J("link_up")
            .str("device", deviceId.toString())
            .str("peer_account", cert->issuer->getId().toString())
            .num("ms", msSince(tConnect))
            .emit();
        // JamiAccount::onNewDeviceConnection: requestMessageConnection() then the service discovery
        // refresh, each a plain connectDevice() on the already established socket.
        dht::ThreadPool::io().run([&, deviceId] {
            auto msgName = "msg:" + deviceId.toString();
            auto tReq = Clock::now();
            cm->connectDevice(
                deviceId,
                msgName,
                [&, msgName, tReq](const std::shared_ptr<dhtnet::ChannelSocket>& s, const dhtnet::DeviceId&) {
                    J("channel").str("name", msgName).boolean("accepted", (bool) s).num("ms", msSince(tReq)).emit();
                    if (!s)
                        return;
                    attachMsgReader(s);
                    s->onShutdown([msgName](const std::error_code& ec) {
                        J("channel_closed").str("name", msgName).str("reason", ec.message()).emit();
                    });
                    {
                        std::lock_guard lk(call.mtx);
                        call.msg = s;
                    }
                    call.maybeSay();
                },
                false,
                false,
                "");
            auto tReq2 = Clock::now();
            cm->connectDevice(deviceId,
                              "svcdisc://query",
                              [tReq2](const std::shared_ptr<dhtnet::ChannelSocket>& s, const dhtnet::DeviceId&) {
                                  J("channel")
                                      .str("name", "svcdisc://query")
                                      .boolean("accepted", (bool) s)
                                      .num("ms", msSince(tReq2))
                                      .emit();
                                  if (!s)
                                      return;
                                  // SvcDiscQuery {v: 1, type: "query"}
                                  msgpack::sbuffer buf;
                                  msgpack::packer<msgpack::sbuffer> pk(&buf);
                                  pk.pack_map(2);
                                  pk.pack(std::string("v"));
                                  pk.pack((uint8_t) 1);
                                  pk.pack(std::string("type"));
                                  pk.pack(std::string("query"));
                                  std::error_code ec;
                                  s->write(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), ec);
                                  s->setOnRecv([](const uint8_t* d, size_t n) {
                                      J("svcdisc_response").num("bytes", (long long) n).emit();
                                      return n;
                                  });
                              });
        });
    });

    // Media ICE transport first (jamid creates it with the call, before the SIP connection)
    dhtnet::IpAddr localAddr = dhtnet::ip_utils::getLocalAddr(AF_INET);
    call.localIp = localAddr ? localAddr.toString() : "0.0.0.0";
    srtp_init();
    // A media ICE transport and SRTP key per call (SIPCall::createIceMediaTransport)
    auto newMedia = [&] {
        if (call.mediaPtr && call.mediaPtr->ice)
            call.pastMedia.push_back(std::move(call.mediaPtr));
        call.mediaPtr = std::make_unique<Media>();
        Media* mp = call.mediaPtr.get();
        {
            std::lock_guard lk(g_rngMtx);
            for (auto& b : mp->localKey)
                b = (uint8_t) (rng()() & 0xff);
            mp->ssrc = (uint32_t) rng()();
            mp->seq = (uint16_t) rng()();
            mp->ts = (uint32_t) rng()();
        }
        mp->localKeyB64 = b64encode(mp->localKey, 30);
        if (!opt.media)
            return;
        auto iceOpts = cm->getIceOptions();
        iceOpts.factory = iceFactory;
        iceOpts.master = true; // the caller is the controlling agent for media
        iceOpts.streamsCount = 1;
        iceOpts.compCountPerStream = 2;
        iceOpts.tcpEnable = false;
        iceOpts.upnpEnable = false;
        iceOpts.qosType = {dhtnet::QosType::VOICE, dhtnet::QosType::CONTROL};
        iceOpts.onInitDone = [mp](bool ok) {
            mp->initOk = ok;
            mp->initDone = true;
            mp->cv.notify_all();
        };
        iceOpts.onNegoDone = [mp](bool ok) {
            mp->negoOk = ok;
            mp->negoDone = true;
            mp->cv.notify_all();
        };
        mp->ice = iceFactory->createTransport("media", logger);
        mp->ice->initIceInstance(iceOpts);
    };
    newMedia();

    // stdin commands
    if (opt.stdinCommands) {
        std::thread([&] {
            std::string line;
            while (std::getline(std::cin, line)) {
                if (line.rfind("say ", 0) == 0) {
                    std::shared_ptr<dhtnet::ChannelSocket> s;
                    {
                        std::lock_guard lk(call.mtx);
                        s = call.msg;
                    }
                    if (s)
                        sendChatMessage(s, line.substr(4));
                    else
                        J("command_error").str("command", line).str("message", "no msg: channel").emit();
                } else if (line == "bye" || line == "quit") {
                    call.byeReceived = false;
                    call.opt.seconds = 0;
                    std::lock_guard lk(call.mtx);
                    call.sipClosed = call.sipClosed; // wake
                    call.cv.notify_all();
                } else if (line.rfind("sip ", 0) == 0) {
                    if (call.inDialog)
                        call.sendMessage("text/plain", line.substr(4));
                    else
                        J("command_error").str("command", line).str("message", "not in a call yet").emit();
                } else if (line == "info") {
                    if (!call.inDialog)
                        J("command_error").str("command", line).str("message", "not in a call yet").emit();
                    else
                        call.sendInfo("<?xml version=\"1.0\" encoding=\"utf-8\" ?><media_control><vc_primitive>"
                                      "<to_encoder><mute_state=0/></to_encoder></vc_primitive></media_control>");
                }
            }
        }).detach();
    }

    auto deadline = g_start + std::chrono::seconds(opt.timeout);

    // Wait for the DHT (jamid calls once registered) and our certificate announcement, so that the
    // callee can find our certificate at InfoHash::get(PkId).
    while (!dhtConnected && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    if (!dhtConnected)
        fail("dht", "not connected to the DHT via " + opt.bootstrap);
    if (opt.waitAnnounce) {
        auto until = std::min(deadline, Clock::now() + 15s);
        while (!announced && Clock::now() < until)
            std::this_thread::sleep_for(50ms);
        if (!announced)
            J("warning").str("message", "own certificate not announced yet").emit();
    }

    if (opt.compat137) {
        // as OpenDHT < 3.7.2 did: our certificate at SHA1(pk) too, for a 13.7 callee
        runner->put(identity.second->getId(),
                    dht::Value {dht::CERTIFICATE_TYPE, *identity.second, 1},
                    [](bool ok) { J("compat_cert_put").boolean("ok", ok).emit(); },
                    {},
                    true);
    }

    // Test helper: announce another identity's device, as AccountManager::startSync does.
    std::shared_ptr<dht::DhtRunner> announcer;
    if (!opt.announceFor.empty()) {
        auto load = [](const fs::path& p) {
            std::ifstream f(p, std::ios::binary);
            return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        };
        auto caKey = std::make_shared<dht::crypto::PrivateKey>(load(opt.announceFor / "CA" / "ca-server.pem"));
        auto caCrt = std::make_shared<dht::crypto::Certificate>(load(opt.announceFor / "CA" / "ca-server.crt"));
        auto devCrt = std::make_shared<dht::crypto::Certificate>(load(opt.announceFor / "id" / "id-server.crt"));
        announcer = std::make_shared<dht::DhtRunner>();
        dht::DhtRunner::Config config {};
        config.dht_config.node_config.network = 0;
        config.dht_config.id = {caKey, caCrt};
        config.threaded = true;
        announcer->run(0, config, {});
        auto colon = opt.bootstrap.rfind(':');
        announcer->bootstrap(opt.bootstrap.substr(0, colon), colon == std::string::npos ? "4222" : opt.bootstrap.substr(colon + 1));
        DeviceAnnouncement ann;
        ann.dev = devCrt->getId();
        ann.pk = devCrt->getSharedPublicKey();
        auto v = std::make_shared<dht::Value>(ann);
        v->priority = 1;
        std::mutex m;
        std::condition_variable cv;
        bool done = false, okPut = false;
        announcer->putSigned(
            caCrt->getId(),
            v,
            [&](bool ok) {
                std::lock_guard lk(m);
                done = true;
                okPut = ok;
                cv.notify_all();
            },
            true);
        std::unique_lock lk(m);
        cv.wait_until(lk, Clock::now() + 20s, [&] { return done; });
        J("announced_for")
            .str("account", caCrt->getId().toString())
            .str("device_long", devCrt->getLongId().toString())
            .boolean("ok", okPut)
            .emit();
    }

    // 1. DeviceAnnouncement values at the account hash (AccountManager::forEachDevice)
    dht::InfoHash accountHash(opt.to);
    auto tLookup = Clock::now();
    std::vector<std::shared_ptr<dht::crypto::PublicKey>> devices;
    std::vector<dht::InfoHash> deviceShortIds;
    std::set<dht::PkId> seen;
    int attempts = 0;
    auto lookupDeadline = std::min(deadline, tLookup + std::chrono::seconds(opt.lookupTimeout));
    int announcementsWithoutPk = 0;
    while (devices.empty() && Clock::now() < lookupDeadline) {
        attempts++;
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        runner->get<DeviceAnnouncement>(
            accountHash,
            [&](DeviceAnnouncement&& dev) {
                if (dev.from != accountHash)
                    return true;
                std::lock_guard lk(m);
                if (dev.pk) {
                    if (seen.emplace(dev.pk->getLongId()).second) {
                        devices.push_back(dev.pk);
                        deviceShortIds.push_back(dev.dev);
                    }
                } else
                    announcementsWithoutPk++;
                return true;
            },
            [&](bool) {
                std::lock_guard lk(m);
                done = true;
                cv.notify_all();
            });
        std::unique_lock lk(m);
        cv.wait_until(lk, lookupDeadline, [&] { return done; });
        lk.unlock();
        if (devices.empty())
            std::this_thread::sleep_for(1s);
    }
    J("dht_found")
        .num("devices", (long long) devices.size())
        .num("without_pk", announcementsWithoutPk)
        .num("attempts", attempts)
        .num("ms", msSince(tLookup))
        .emit();
    if (devices.empty())
        fail("lookup", "no device announcement (with pk) found at " + opt.to, 2);

    // 2. Certificate at InfoHash::get(PkId) (AccountManager::findCertificate(PkId))
    auto devicePk = devices.front();
    auto deviceLongId = devicePk->getLongId();
    std::shared_ptr<dht::crypto::Certificate> peerCert;
    {
        auto tCert = Clock::now();
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
        runner->findCertificate(deviceLongId, [&](const std::shared_ptr<dht::crypto::Certificate>& crt) {
            std::lock_guard lk(m);
            peerCert = crt;
            done = true;
            cv.notify_all();
        });
        std::unique_lock lk(m);
        cv.wait_until(lk, deadline, [&] { return done; });
        bool atSha1 = false;
        if (!peerCert && opt.compat137) {
            // 13.7: the certificate is at the device's SHA-1 key id, value type 8
            done = false;
            auto devId = deviceShortIds.front();
            lk.unlock();
            runner->get(
                devId,
                [&, devId](const std::vector<std::shared_ptr<dht::Value>>& vals) {
                    for (auto& v : vals) {
                        try {
                            auto c = std::make_shared<dht::crypto::Certificate>(v->data);
                            if (c->getPublicKey().getId() == devId) {
                                std::lock_guard lk2(m);
                                peerCert = c;
                                return false;
                            }
                        } catch (...) {
                        }
                    }
                    return true;
                },
                [&](bool) {
                    std::lock_guard lk2(m);
                    done = true;
                    cv.notify_all();
                },
                dht::Value::TypeFilter(dht::CERTIFICATE_TYPE));
            lk.lock();
            cv.wait_until(lk, deadline, [&] { return done; });
            atSha1 = (bool) peerCert;
        }
        J ev("cert_found");
        ev.boolean("at_sha1", atSha1);
        ev.str("device_long", deviceLongId.toString()).boolean("found", (bool) peerCert).num("ms", msSince(tCert));
        if (peerCert) {
            ev.str("device", peerCert->getId().toString());
            ev.num("chain", peerCert->issuer ? (peerCert->issuer->issuer ? 3 : 2) : 1);
            if (peerCert->issuer)
                ev.str("issuer", peerCert->issuer->getId().toString());
        }
        ev.emit();
        if (!peerCert)
            fail("certificate", "no certificate at InfoHash::get(PkId) for device " + deviceLongId.toString(), 3);
        certStore->pinCertificate(peerCert);
    }

    dhReady.wait();

    // 3. JamiAccount::requestSIPConnection
    auto stream = std::make_shared<SipStream>();
    auto openSip = [&](bool first) {
        {
            std::lock_guard lk(call.mtx);
            call.sip.reset();
            call.sipClosed = false;
        }
        auto tReq = Clock::now();
        if (first)
            tConnect = tReq;
        dhtnet::ConnectDeviceOptions options;
        options.noNewSocket = false;
        options.forceNewSocket = true;
        options.connType = "audioCall"; // call->hasVideo() ? "videoCall" : "audioCall"
        options.channelTimeout = 3s;
        options.uniqueName = true;
        cm->connectDevice(
            deviceLongId,
            "sip",
            [&](const std::shared_ptr<dhtnet::ChannelSocket>& socket, const dhtnet::DeviceId&) {
                std::lock_guard lk(call.mtx);
                if (!socket) {
                    call.sipClosed = true;
                    call.cv.notify_all();
                    return;
                }
                call.sip = socket;
                call.cv.notify_all();
            },
            options);
        {
            std::unique_lock lk(call.mtx);
            call.cv.wait_until(lk, first ? deadline : Clock::now() + std::chrono::seconds(opt.timeout), [&] {
                return call.sip || call.sipClosed;
            });
            if (!call.sip) {
                lk.unlock();
                if (linkUp)
                    J("channel").str("name", "sip").boolean("accepted", false).num("ms", msSince(tReq)).emit();
                fail("connect",
                     linkUp ? "sip channel declined or closed"
                            : "no connection (DHT request unanswered, ICE or TLS failed)",
                     4);
            }
        }
        auto sip = call.sip;
        call.localAddr = sip->getLocalAddress().toString(true, true);
        call.remoteAddr = sip->getRemoteAddress().toString(true, true);
        if (first)
            J("connected")
                .num("ms", msSince(tConnect))
                .num("ms_since_lookup", msSince(tLookup))
                .str("local", call.localAddr)
                .str("remote", call.remoteAddr)
                .emit();
        J("channel").str("name", "sip").boolean("accepted", true).num("ms", msSince(tReq)).emit();
        *stream = SipStream();
        sip->setOnRecv([&, stream](const uint8_t* d, size_t n) {
            stream->feed(d, n);
            while (auto m = stream->next()) {
                if (opt.verbose)
                    fprintf(stderr, "<<< %s\n", m->raw.c_str());
                std::lock_guard lk(call.mtx);
                call.inbox.push_back(std::move(*m));
                call.cv.notify_all();
            }
            return n;
        });
        sip->onShutdown([&, w = std::weak_ptr(sip)](const std::error_code& ec) {
            J("channel_closed").str("name", "sip").str("reason", ec.message()).emit();
            std::lock_guard lk(call.mtx);
            if (call.sip == w.lock())
                call.sipClosed = true;
            call.cv.notify_all();
        });
    };
    openSip(true);

  int rc = 0;
  for (int callNo = 1; callNo <= opt.calls; callNo++) {
    if (callNo > 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds((int) (opt.pause * 1000)));
        J("call_start").num("n", callNo).boolean("sip_channel_open", !call.sipClosed && call.sip).emit();
        newMedia();
        call.byeReceived = false;
        call.inDialog = false;
        {
            std::lock_guard lk(call.mtx);
            call.inbox.clear();
        }
        // JamiAccount::startOutgoingCall: an open sip channel to the device is used as is;
        // without one, requestSIPConnection asks the open link for a new one (3 s timeout).
        if (call.sipClosed || !call.sip)
            openSip(false);
        tConnect = Clock::now();
    }
    // Media ICE must be initialized before the offer (SIPCall::addLocalIceAttributes waits for it)
    if (opt.media) {
        std::unique_lock lk(call.media().mtx);
        call.media().cv.wait_until(lk, Clock::now() + 35s, [&] { return call.media().initDone.load(); });
        if (!call.media().initOk)
            J("warning").str("message", "media ICE not initialized; offering without ICE").emit();
    }

    if (opt.connectOnly) {
        // give the msg:/svcdisc channels time to be answered, and --say to go out
        auto until = Clock::now() + std::chrono::seconds(std::max(3, opt.seconds));
        while (Clock::now() < until && !call.sipClosed) {
            auto m = call.nextSip(std::min(until, Clock::now() + 200ms));
            if (m && m->request)
                call.handleRequest(*m);
        }
        J("ended").str("by", "connect_only").emit();
        fflush(stdout);
        _exit(0);
    }

    // 4. INVITE
    call.sendInvite();
    SipMsg ok;
    bool answered = false;
    auto inviteDeadline = Clock::now() + std::chrono::seconds(opt.inviteTimeout);
    while (!answered) {
        auto m = call.nextSip(inviteDeadline);
        if (!m) {
            if (call.sipClosed)
                fail("invite", "sip channel closed before the answer", 5);
            fail("invite", "no final answer to the INVITE", 5);
        }
        if (m->request) {
            call.handleRequest(*m);
            continue;
        }
        if (m->cseqMethod() != "INVITE") {
            J("sip_response").num("status", m->status).str("method", m->cseqMethod()).emit();
            continue;
        }
        J("response").num("status", m->status).str("reason", m->reason).num("ms", msSince(tConnect)).emit();
        if (m->status < 200)
            continue;
        if (m->status >= 300) {
            call.sendAck(*m); // ACK for a non-2xx final response (same branch would be exact; good enough)
            fail("invite", "call refused: " + std::to_string(m->status) + " " + m->reason, 6);
        }
        ok = *m;
        answered = true;
    }
    call.toHeader = ok.header("to");
    call.toTag = headerParam(call.toHeader, "tag");
    auto remoteContact = uriOf(ok.header("contact"));
    if (!remoteContact.empty())
        call.remoteTarget = remoteContact;
    call.sendAck(ok);
    auto answer = parseSdp(ok.body);
    J("answered")
        .num("status", 200)
        .num("call", callNo)
        .num("ms", msSince(tConnect))
        .num("ms_since_lookup", msSince(tLookup))
        .str("user_agent", ok.header("user-agent"))
        .str("allow", ok.header("allow"))
        .str("contact", ok.header("contact"))
        .str("sdp_proto", answer.proto)
        .num("sdp_audio_port", answer.audioPort)
        .str("crypto", answer.cryptoSuite)
        .num("candidates", (long long) answer.candidates.size())
        .boolean("ice", !answer.ufrag.empty())
        .emit();

    call.inDialog = true;
    call.maybeSay();
    for (auto& text : opt.saySip)
        call.sendMessage("text/plain", text);

    // 5. Media
    if (opt.media && call.media().initOk) {
        auto& md = call.media();
        if (answer.cryptoKey.size() != 30 || answer.cryptoSuite != "AES_CM_128_HMAC_SHA1_80")
            J("media_error").str("what", "answer has no usable AES_CM_128_HMAC_SHA1_80 key").emit();
        else if (answer.ufrag.empty())
            J("media_error").str("what", "answer has no ICE credentials").emit();
        else {
            // SRTP: we encrypt with our key, decrypt with the callee's
            srtp_policy_t p;
            memset(&p, 0, sizeof p);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
            p.ssrc.type = ssrc_any_outbound;
            p.key = md.localKey;
            p.window_size = 1024;
            p.next = nullptr;
            srtp_create(&md.tx, &p);
            srtp_policy_t q;
            memset(&q, 0, sizeof q);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&q.rtp);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&q.rtcp);
            q.ssrc.type = ssrc_any_inbound;
            std::vector<uint8_t> rkey = answer.cryptoKey;
            q.key = rkey.data();
            q.window_size = 1024;
            q.next = nullptr;
            srtp_create(&md.rx, &q);
            int err = 0;
            md.enc = opus_encoder_create(SAMPLE_RATE, 2, OPUS_APPLICATION_AUDIO, &err);
            md.dec = opus_decoder_create(SAMPLE_RATE, 2, &err);

            std::vector<dhtnet::IceCandidate> cands;
            for (auto& line : answer.candidates) {
                dhtnet::IceCandidate c;
                if (md.ice->parseIceAttributeLine(0, line, c))
                    cands.push_back(c);
            }
            auto listen = opt.listenFor;
            md.ice->setOnRecv(1, [&md, listen](unsigned char* buf, size_t len) -> ssize_t {
                onRtp(md, listen, buf, len);
                return len;
            });
            md.ice->setOnRecv(2, [&md](unsigned char* buf, size_t len) -> ssize_t {
                if (!md.firstRtcp.exchange(true)) {
                    int pt = len > 1 ? buf[1] : 0;
                    J("media_rx").str("what", "first_rtcp").num("pt", pt).num("t_ms", msSince(g_start)).emit();
                }
                md.rxRtcp++;
                return len;
            });
            auto tIce = Clock::now();
            J("media_ice_start").num("remote_candidates", (long long) cands.size()).emit();
            if (!md.ice->startIce({answer.ufrag, answer.pwd}, std::move(cands)))
                J("media_error").str("what", "ICE start failed").emit();
            else {
                std::unique_lock lk(md.mtx);
                md.cv.wait_until(lk, Clock::now() + 15s, [&] { return md.negoDone.load(); });
                lk.unlock();
                J("media_ice")
                    .boolean("ok", md.negoOk)
                    .num("ms", msSince(tIce))
                    .str("local_rtp", md.ice->getLocalAddress(1).toString(true))
                    .str("remote_rtp", md.ice->getRemoteAddress(1).toString(true))
                    .str("remote_rtcp", md.ice->getRemoteAddress(2).toString(true))
                    .emit();
                if (md.negoOk) {
                    md.running = true;
                    md.sender = std::thread(senderLoop, &md, opt.tone, opt.listenFor);
                }
            }
        }
    }

    // 6. Stay in the call
    auto endAt = Clock::now() + std::chrono::seconds(opt.seconds);
    while (Clock::now() < endAt && !call.byeReceived) {
        auto m = call.nextSip(std::min(endAt, Clock::now() + 200ms));
        if (m) {
            if (m->request)
                call.handleRequest(*m);
            else
                J("sip_response").num("status", m->status).str("method", m->cseqMethod()).emit();
            continue;
        }
        if (call.sipClosed)
            break;
        if (call.opt.seconds == 0)
            break;
    }

    if (call.media().running) {
        call.media().running = false;
        if (call.media().sender.joinable())
            call.media().sender.join();
        J("media_stats")
            .num("tx_rtp", (long long) call.media().txRtp.load())
            .num("tx_rtcp", (long long) call.media().txRtcp.load())
            .num("rx_rtp", (long long) call.media().rxRtp.load())
            .num("rx_rtcp", (long long) call.media().rxRtcp.load())
            .num("rx_srtp_errors", (long long) call.media().rxBad.load())
            .emit();
    }

    if (call.byeReceived) {
        J("ended").str("by", "callee").num("call", callNo).emit();
    } else if (call.sipClosed) {
        J("ended").str("by", "channel_closed").num("call", callNo).emit();
        rc = 7;
    } else {
        call.sendBye();
        auto byeDeadline = Clock::now() + 3s;
        int status = 0;
        while (Clock::now() < byeDeadline) {
            auto m = call.nextSip(byeDeadline);
            if (!m)
                break;
            if (m->request) {
                call.handleRequest(*m);
                continue;
            }
            if (m->cseqMethod() == "BYE") {
                status = m->status;
                break;
            }
        }
        J("bye").num("status", status).emit();
        J("ended").str("by", "caller").num("call", callNo).emit();
        if (opt.closeSip && callNo < opt.calls) {
            std::shared_ptr<dhtnet::ChannelSocket> s;
            {
                std::lock_guard lk(call.mtx);
                s = call.sip;
                call.sipClosed = true;
            }
            if (s)
                s->shutdown();
        }
    }
    if (rc != 0)
        break;
  }
    std::this_thread::sleep_for(200ms);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}
