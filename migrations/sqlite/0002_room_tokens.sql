-- Room tokens: bearer tokens of the admin API that grant one room's routes (moderation).
-- Only the SHA-256 of a token is stored; the token itself is shown once, when it is made.

CREATE TABLE room_tokens (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    -- SHA-256 of the token, 64 lowercase hex characters.
    sha256     TEXT    NOT NULL UNIQUE,
    label      TEXT    NOT NULL,
    -- Unix seconds.
    created_at BIGINT  NOT NULL
);

CREATE INDEX room_tokens_room ON room_tokens (room_id);
