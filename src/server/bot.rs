//! Bots in a room's audio: participants without a call, fed and heard through the admin API
//! (a WebSocket of PCM frames). The room's owner task adds a bot to the mixer like a call;
//! this task turns the bot's PCM into Opus for the mixer and the bot's mix-minus back into
//! PCM. A bot that does not take what it hears fast enough is dropped: the room never waits.

use rdv_admin_api::{BOT_FRAME_SAMPLES, BotLink};
use rdv_mixer::media_room::Command;
use rdv_mixer::opus::{OpusDecoder, OpusEncoder};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::mix_routes::{Outgoing, Seat};

/// Frames queued from the bot (about 200 ms): a bot sends in real time.
const FROM_BOT: usize = 10;
/// Frames queued to the bot (1 s): a bot further behind is dropped.
const TO_BOT: usize = 50;
/// Opus bitrate of a bot's voice.
const BOT_BITRATE: u32 = 64_000;

/// Starts carrying a bot's audio; the returned link is the bot's side.
pub(super) fn spawn(seat: Seat) -> Result<BotLink, String> {
    let encoder = OpusEncoder::new(BOT_BITRATE).map_err(|error| error.to_string())?;
    let decoder = OpusDecoder::new().map_err(|error| error.to_string())?;
    let (to_room, from_bot) = mpsc::channel(FROM_BOT);
    let (to_bot, from_room) = mpsc::channel(TO_BOT);
    tokio::spawn(run(seat, encoder, decoder, from_bot, to_bot));
    Ok(BotLink { to_room, from_room })
}

async fn run(
    seat: Seat,
    mut encoder: OpusEncoder,
    mut decoder: OpusDecoder,
    mut from_bot: mpsc::Receiver<Vec<i16>>,
    to_bot: mpsc::Sender<Vec<i16>>,
) {
    let Seat { id, mixer, mut outgoing, owner } = seat;
    let mut timestamp = 0u32;
    loop {
        tokio::select! {
            frame = from_bot.recv() => {
                let Some(frame) = frame else { break };
                if frame.len() != BOT_FRAME_SAMPLES {
                    continue;
                }
                let samples: Vec<f32> = frame.iter().map(|s| f32::from(*s) / 32_768.0).collect();
                match encoder.encode(&samples) {
                    Ok(payload) => {
                        let _ = mixer.send(Command::Audio { participant: id, timestamp, payload });
                        timestamp = timestamp.wrapping_add(BOT_FRAME_SAMPLES as u32);
                    }
                    Err(error) => warn!(participant = id.0, %error, "a bot frame could not be encoded"),
                }
            }
            packet = outgoing.recv() => {
                let Some(Outgoing::Audio { payload, .. }) = packet else { break };
                let Ok(samples) = decoder.decode(&payload) else { continue };
                let frame = samples
                    .iter()
                    .map(|s| (s.clamp(-1.0, 1.0) * 32_767.0) as i16)
                    .collect();
                if to_bot.try_send(frame).is_err() {
                    info!(participant = id.0, "a bot fell behind what it hears: dropped");
                    break;
                }
            }
        }
    }
    owner.leave(id);
}
