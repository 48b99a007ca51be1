//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes and the
//! wire types' schemas, and served at `/api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{accounts, bot, events, participants, playback, recording, rooms, tokens};
use crate::types::{
    AccountRoleEntry, Action, Admission, ChatRequest, CreateRoom, CreateToken, CreatedToken, Event,
    EventKind, LayoutName, LayoutRequest, MuteRequest, Participant, PlayRequest, Playback,
    PlaybackOutcome, PlaybackPatch, PlaybackVideo, Policy, PolicyPatch, RecordRequest, Recording,
    RecordingOutcome, Role, RoomDetail, RoomSummary, TokenInfo,
};

/// The name of the bearer security scheme in the document (also spelled out in `security`).
const BEARER: &str = "bearer";

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "rdv admin API",
        description = "Manage rdv's rooms, moderate their conferences and follow their events. \
            Every route takes `Authorization: Bearer <token>`: the admin token grants \
            everything, a room token grants its room's routes except token management and \
            deleting the room. Errors are `{\"error\": {\"code\": ..., \"message\": ...}}`.",
    ),
    paths(
        rooms::list, rooms::create, rooms::show, rooms::delete, rooms::update_policy,
        participants::list, participants::act, participants::kick, participants::admit,
        participants::lower_hand, participants::mute, participants::mute_all,
        participants::set_layout, participants::lock, participants::unlock, participants::chat,
        accounts::list, accounts::add_moderator, accounts::remove_moderator, accounts::ban,
        accounts::unban, accounts::allow, accounts::disallow,
        tokens::create, tokens::revoke,
        events::all, events::room,
        bot::connect,
        recording::start, recording::stop,
        playback::start, playback::list, playback::change, playback::stop,
    ),
    components(schemas(
        AccountRoleEntry, Action, Admission, ChatRequest, CreateRoom, CreateToken, CreatedToken,
        ErrorBody, ErrorDetail, Event, EventKind, LayoutName, LayoutRequest, MuteRequest,
        Participant, PlayRequest, Playback, PlaybackOutcome, PlaybackPatch, PlaybackVideo, Policy,
        PolicyPatch, RecordRequest, Recording, RecordingOutcome, Role, RoomDetail, RoomSummary,
        TokenInfo,
    )),
    modifiers(&BearerScheme, &CommonErrors),
    security(("bearer" = [])),
    tags(
        (name = "rooms", description = "Rooms and their policy"),
        (name = "participants", description = "Participants and moderation"),
        (name = "accounts", description = "Moderators, bans and the allow-list"),
        (name = "tokens", description = "Room tokens (admin only)"),
        (name = "events", description = "Live events (Server-Sent Events)"),
        (name = "bots", description = "Bots in a room's audio (WebSocket)"),
        (name = "recording", description = "Recording a room's mix (and composite)"),
        (name = "playback", description = "Playing files into a room"),
    ),
)]
struct ApiDoc;

/// The API's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Declares the bearer security scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds the errors any route can answer (authentication, rate limiting, faults) to every
/// operation, as shared component responses.
struct CommonErrors;

impl CommonErrors {
    const ERRORS: [(&'static str, &'static str, &'static str); 5] = [
        ("401", "Unauthorized", "Missing or invalid bearer token"),
        ("403", "Forbidden", "The token does not grant this route"),
        ("429", "TooManyRequests", "Too many failed authentication attempts from this client"),
        ("500", "Internal", "A fault in the server"),
        ("503", "Unavailable", "Not ready, overloaded or timed out"),
    ];
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in Self::ERRORS {
            let content =
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build();
            components.responses.insert(name.to_owned(), RefOr::T(response));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                for (status, name, _) in Self::ERRORS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve() -> crate::extract::Json<utoipa::openapi::OpenApi> {
    crate::extract::Json(openapi())
}
