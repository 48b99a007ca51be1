//! `rdv room create|list|show|delete|admission|ban|unban|allow|disallow`.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rdv::clock::unix_now;
use rdv::config::Config;
use rdv::data_dir::DataDir;
use rdv::identity::{AccountId, RoomIdentity};
use rdv::room::{AccountRole, Admission, Layout, RoomName, RoomPolicy};
use rdv::store::{Store, StoreError};

use super::output::{RoomView, print_json, print_room, print_room_table};

#[derive(Debug, Subcommand)]
pub(super) enum RoomCommand {
    /// Create a room with a new Jami identity (three RSA-4096 keys: takes a few seconds).
    Create {
        /// Room name: letters, digits, '.', '_' or '-', up to 64 characters.
        name: String,
        /// Print the room as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the rooms.
    List {
        /// Print the rooms as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a room, with its Jami ID.
    Show {
        /// Room name.
        name: String,
        /// Print the room as JSON, with its certificate chain.
        #[arg(long)]
        json: bool,
    },
    /// Set who may call a room: anyone not banned (open), or only its allow-list.
    Admission {
        /// Room name.
        name: String,
        /// open or allow-list.
        #[arg(value_enum)]
        admission: AdmissionArg,
    },
    /// Ban a Jami account from a room: its calls get no answer.
    Ban {
        /// Room name.
        name: String,
        /// The caller's Jami ID (40 hex digits).
        account: String,
    },
    /// Lift a ban.
    Unban {
        /// Room name.
        name: String,
        /// The Jami ID.
        account: String,
    },
    /// Put a Jami account on a room's allow-list.
    Allow {
        /// Room name.
        name: String,
        /// The Jami ID.
        account: String,
    },
    /// Take a Jami account off a room's allow-list.
    Disallow {
        /// Room name.
        name: String,
        /// The Jami ID.
        account: String,
    },
    /// Make a Jami account a moderator of a room, or no longer one. Moderators may order
    /// others from their Jami client (layout, mute, hang up) and are always admitted.
    Moderator {
        /// add or remove.
        #[arg(value_enum)]
        action: ModeratorAction,
        /// Room name.
        name: String,
        /// The Jami ID.
        account: String,
    },
    /// Change a room's policy; what is not given stays as it is. A running server applies it
    /// to the next call.
    Policy {
        /// Room name.
        name: String,
        /// Lock (no new participants but moderators) or unlock the room.
        #[arg(long, value_enum)]
        lock: Option<Switch>,
        /// Most participants at once (moderators always get in); 0 for no limit.
        #[arg(long)]
        max_participants: Option<u32>,
        /// Make everyone in the room a moderator, or only the listed ones.
        #[arg(long, value_enum)]
        all_moderators: Option<Switch>,
        /// Lobby mode: new callers (but moderators and the allow-list) wait unheard and unseen
        /// until a moderator lets them in with `rdv room allow`.
        #[arg(long, value_enum)]
        lobby: Option<Switch>,
        /// Let the big tile follow whoever speaks.
        #[arg(long, value_enum)]
        active_speaker: Option<Switch>,
        /// The layout a conference starts with.
        #[arg(long, value_enum)]
        layout: Option<LayoutArg>,
        /// Print the room's policy as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a room and its keys. Its Jami ID is gone for good.
    Delete {
        /// Room name.
        name: String,
        /// Print what was deleted as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// `rdv room policy --layout` values (Jami's layouts).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum LayoutArg {
    /// Everyone in equal tiles.
    Grid,
    /// The active participant big, the others small.
    OneBigWithSmall,
    /// Only the active participant.
    OneBig,
}

/// `rdv room moderator` actions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum ModeratorAction {
    /// Make the account a moderator.
    Add,
    /// Take the role away.
    Remove,
}

/// `rdv room admission` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum AdmissionArg {
    /// Anyone not banned.
    Open,
    /// Only the allow-list (and moderators).
    AllowList,
}

impl RoomCommand {
    pub(super) async fn execute(self, config: &Config) -> anyhow::Result<()> {
        match self {
            Self::Create { name, json } => create(config, &name.parse()?, json).await,
            Self::List { json } => {
                let store = open_existing(config).await?;
                let rooms = store.rooms().await?;
                if json {
                    print_json(&rooms.iter().map(RoomView::new).collect::<Vec<_>>())
                } else {
                    print_room_table(&rooms)
                }
            }
            Self::Show { name, json } => {
                let name: RoomName = name.parse()?;
                let store = open_existing(config).await?;
                let Some(room) = store.room(&name).await? else {
                    bail!("no room named \"{name}\"");
                };
                if json { print_json(&RoomView::new(&room)) } else { print_room(&room) }
            }
            Self::Admission { name, admission } => {
                let name: RoomName = name.parse()?;
                let admission = match admission {
                    AdmissionArg::Open => Admission::Open,
                    AdmissionArg::AllowList => Admission::AllowList,
                };
                let store = open_existing(config).await?;
                if !store.set_admission(&name, admission, unix_now()).await? {
                    bail!("no room named \"{name}\"");
                }
                println!("room {name}: admission {}", admission_label(admission));
                Ok(())
            }
            Self::Ban { name, account } => {
                grant(config, &name, &account, AccountRole::Banned).await
            }
            Self::Allow { name, account } => {
                grant(config, &name, &account, AccountRole::Allowed).await
            }
            Self::Unban { name, account } => {
                revoke(config, &name, &account, AccountRole::Banned).await
            }
            Self::Disallow { name, account } => {
                revoke(config, &name, &account, AccountRole::Allowed).await
            }
            Self::Policy {
                name,
                lock,
                max_participants,
                all_moderators,
                lobby,
                active_speaker,
                layout,
                json,
            } => {
                let name: RoomName = name.parse()?;
                let store = open_existing(config).await?;
                let Some(room) = store.room(&name).await? else {
                    bail!("no room named \"{name}\"");
                };
                let mut policy = room.policy;
                if let Some(lock) = lock {
                    policy.locked = lock == Switch::On;
                }
                if let Some(max) = max_participants {
                    policy.max_participants = std::num::NonZeroU32::new(max);
                }
                if let Some(all) = all_moderators {
                    policy.all_moderators = all == Switch::On;
                }
                if let Some(lobby) = lobby {
                    policy.lobby = lobby == Switch::On;
                }
                if let Some(active_speaker) = active_speaker {
                    policy.active_speaker = active_speaker == Switch::On;
                }
                if let Some(layout) = layout {
                    policy.layout = match layout {
                        LayoutArg::Grid => Layout::Grid,
                        LayoutArg::OneBigWithSmall => Layout::OneBigWithSmall,
                        LayoutArg::OneBig => Layout::OneBig,
                    };
                }
                if !store.set_policy(&name, &policy, unix_now()).await? {
                    bail!("no room named \"{name}\"");
                }
                tracing::info!(room = %name, ?policy, "room policy changed");
                if json {
                    print_json(&policy)
                } else {
                    let max = policy.max_participants.map_or("none".to_owned(), |m| m.to_string());
                    println!(
                        "room {name}: {}, at most {max} participants, {}",
                        if policy.locked { "locked" } else { "unlocked" },
                        if policy.all_moderators {
                            "everyone moderates"
                        } else {
                            "listed moderators"
                        }
                    );
                    Ok(())
                }
            }
            Self::Moderator { action: ModeratorAction::Add, name, account } => {
                grant(config, &name, &account, AccountRole::Moderator).await
            }
            Self::Moderator { action: ModeratorAction::Remove, name, account } => {
                revoke(config, &name, &account, AccountRole::Moderator).await
            }
            Self::Delete { name, json } => {
                let name: RoomName = name.parse()?;
                let store = open_existing(config).await?;
                let Some(deleted) = store.delete_room(&name).await? else {
                    bail!("no room named \"{name}\"");
                };
                tracing::info!(room = %deleted.name, jami_id = %deleted.jami_id, "room deleted");
                if json {
                    print_json(&deleted)
                } else {
                    println!("deleted room {} (Jami ID {})", deleted.name, deleted.jami_id);
                    Ok(())
                }
            }
        }
    }
}

async fn create(config: &Config, name: &RoomName, json: bool) -> anyhow::Result<()> {
    let data_dir = DataDir::create_or_open(&config.data_dir)?;
    let store = Store::open_configured(&config.database, &data_dir).await?;
    // Refuse a taken name before spending seconds on keys; the insert checks again.
    if store.room(name).await?.is_some() {
        return Err(StoreError::RoomExists(name.clone()).into());
    }
    tracing::info!(room = %name, "generating the room's Jami identity (RSA-4096 keys)");
    let identity = RoomIdentity::generate().await.context("creating the room's Jami identity")?;
    let room = store.create_room(name, &identity, &RoomPolicy::default(), unix_now()).await?;
    tracing::info!(room = %room.name, jami_id = %room.identity.account_id(), "room created");
    if json { print_json(&RoomView::new(&room)) } else { print_room(&room) }
}

fn admission_label(admission: Admission) -> &'static str {
    match admission {
        Admission::Open => "open",
        Admission::AllowList => "allow-list",
    }
}

fn role_label(role: AccountRole) -> &'static str {
    match role {
        AccountRole::Moderator => "moderator",
        AccountRole::Allowed => "allowed",
        AccountRole::Banned => "banned",
    }
}

async fn grant(
    config: &Config,
    name: &str,
    account: &str,
    role: AccountRole,
) -> anyhow::Result<()> {
    let name: RoomName = name.parse()?;
    let account: AccountId = account.parse().context("not a Jami ID")?;
    let store = open_existing(config).await?;
    if !store.grant_role(&name, account, role, unix_now()).await? {
        bail!("no room named \"{name}\"");
    }
    tracing::info!(room = %name, %account, role = role_label(role), "account role granted");
    println!("room {name}: {account} {}", role_label(role));
    Ok(())
}

async fn revoke(
    config: &Config,
    name: &str,
    account: &str,
    role: AccountRole,
) -> anyhow::Result<()> {
    let name: RoomName = name.parse()?;
    let account: AccountId = account.parse().context("not a Jami ID")?;
    let store = open_existing(config).await?;
    if store.room(&name).await?.is_none() {
        bail!("no room named \"{name}\"");
    }
    if !store.revoke_role(&name, account, role).await? {
        bail!("{account} is not {} in room {name}", role_label(role));
    }
    println!("room {name}: {account} no longer {}", role_label(role));
    Ok(())
}

/// Opens the configured store: PostgreSQL, or SQLite in a data directory that must already
/// exist.
async fn open_existing(config: &Config) -> anyhow::Result<Store> {
    Ok(match &config.database.url {
        Some(url) => Store::open_postgres(url).await?,
        None => Store::open(&DataDir::open(&config.data_dir)?).await?,
    })
}
