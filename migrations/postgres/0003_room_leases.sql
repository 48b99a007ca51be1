-- Room leases: with several replicas on one database, each room is served by the replica
-- that holds its lease. A holder renews it while it serves the room; once it expires (the
-- replica stopped or was killed), another replica takes the room over.

CREATE TABLE room_leases (
    room_id    BIGINT NOT NULL PRIMARY KEY REFERENCES rooms (id) ON DELETE CASCADE,
    -- The replica's id (config cluster.replica, or one made at start).
    holder     TEXT   NOT NULL,
    -- Unix milliseconds, by the holder's clock.
    expires_at BIGINT NOT NULL
);
