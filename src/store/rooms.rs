//! Room repository.

use std::num::NonZeroU32;

use sqlx::FromRow;

use super::{Store, StoreError, on_pool};
use crate::identity::AccountId;
use crate::identity::{CertifiedKey, PrivateKeyPem, RoomIdentity};
use crate::room::{AccountRole, Admission, Layout, Room, RoomId, RoomName, RoomPolicy};

/// Name of the unique index on `lower(name)`.
const NAME_INDEX: &str = "rooms_name_key";

/// The columns of [`RoomRow`], for static SQL built with `concat!`.
macro_rules! room_columns {
    () => {
        "id, name, account_id, device_id, device_long_id, \
         ca_certificate, ca_private_key, account_certificate, account_private_key, \
         device_certificate, device_private_key, \
         admission, locked, lobby, max_participants, all_moderators, active_speaker, layout, created_at"
    };
}

/// A `rooms` row as stored.
#[derive(FromRow)]
struct RoomRow {
    id: i64,
    name: String,
    account_id: String,
    device_id: String,
    device_long_id: String,
    ca_certificate: String,
    ca_private_key: String,
    account_certificate: String,
    account_private_key: String,
    device_certificate: String,
    device_private_key: String,
    #[sqlx(flatten)]
    policy: PolicyColumns,
    created_at: i64,
}

impl Store {
    /// Stores a new room. Fails with [`StoreError::RoomExists`] if the name is taken in any case.
    pub async fn create_room(
        &self,
        name: &RoomName,
        identity: &RoomIdentity,
        policy: &RoomPolicy,
        now: i64,
    ) -> Result<Room, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO rooms (name, account_id, device_id, device_long_id, \
                ca_certificate, ca_private_key, account_certificate, account_private_key, \
                device_certificate, device_private_key, \
                admission, locked, lobby, max_participants, all_moderators, active_speaker, layout, \
                created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) \
             RETURNING ",
            room_columns!()
        );
        let row: RoomRow = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(name.as_str())
            .bind(identity.account_id().to_string())
            .bind(identity.device_id().to_string())
            .bind(identity.device_long_id().to_string())
            .bind(&identity.ca().certificate_pem)
            .bind(identity.ca().private_key.expose())
            .bind(&identity.account().certificate_pem)
            .bind(identity.account().private_key.expose())
            .bind(&identity.device().certificate_pem)
            .bind(identity.device().private_key.expose())
            .bind(admission_text(policy.admission))
            .bind(policy.locked)
            .bind(policy.lobby)
            .bind(policy.max_participants.map(|max| i64::from(max.get())))
            .bind(policy.all_moderators)
            .bind(policy.active_speaker)
            .bind(layout_text(policy.layout))
            .bind(now)
            .fetch_one(pool)
            .await)
        .map_err(|error| match &error {
            sqlx::Error::Database(database_error) if is_name_conflict(database_error.as_ref()) => {
                StoreError::RoomExists(name.clone())
            }
            _ => StoreError::Database(error),
        })?;
        row.into_room()
    }

    /// All rooms, by name.
    pub async fn rooms(&self) -> Result<Vec<Room>, StoreError> {
        const SQL: &str = concat!("SELECT ", room_columns!(), " FROM rooms ORDER BY lower(name)");
        let rows: Vec<RoomRow> = on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await)?;
        rows.into_iter().map(RoomRow::into_room).collect()
    }

    /// The room with this name, in any case.
    pub async fn room(&self, name: &RoomName) -> Result<Option<Room>, StoreError> {
        const SQL: &str =
            concat!("SELECT ", room_columns!(), " FROM rooms WHERE lower(name) = lower($1)");
        let row: Option<RoomRow> = on_pool!(self, pool => sqlx::query_as(SQL).bind(name.as_str()).fetch_optional(pool).await)?;
        row.map(RoomRow::into_room).transpose()
    }

    /// Deletes the room with this name, with its keys, and says what was deleted. A damaged room
    /// (one that no longer loads) can be deleted too.
    pub async fn delete_room(&self, name: &RoomName) -> Result<Option<DeletedRoom>, StoreError> {
        const SQL: &str =
            "DELETE FROM rooms WHERE lower(name) = lower($1) RETURNING name, account_id";
        let deleted: Option<(String, String)> = on_pool!(self, pool => sqlx::query_as(SQL).bind(name.as_str()).fetch_optional(pool).await)?;
        Ok(deleted.map(|(name, jami_id)| DeletedRoom { name, jami_id }))
    }
}

impl Store {
    /// Replaces the room's whole policy; false when there is no such room.
    pub async fn set_policy(
        &self,
        name: &RoomName,
        policy: &RoomPolicy,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE rooms SET admission = $1, locked = $2, lobby = $3, \
            max_participants = $4, all_moderators = $5, active_speaker = $6, layout = $7, \
            updated_at = $8 WHERE lower(name) = lower($9)";
        let done = on_pool!(self, pool => sqlx::query(SQL)
            .bind(admission_text(policy.admission))
            .bind(policy.locked)
            .bind(policy.lobby)
            .bind(policy.max_participants.map(|max| i64::from(max.get())))
            .bind(policy.all_moderators)
            .bind(policy.active_speaker)
            .bind(layout_text(policy.layout))
            .bind(now)
            .bind(name.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// Sets who may call the room; false when there is no such room.
    pub async fn set_admission(
        &self,
        name: &RoomName,
        admission: Admission,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE rooms SET admission = $1, updated_at = $2 WHERE lower(name) = lower($3)";
        let done = on_pool!(self, pool => sqlx::query(SQL)
            .bind(admission_text(admission))
            .bind(now)
            .bind(name.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// Gives `account` a role in the room (no effect if it has it); false when there is no
    /// such room.
    pub async fn grant_role(
        &self,
        name: &RoomName,
        account: AccountId,
        role: AccountRole,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO room_accounts (room_id, account_id, role, created_at) \
             SELECT id, $1, $2, $3 FROM rooms WHERE lower(name) = lower($4) \
             ON CONFLICT (room_id, account_id, role) DO NOTHING";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(account.to_string())
            .bind(role.as_str())
            .bind(now)
            .bind(name.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(self.room(name).await?.is_some())
    }

    /// Takes a role from `account`; false when it did not have it.
    pub async fn revoke_role(
        &self,
        name: &RoomName,
        account: AccountId,
        role: AccountRole,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM room_accounts WHERE account_id = $1 AND role = $2 \
             AND room_id = (SELECT id FROM rooms WHERE lower(name) = lower($3))";
        let done = on_pool!(self, pool => sqlx::query(SQL)
            .bind(account.to_string())
            .bind(role.as_str())
            .bind(name.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// The roles `account` has in room `room`.
    pub async fn roles_of(
        &self,
        room: RoomId,
        account: AccountId,
    ) -> Result<Vec<AccountRole>, StoreError> {
        const SQL: &str = "SELECT role FROM room_accounts WHERE room_id = $1 AND account_id = $2";
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(room.0)
            .bind(account.to_string())
            .fetch_all(pool)
            .await)?;
        Ok(rows.iter().filter_map(|(role,)| AccountRole::from_stored(role)).collect())
    }

    /// Every account with a role in room `room`, sorted.
    pub async fn accounts(&self, room: RoomId) -> Result<Vec<(String, AccountRole)>, StoreError> {
        const SQL: &str = "SELECT account_id, role FROM room_accounts WHERE room_id = $1 ORDER BY role, account_id";
        let rows: Vec<(String, String)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(room.0).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(account, role)| Some((account, AccountRole::from_stored(&role)?)))
            .collect())
    }

    /// Every account with a role in room `room`, with its roles (rows that do not parse,
    /// which only a hand edit of the database makes, are left out).
    pub async fn roles(
        &self,
        room: RoomId,
    ) -> Result<std::collections::HashMap<AccountId, Vec<AccountRole>>, StoreError> {
        let mut roles: std::collections::HashMap<AccountId, Vec<AccountRole>> =
            std::collections::HashMap::new();
        for (account, role) in self.accounts(room).await? {
            if let Ok(account) = account.parse::<AccountId>() {
                roles.entry(account).or_default().push(role);
            }
        }
        Ok(roles)
    }
}

/// What [`Store::delete_room`] removed, as it was stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeletedRoom {
    /// The room's name.
    pub name: String,
    /// The room's Jami ID.
    pub jami_id: String,
}

impl RoomRow {
    fn into_room(self) -> Result<Room, StoreError> {
        let damaged = |reason: String| StoreError::DamagedRoom { name: self.name.clone(), reason };
        let name: RoomName = self.name.parse().map_err(|error| damaged(format!("{error}")))?;
        let certified = |certificate_pem: &String, private_key: &String| CertifiedKey {
            certificate_pem: certificate_pem.clone(),
            private_key: PrivateKeyPem::new(private_key.clone()),
        };
        let identity = RoomIdentity::from_parts(
            certified(&self.ca_certificate, &self.ca_private_key),
            certified(&self.account_certificate, &self.account_private_key),
            certified(&self.device_certificate, &self.device_private_key),
        )
        .map_err(|error| damaged(error.to_string()))?;
        let stored_ids = [&self.account_id, &self.device_id, &self.device_long_id];
        let derived_ids = [
            identity.account_id().to_string(),
            identity.device_id().to_string(),
            identity.device_long_id().to_string(),
        ];
        if stored_ids.iter().zip(&derived_ids).any(|(stored, derived)| *stored != derived) {
            return Err(damaged("stored ids do not match its certificates".into()));
        }
        let policy = self.policy.into_policy().map_err(damaged)?;
        Ok(Room { id: RoomId(self.id), name, identity, policy, created_at: self.created_at })
    }
}

/// The policy columns of a `rooms` row.
#[derive(FromRow)]
struct PolicyColumns {
    admission: String,
    locked: bool,
    lobby: bool,
    max_participants: Option<i64>,
    all_moderators: bool,
    active_speaker: bool,
    layout: String,
}

impl PolicyColumns {
    /// The policy, or why the stored one is damaged.
    fn into_policy(self) -> Result<RoomPolicy, String> {
        let max_participants = self
            .max_participants
            .map(|max| u32::try_from(max).ok().and_then(NonZeroU32::new).ok_or(max))
            .transpose()
            .map_err(|max| format!("max_participants {max} is out of range"))?;
        Ok(RoomPolicy {
            admission: parse_admission(&self.admission)
                .ok_or_else(|| format!("unknown admission {:?}", self.admission))?,
            locked: self.locked,
            lobby: self.lobby,
            max_participants,
            all_moderators: self.all_moderators,
            active_speaker: self.active_speaker,
            layout: parse_layout(&self.layout)
                .ok_or_else(|| format!("unknown layout {:?}", self.layout))?,
        })
    }
}

/// A room's key, name and policy, without its identity: cheap to read often.
#[derive(Debug, Clone)]
pub struct RoomOutline {
    /// Store key.
    pub id: RoomId,
    /// Unique name.
    pub name: RoomName,
    /// Policy.
    pub policy: RoomPolicy,
    /// The room's Jami ID, as stored (checked against its certificates when fully loaded).
    pub jami_id: String,
    /// Its device id, as stored.
    pub device_id: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A `rooms` row without the identity columns.
#[derive(FromRow)]
struct OutlineRow {
    id: i64,
    name: String,
    account_id: String,
    device_id: String,
    created_at: i64,
    #[sqlx(flatten)]
    policy: PolicyColumns,
}

impl OutlineRow {
    /// The outline, unless the stored name or policy is damaged.
    fn into_outline(self) -> Option<RoomOutline> {
        Some(RoomOutline {
            id: RoomId(self.id),
            name: self.name.parse().ok()?,
            policy: self.policy.into_policy().ok()?,
            jami_id: self.account_id,
            device_id: self.device_id,
            created_at: self.created_at,
        })
    }
}

/// The columns of [`OutlineRow`].
macro_rules! outline_columns {
    () => {
        "id, name, account_id, device_id, created_at, admission, locked, lobby, \
         max_participants, all_moderators, active_speaker, layout"
    };
}

impl Store {
    /// Every room's key, name and policy, by name; rooms whose name or policy is damaged are
    /// left out (loading them in full says why).
    pub async fn room_outlines(&self) -> Result<Vec<RoomOutline>, StoreError> {
        const SQL: &str =
            concat!("SELECT ", outline_columns!(), " FROM rooms ORDER BY lower(name)");
        let rows: Vec<OutlineRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await)?;
        Ok(rows.into_iter().filter_map(OutlineRow::into_outline).collect())
    }

    /// The outline of the room with this name, in any case; `None` when there is no such
    /// room or its name or policy is damaged.
    pub async fn room_outline(&self, name: &RoomName) -> Result<Option<RoomOutline>, StoreError> {
        const SQL: &str =
            concat!("SELECT ", outline_columns!(), " FROM rooms WHERE lower(name) = lower($1)");
        let row: Option<OutlineRow> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(name.as_str())
            .fetch_optional(pool)
            .await)?;
        Ok(row.and_then(OutlineRow::into_outline))
    }
}

fn is_name_conflict(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.is_unique_violation()
        && (error.constraint() == Some(NAME_INDEX) || error.message().contains(NAME_INDEX))
}

fn admission_text(admission: Admission) -> &'static str {
    match admission {
        Admission::Open => "open",
        Admission::AllowList => "allow_list",
    }
}

fn parse_admission(text: &str) -> Option<Admission> {
    [Admission::Open, Admission::AllowList].into_iter().find(|a| admission_text(*a) == text)
}

fn layout_text(layout: Layout) -> &'static str {
    match layout {
        Layout::Grid => "grid",
        Layout::OneBigWithSmall => "one_big_with_small",
        Layout::OneBig => "one_big",
    }
}

fn parse_layout(text: &str) -> Option<Layout> {
    [Layout::Grid, Layout::OneBigWithSmall, Layout::OneBig]
        .into_iter()
        .find(|l| layout_text(*l) == text)
}
