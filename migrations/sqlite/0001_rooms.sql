-- Rooms: each is a Jami account with one device, plus the policy the conference applies.
-- Portable SQL: the PostgreSQL set differs only where the dialects must (the id column).

CREATE TABLE rooms (
    id                  INTEGER PRIMARY KEY,
    name                TEXT    NOT NULL,
    -- Identity (jami-protocol.md §1.1-1.2). Ids are lowercase hex, derived from the keys.
    account_id          TEXT    NOT NULL UNIQUE,
    device_id           TEXT    NOT NULL UNIQUE,
    device_long_id      TEXT    NOT NULL UNIQUE,
    ca_certificate      TEXT    NOT NULL,
    ca_private_key      TEXT    NOT NULL,
    account_certificate TEXT    NOT NULL,
    account_private_key TEXT    NOT NULL,
    device_certificate  TEXT    NOT NULL,
    device_private_key  TEXT    NOT NULL,
    -- Policy.
    admission           TEXT    NOT NULL DEFAULT 'open'
                                CHECK (admission IN ('open', 'allow_list')),
    locked              BOOLEAN NOT NULL DEFAULT FALSE,
    lobby               BOOLEAN NOT NULL DEFAULT FALSE,
    max_participants    INTEGER CHECK (max_participants > 0),
    all_moderators      BOOLEAN NOT NULL DEFAULT FALSE,
    active_speaker      BOOLEAN NOT NULL DEFAULT FALSE,
    layout              TEXT    NOT NULL DEFAULT 'grid'
                                CHECK (layout IN ('grid', 'one_big_with_small', 'one_big')),
    -- Unix seconds.
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);

-- Names are unique regardless of case.
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(name));

-- Accounts with a role in a room: its moderators, its allow-list, its bans.
CREATE TABLE room_accounts (
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    account_id TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('moderator', 'allowed', 'banned')),
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (room_id, account_id, role)
);
