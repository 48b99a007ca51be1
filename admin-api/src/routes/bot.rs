//! A bot's audio over a WebSocket: binary messages of 20 ms of 16-bit little-endian PCM at
//! 48 kHz, mono (1920 bytes), both ways. What the bot sends is heard in the room; what it
//! receives is the room's mix without its own voice, or with `?listen=<participant>` that one
//! participant's audio alone (a tap, for speech-to-text). A bot that does not keep up with
//! what it receives is dropped (the socket closes with code 1008), so that it never slows
//! the room.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use tracing::{debug, info};

use crate::control::{BOT_FRAME_SAMPLES, BotLink};
use crate::error::ErrorBody;
use crate::extract::{Path, Query};
use crate::{ApiError, ApiState, Control};

/// Bytes in one frame.
const FRAME_BYTES: usize = BOT_FRAME_SAMPLES * 2;

/// Routes for the admin token or the room's token.
pub(crate) fn room_routes<C: Control>() -> Router<ApiState<C>> {
    Router::new().route("/rooms/{room}/bot", get(connect::<C>))
}

/// What a bot hears.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct BotQuery {
    /// Hear only this participant (its id in the room), not the mix.
    listen: Option<u64>,
}

/// Join the room's audio as a bot (WebSocket).
#[utoipa::path(
    get, path = "/api/v1/rooms/{room}/bot", tag = "bots",
    params(("room" = String, Path, description = super::ROOM_PARAM), BotQuery),
    responses(
        (status = 101, description = "A WebSocket of binary PCM frames (20 ms, s16le, 48 kHz, \
            mono, 1920 bytes) both ways: sent frames are heard in the room, received frames are \
            the room's mix without the bot's own voice (or the `listen` participant alone)"),
        (status = 404, description = "No such room, or no such participant to listen to", body = ErrorBody),
        (status = 409, description = "The room already has 32 bots", body = ErrorBody),
        (status = 503, description = "The room is not served here", body = ErrorBody),
    ),
)]
pub(crate) async fn connect<C: Control>(
    State(state): State<ApiState<C>>,
    Path(room): Path<String>,
    Query(query): Query<BotQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let link = state.control.attach_bot(&room, query.listen).await?;
    info!(%room, listen = ?query.listen, "a bot joined the room's audio");
    Ok(upgrade.max_message_size(FRAME_BYTES * 4).on_upgrade(move |socket| run(socket, link, room)))
}

/// Carries frames both ways until either side ends.
async fn run(mut socket: WebSocket, link: BotLink, room: String) {
    let BotLink { to_room, mut from_room } = link;
    let reason = loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if bytes.len() != FRAME_BYTES {
                        break Some((close_code::INVALID, format!("a frame is {FRAME_BYTES} bytes")));
                    }
                    let frame = bytes
                        .chunks_exact(2)
                        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                        .collect();
                    if to_room.try_send(frame).is_err() {
                        debug!(%room, "a bot frame was dropped: the bot sends faster than real time");
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            },
            frame = from_room.recv() => match frame {
                Some(frame) => {
                    let bytes: Vec<u8> = frame.iter().flat_map(|sample| sample.to_le_bytes()).collect();
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break None;
                    }
                }
                None => break Some((close_code::POLICY, "the bot fell behind and was dropped".to_owned())),
            },
        }
    };
    if let Some((code, text)) = reason {
        info!(%room, %text, "a bot was disconnected");
        let frame = CloseFrame { code, reason: text.into() };
        let _ = socket.send(Message::Close(Some(frame))).await;
    } else {
        info!(%room, "a bot left the room's audio");
    }
}
