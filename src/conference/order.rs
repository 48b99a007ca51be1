//! confOrder, sans-IO: the moderation orders Jami participants send to the host as
//! `application/confOrder+json` (jami-conference.md §1.19), parsed once into [`Order`]s.
//!
//! Both versions are taken. v0 has flat keys (`layout`, `activeParticipant`,
//! `muteParticipant` + `muteState`, `hangupParticipant`, `handRaised` + `handState`, with
//! "true"/"false" strings). v1 (`"version": 1`) has one object per account URI with its
//! `devices`, each with `raiseHand`, `hangup` and `medias` (`muteAudio`, `active`). The 13.x
//! quirks are tolerated: the device's `medias`/`raiseHand`/`hangup` copied at the account
//! level, the integer `version` key among the accounts, and URIs with or without
//! `@ring.dht` or a `jami:` prefix.

use serde_json::{Map, Value};

use crate::identity::AccountId;

/// The MIME type of confOrder messages.
pub const CONTENT_TYPE: &str = "application/confOrder+json";

/// Largest order body we read.
const MAX_ORDER: usize = 16 * 1024;

/// Whom an order is about: an account, and possibly one of its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The account.
    pub account: AccountId,
    /// One device of it (`None`: all of its devices).
    pub device: Option<String>,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Switch to layout 0 (grid), 1 (one big with small) or 2 (one big).
    Layout(u8),
    /// Make a participant the active (big) one, or no one.
    Active(Option<Target>),
    /// Mute or unmute a participant's audio.
    MuteAudio {
        /// Who.
        target: Target,
        /// Muted.
        muted: bool,
    },
    /// Hang up a participant (or one of its devices).
    Hangup(Target),
    /// Raise or lower a participant's hand.
    RaiseHand {
        /// Whose.
        target: Target,
        /// Raised.
        raised: bool,
    },
}

/// Why an order message was refused (the sender's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Not JSON, or not an object.
    #[error("not a JSON object: {0}")]
    Syntax(String),
    /// Bigger than we read.
    #[error("{0} bytes")]
    TooLarge(usize),
}

/// The orders in a confOrder body. Entries that are not understood are skipped; a body with
/// none at all gives an empty list.
pub fn parse(body: &[u8]) -> Result<Vec<Order>, OrderError> {
    if body.len() > MAX_ORDER {
        return Err(OrderError::TooLarge(body.len()));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|error| OrderError::Syntax(error.to_string()))?;
    let Value::Object(root) = value else {
        return Err(OrderError::Syntax("not an object".into()));
    };
    let mut orders = Vec::new();
    if let Some(layout) = root.get("layout").and_then(int).and_then(|l| u8::try_from(l).ok())
        && layout <= 2
    {
        orders.push(Order::Layout(layout));
    }
    if root.get("version").and_then(int).is_some_and(|v| v >= 1) {
        parse_v1(&root, &mut orders);
    } else {
        parse_v0(&root, &mut orders);
    }
    Ok(orders)
}

fn parse_v0(root: &Map<String, Value>, orders: &mut Vec<Order>) {
    let target = |key: &str| root.get(key).and_then(Value::as_str).and_then(account);
    if let Some(active) = root.get("activeParticipant").and_then(Value::as_str) {
        orders.push(Order::Active(account(active).map(|account| Target { account, device: None })));
    }
    if let (Some(account), Some(muted)) =
        (target("muteParticipant"), root.get("muteState").and_then(flag))
    {
        orders.push(Order::MuteAudio { target: Target { account, device: None }, muted });
    }
    if let Some(account) = target("hangupParticipant") {
        orders.push(Order::Hangup(Target { account, device: None }));
    }
    if let (Some(account), Some(raised)) =
        (target("handRaised"), root.get("handState").and_then(flag))
    {
        orders.push(Order::RaiseHand { target: Target { account, device: None }, raised });
    }
}

fn parse_v1(root: &Map<String, Value>, orders: &mut Vec<Order>) {
    for (key, entry) in root {
        let (Some(account), Value::Object(entry)) = (account(key), entry) else { continue };
        let devices = entry.get("devices").and_then(Value::as_object);
        match devices {
            Some(devices) if !devices.is_empty() => {
                for (device, body) in devices {
                    let Value::Object(body) = body else { continue };
                    let target = Target { account, device: Some(device.clone()) };
                    // 13.x puts the device's medias at the account level as well.
                    let medias = body.get("medias").or_else(|| entry.get("medias"));
                    device_orders(&target, body, medias, orders);
                }
            }
            _ => {
                let target = Target { account, device: None };
                device_orders(&target, entry, entry.get("medias"), orders);
            }
        }
    }
}

/// The orders in one device's (or account's) object.
fn device_orders(
    target: &Target,
    body: &Map<String, Value>,
    medias: Option<&Value>,
    orders: &mut Vec<Order>,
) {
    if let Some(raised) = body.get("raiseHand").and_then(flag) {
        orders.push(Order::RaiseHand { target: target.clone(), raised });
    }
    if body.contains_key("hangup") && body.get("hangup").and_then(flag) != Some(false) {
        orders.push(Order::Hangup(target.clone()));
    }
    for media in medias.and_then(Value::as_object).into_iter().flat_map(|m| m.values()) {
        let Value::Object(media) = media else { continue };
        if let Some(muted) = media.get("muteAudio").and_then(flag) {
            orders.push(Order::MuteAudio { target: target.clone(), muted });
        }
        if let Some(active) = media.get("active").and_then(flag) {
            orders.push(Order::Active(active.then(|| target.clone())));
        }
    }
}

/// An account id from a URI as Jami writes it: `<hex>`, `<hex>@ring.dht`, `jami:<hex>`.
fn account(uri: &str) -> Option<AccountId> {
    let uri = uri.trim();
    let uri = uri.strip_prefix("jami:").or_else(|| uri.strip_prefix("ring:")).unwrap_or(uri);
    let uri = uri.split('@').next()?;
    uri.parse().ok()
}

/// A boolean as Jami writes it: `true`, `"true"`, `1` or `"1"`.
fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// An integer, or an integer in a string.
fn int(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

#[cfg(test)]
mod tests;
