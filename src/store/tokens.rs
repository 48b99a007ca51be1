//! Room tokens of the admin API, stored as the SHA-256 of the token.

use super::{Store, StoreError, on_pool};
use crate::room::RoomName;

/// A room token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomToken {
    /// Its id, to revoke it by.
    pub id: i64,
    /// What the operator called it.
    pub label: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl Store {
    /// Stores a token hash for the room; `None` when there is no such room.
    pub async fn add_room_token(
        &self,
        room: &RoomName,
        sha256_hex: &str,
        label: &str,
        now: i64,
    ) -> Result<Option<RoomToken>, StoreError> {
        const SQL: &str = "INSERT INTO room_tokens (room_id, sha256, label, created_at) \
             SELECT id, $1, $2, $3 FROM rooms WHERE lower(name) = lower($4) RETURNING id";
        let id: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(sha256_hex)
            .bind(label)
            .bind(now)
            .bind(room.as_str())
            .fetch_optional(pool)
            .await)?;
        Ok(id.map(|(id,)| RoomToken { id, label: label.to_owned(), created_at: now }))
    }

    /// Revokes one of the room's tokens; false when the room has no such token.
    pub async fn revoke_room_token(&self, room: &RoomName, id: i64) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM room_tokens WHERE id = $1 \
             AND room_id = (SELECT id FROM rooms WHERE lower(name) = lower($2))";
        let done = on_pool!(self, pool => sqlx::query(SQL).bind(id).bind(room.as_str()).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// The room's tokens, oldest first.
    pub async fn room_tokens(&self, room: &RoomName) -> Result<Vec<RoomToken>, StoreError> {
        const SQL: &str = "SELECT t.id, t.label, t.created_at FROM room_tokens t \
             JOIN rooms r ON r.id = t.room_id WHERE lower(r.name) = lower($1) ORDER BY t.id";
        let rows: Vec<(i64, String, i64)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(room.as_str()).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, label, created_at)| RoomToken { id, label, created_at })
            .collect())
    }

    /// The name of the room a token hash grants, if any.
    pub async fn room_of_token(&self, sha256_hex: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str =
            "SELECT r.name FROM room_tokens t JOIN rooms r ON r.id = t.room_id WHERE t.sha256 = $1";
        let name: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(SQL).bind(sha256_hex).fetch_optional(pool).await)?;
        Ok(name.map(|(name,)| name))
    }
}
