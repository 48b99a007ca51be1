//! Room leases: which replica serves which room when several share one database.

use super::{Store, StoreError, on_pool};
use crate::room::RoomId;

impl Store {
    /// Takes or renews the lease of room `room` for `holder` until `until_ms` (Unix ms):
    /// granted when the room has no lease, `holder` already has it, or the current one
    /// expired before `now_ms`. Atomic on both databases; whether it was granted.
    pub async fn take_lease(
        &self,
        room: RoomId,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO room_leases (room_id, holder, expires_at) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (room_id) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
             WHERE room_leases.holder = excluded.holder OR room_leases.expires_at < $4 \
             RETURNING holder";
        let granted: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(room.0)
            .bind(holder)
            .bind(until_ms)
            .bind(now_ms)
            .fetch_optional(pool)
            .await)?;
        Ok(granted.is_some())
    }

    /// Gives up `holder`'s lease of room `room`, so that another replica can take it at once.
    pub async fn release_lease(&self, room: RoomId, holder: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM room_leases WHERE room_id = $1 AND holder = $2";
        on_pool!(self, pool => sqlx::query(SQL).bind(room.0).bind(holder).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Gives up every lease `holder` has.
    pub async fn release_leases(&self, holder: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM room_leases WHERE holder = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(holder).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Who holds room `room`'s lease and until when (Unix ms), if anyone.
    pub async fn lease_of(&self, room: RoomId) -> Result<Option<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT holder, expires_at FROM room_leases WHERE room_id = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).bind(room.0).fetch_optional(pool).await)?)
    }
}
