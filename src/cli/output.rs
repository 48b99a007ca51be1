//! How rooms are printed: JSON for programs, aligned text for people.

use std::io::{self, Write};

use rdv::identity::{AccountId, DeviceId, DeviceLongId};
use rdv::room::{Admission, Room, RoomName, RoomPolicy};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A room as `--json` prints it.
#[derive(Serialize)]
pub(super) struct RoomView<'a> {
    name: &'a RoomName,
    jami_id: AccountId,
    device_id: DeviceId,
    device_long_id: DeviceLongId,
    /// Device, account and CA certificates, in that order.
    certificate_chain_pem: String,
    created_at: String,
    policy: &'a RoomPolicy,
}

impl<'a> RoomView<'a> {
    pub(super) fn new(room: &'a Room) -> Self {
        Self {
            name: &room.name,
            jami_id: room.identity.account_id(),
            device_id: room.identity.device_id(),
            device_long_id: room.identity.device_long_id(),
            certificate_chain_pem: room.identity.certificate_chain_pem(),
            created_at: rfc3339(room.created_at),
            policy: &room.policy,
        }
    }
}

/// Writes `value` as pretty JSON and a newline to standard output.
pub(super) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

/// Writes a room's details for a person.
pub(super) fn print_room(room: &Room) -> anyhow::Result<()> {
    let identity = &room.identity;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "name:            {}", room.name)?;
    writeln!(stdout, "jami id:         {}", identity.account_id())?;
    writeln!(stdout, "device id:       {}", identity.device_id())?;
    writeln!(stdout, "device long id:  {}", identity.device_long_id())?;
    writeln!(stdout, "created:         {}", rfc3339(room.created_at))?;
    writeln!(stdout, "policy:          {}", describe_policy(&room.policy))?;
    Ok(())
}

/// Writes one line per room for a person.
pub(super) fn print_room_table(rooms: &[Room]) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    if rooms.is_empty() {
        writeln!(stdout, "no rooms yet: create one with `rdv room create NAME`")?;
        return Ok(());
    }
    let width = rooms.iter().map(|room| room.name.as_str().len()).max().unwrap_or(0).max(4);
    writeln!(stdout, "{:width$}  {:40}  CREATED", "NAME", "JAMI ID")?;
    for room in rooms {
        let (name, jami_id) = (room.name.as_str(), room.identity.account_id().to_string());
        writeln!(stdout, "{name:width$}  {jami_id:40}  {}", rfc3339(room.created_at))?;
    }
    Ok(())
}

fn describe_policy(policy: &RoomPolicy) -> String {
    let mut parts = vec![match policy.admission {
        Admission::Open => "open to anyone".to_owned(),
        Admission::AllowList => "allow-list only".to_owned(),
    }];
    parts.push(if policy.locked { "locked" } else { "unlocked" }.to_owned());
    if policy.lobby {
        parts.push("lobby".to_owned());
    }
    parts.push(match policy.max_participants {
        Some(max) => format!("at most {max} participants"),
        None => "no participant limit".to_owned(),
    });
    if policy.all_moderators {
        parts.push("everyone moderates".to_owned());
    }
    if policy.active_speaker {
        parts.push("active speaker".to_owned());
    }
    parts.join(", ")
}

fn rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_seconds.to_string())
}
