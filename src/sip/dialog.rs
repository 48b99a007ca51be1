//! The room's side of an answered call's dialog (RFC 3261 §12): what it needs to send
//! requests of its own in the dialog, such as the INFO that asks the caller for a video
//! keyframe (jami-protocol.md §6.7).

use std::net::SocketAddr;

use sipx_sip::{HeaderName, Method, Request, RequestBuilder, Uri};

use super::uas::{MAX_MESSAGE, USER_AGENT};

/// The body of a keyframe request, as Jami writes and parses it.
pub const KEYFRAME_REQUEST: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\
    <media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder>\
    </vc_primitive></media_control>";

/// The Content-Type of media control INFOs.
pub const MEDIA_CONTROL: &str = "application/media_control+xml";

/// A dialog the room answered.
#[derive(Debug, Clone)]
pub struct Dialog {
    call_id: String,
    /// Our From: the INVITE's To, with our tag.
    local: String,
    /// Our To: the INVITE's From.
    remote: String,
    /// Where requests go: the caller's Contact.
    target: Uri,
    /// Our CSeq, independent of the caller's.
    cseq: u32,
}

impl Dialog {
    /// The dialog of an INVITE answered with `to_tag`; `None` when the INVITE lacks what a
    /// dialog needs (From with a tag, To, Call-ID, a usable Contact or From URI).
    pub fn answered(invite: &Request, to_tag: &str) -> Option<Self> {
        let header = |name: &HeaderName| {
            invite
                .headers
                .value(name)
                .map(|value| String::from_utf8_lossy(&value).trim().to_owned())
        };
        let remote = header(&HeaderName::From).filter(|from| from.contains(";tag="))?;
        let to = header(&HeaderName::To)?;
        let local = if to.contains(";tag=") { to } else { format!("{to};tag={to_tag}") };
        let call_id = header(&HeaderName::CallId)?;
        let target = header(&HeaderName::Contact)
            .and_then(|contact| uri_of(&contact))
            .or_else(|| uri_of(&remote))?;
        Some(Self { call_id, local, remote, target, cseq: 1 })
    }

    /// The dialog after a re-INVITE answered in it: its target as the re-INVITE refreshed
    /// it, and our CSeq going on from `self`'s (a caller refuses an in-dialog request whose
    /// CSeq is not above the last one it took, so a hang-up after a re-INVITE would be lost).
    pub fn refreshed(&self, reinvite: &Request, to_tag: &str) -> Option<Self> {
        let mut refreshed = Self::answered(reinvite, to_tag)?;
        refreshed.cseq = refreshed.cseq.max(self.cseq);
        Some(refreshed)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// A new request in the dialog, sent from `local` (our Via), with a body of
    /// `content_type` (none when `body` is empty).
    pub fn request(
        &mut self,
        method: Method,
        local: SocketAddr,
        content_type: &str,
        body: &str,
    ) -> Option<Vec<u8>> {
        let branch = format!("z9hG4bK{:016x}", rand::random::<u64>());
        let cseq = self.cseq;
        self.cseq += 1;
        let request = RequestBuilder::new(method.clone(), self.target.clone())
            .header(HeaderName::Via, format!("SIP/2.0/TLS {local};branch={branch};rport"))
            .ok()?
            .max_forwards(70)
            .header(HeaderName::From, self.local.clone())
            .ok()?
            .header(HeaderName::To, self.remote.clone())
            .ok()?
            .header(HeaderName::CallId, self.call_id.clone())
            .ok()?
            .cseq(cseq, &method)
            .ok()?
            .header(HeaderName::UserAgent, USER_AGENT)
            .ok()?;
        let request = if body.is_empty() {
            request.build()
        } else {
            request
                .header(HeaderName::ContentType, content_type.to_owned())
                .ok()?
                .body(body.as_bytes().to_vec())
                .build()
        };
        let mut bytes = Vec::new();
        request.write_to(&mut bytes);
        (bytes.len() < MAX_MESSAGE).then_some(bytes)
    }
}

/// What a caller's `application/media_control+xml` INFO says (Jami matches substrings, and
/// so do we).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaControl {
    /// `picture_fast_update`: send a keyframe.
    KeyframeRequest,
    /// `mute_state=1` or `0`: the caller muted or unmuted its microphone.
    MuteState(bool),
    /// `voice_activity=1` or `0`.
    VoiceActivity(bool),
}

impl MediaControl {
    /// The control in an INFO body, if any.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let body = std::str::from_utf8(body).ok()?;
        if body.contains("picture_fast_update") {
            return Some(Self::KeyframeRequest);
        }
        let flag = |name: &str| {
            let at = body.find(name)? + name.len();
            match body[at..].chars().next()? {
                '1' => Some(true),
                '0' => Some(false),
                _ => None,
            }
        };
        flag("mute_state=")
            .map(Self::MuteState)
            .or_else(|| flag("voice_activity=").map(Self::VoiceActivity))
    }
}

/// The URI inside a name-addr (`"x" <sips:...>;tag=...`) or a bare addr-spec.
fn uri_of(value: &str) -> Option<Uri> {
    let inner = match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next()?,
    };
    Uri::parse(bytes::Bytes::copy_from_slice(inner.trim().as_bytes())).ok()
}

#[cfg(test)]
mod tests;
