// rdv moderator panel: plain JavaScript, no build step, no external resources.
//
// The token is kept in sessionStorage (this tab only). API calls send it as a bearer token;
// the event stream, which cannot send headers, passes it as the access_token query
// parameter. Everything shown comes from the API and is inserted as text, never as HTML.
'use strict';

(() => {
  // The API, relative to this page (/panel/), so that a proxy's path prefix is kept.
  const API = new URL('../api/v1/', document.baseURI);
  const TOKEN_KEY = 'rdv-panel-token';
  const ROOM_KEY = 'rdv-panel-room';
  const POLL_MS = 5000;
  const RECONNECT_MS = 10000;
  const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
  const EVENT_TYPES = [
    'joined', 'left', 'muted', 'hand_raised', 'layout_changed', 'voice_activity',
    'call_refused', 'call_failed', 'lobby', 'lagged',
  ];

  const $ = (id) => document.getElementById(id);
  const ui = {
    signOut: $('sign-out'),
    error: $('error'),
    notice: $('notice'),
    signInView: $('sign-in-view'),
    signInForm: $('sign-in-form'),
    token: $('token'),
    roomName: $('room-name'),
    signIn: $('sign-in'),
    roomsView: $('rooms-view'),
    roomsHeading: $('rooms-heading'),
    roomsEmpty: $('rooms-empty'),
    roomList: $('room-list'),
    roomView: $('room-view'),
    back: $('back'),
    roomTitle: $('room-title'),
    jamiId: $('room-jami-id'),
    lockState: $('room-lock-state'),
    live: $('live'),
    status: $('status'),
    table: $('participants'),
    tbody: $('participants').tBodies[0],
    layoutForm: $('layout-form'),
    layout: $('layout'),
    lock: $('lock'),
    unlock: $('unlock'),
    muteAll: $('mute-all'),
    chatForm: $('chat-form'),
    chatText: $('chat-text'),
  };

  // What the tab is signed in as, and the room it shows.
  const session = {
    token: null,
    admin: false,
    room: null,
    // Bumped whenever the room view closes, so that late answers are dropped.
    generation: 0,
    events: null,
    reconnectTimer: null,
    pollTimer: null,
    inFlight: false,
    queued: false,
    rendered: null,
    errorFromRefresh: false,
    // A sign-in is under way.
    busy: false,
  };

  // ---- API ----------------------------------------------------------------------------

  /** An error answered by the API (or the network), with the API's code and message. */
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** Calls the API; resolves to the parsed JSON body (null when empty), rejects with ApiError. */
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${session.token}` };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(new URL(path, API), init);
    } catch (_) {
      throw new ApiError(0, 'network', 'Cannot reach the server.');
    }
    const text = await response.text().catch(() => '');
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      const detail = data && data.error;
      const code = detail && typeof detail.code === 'string' ? detail.code : `http_${response.status}`;
      const message = detail && typeof detail.message === 'string'
        ? detail.message
        : `The server answered ${response.status} ${response.statusText}.`;
      throw new ApiError(response.status, code, message);
    }
    return data;
  }

  const roomPath = (room) => `rooms/${encodeURIComponent(room)}`;

  // ---- Messages -----------------------------------------------------------------------

  function showError(error, fromRefresh = false) {
    const message = error instanceof ApiError
      ? `${error.message} (${error.code})`
      : `Unexpected error: ${error && error.message ? error.message : error}`;
    ui.error.textContent = message;
    session.errorFromRefresh = fromRefresh;
  }

  function clearError() {
    ui.error.textContent = '';
    session.errorFromRefresh = false;
  }

  function notify(message) {
    ui.notice.textContent = message;
  }

  // ---- Views --------------------------------------------------------------------------

  function show(view) {
    ui.signInView.hidden = view !== ui.signInView;
    ui.roomsView.hidden = view !== ui.roomsView;
    ui.roomView.hidden = view !== ui.roomView;
    ui.signOut.hidden = view === ui.signInView;
  }

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'text') {
        node.textContent = value;
      } else if (key === 'className') {
        node.className = value;
      } else if (key === 'dataset') {
        Object.assign(node.dataset, value);
      } else {
        node.setAttribute(key, value);
      }
    }
    for (const child of children) {
      node.append(child);
    }
    return node;
  }

  const shortAccount = (account) =>
    account.length > 14 ? `${account.slice(0, 8)}…${account.slice(-4)}` : account;

  // ---- Sign in and out ----------------------------------------------------------------

  /**
   * Signs in: the admin token lists the rooms (GET /rooms answers 403 to a room token, which
   * then needs the room's name). The token is kept once it proved good.
   */
  async function signIn(token, room) {
    if (session.busy) {
      return;
    }
    session.busy = true;
    session.token = token;
    session.admin = false;
    try {
      let rooms = null;
      try {
        rooms = await api('GET', 'rooms');
        session.admin = true;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 403) {
          throw error;
        }
      }
      if (!session.admin && !room) {
        throw new ApiError(403, 'room_needed',
          'This is a room token: type the name of its room in "Room" and sign in again.');
      }
      if (session.admin) {
        sessionStorage.setItem(TOKEN_KEY, token);
        ui.token.value = '';
        showRooms(rooms);
      }
      if (room) {
        await openRoom(room);
        sessionStorage.setItem(TOKEN_KEY, token);
        ui.token.value = '';
      } else {
        ui.roomsHeading.focus();
      }
    } catch (error) {
      showError(error);
      // The admin stays signed in (on the rooms list); anyone else tries again.
      if (!session.admin) {
        forget();
        ui.token.focus();
      }
    } finally {
      session.busy = false;
    }
  }

  /** Drops the token and any room: back to the sign-in form. */
  function forget() {
    closeRoom();
    session.token = null;
    session.admin = false;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ROOM_KEY);
    ui.roomList.replaceChildren();
    show(ui.signInView);
  }

  function signOut() {
    forget();
    clearError();
    notify('Signed out.');
    ui.token.focus();
  }

  // ---- Rooms list (admin) -------------------------------------------------------------

  function showRooms(rooms) {
    const items = (rooms || []).map((room) => {
      const count = room.participants === 1 ? '1 participant' : `${room.participants} participants`;
      const button = el('button', {
        type: 'button', className: 'link-button', text: room.name, dataset: { room: room.name },
      });
      return el('li', {}, [button, el('span', { className: 'hint', text: ` ${count}` })]);
    });
    ui.roomList.replaceChildren(...items);
    ui.roomsEmpty.hidden = items.length > 0;
    if (session.admin) {
      show(ui.roomsView);
    }
  }

  async function listRooms() {
    closeRoom();
    try {
      showRooms(await api('GET', 'rooms'));
      ui.roomsHeading.focus();
    } catch (error) {
      showError(error);
      if (error instanceof ApiError && error.status === 401) {
        forget();
        ui.token.focus();
      }
    }
  }

  // ---- One room -----------------------------------------------------------------------

  async function openRoom(room) {
    if (!ROOM_NAME.test(room)) {
      throw new ApiError(400, 'bad_room_name',
        'A room name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit.');
    }
    closeRoom();
    const generation = session.generation;
    const detail = await api('GET', roomPath(room));
    if (generation !== session.generation) {
      return;
    }
    session.room = detail.name;
    sessionStorage.setItem(ROOM_KEY, detail.name);
    ui.roomTitle.textContent = `Room ${detail.name}`;
    ui.back.hidden = !session.admin;
    showDetail(detail);
    render(detail.participants);
    show(ui.roomView);
    ui.roomTitle.focus();
    connectEvents();
    // The fallback: whatever the stream does, the room is re-read every few seconds.
    session.pollTimer = setInterval(() => {
      refresh();
      refreshDetail().catch(() => {});
    }, POLL_MS);
  }

  function closeRoom() {
    session.generation += 1;
    session.room = null;
    session.rendered = null;
    session.queued = false;
    if (session.events) {
      session.events.close();
      session.events = null;
    }
    clearTimeout(session.reconnectTimer);
    clearInterval(session.pollTimer);
    session.reconnectTimer = null;
    session.pollTimer = null;
    sessionStorage.removeItem(ROOM_KEY);
  }

  function showDetail(detail) {
    ui.jamiId.textContent = detail.jami_id;
    ui.lockState.textContent = detail.policy && detail.policy.locked ? 'Locked' : 'Unlocked';
    if (document.activeElement !== ui.layout) {
      ui.layout.value = detail.layout;
    }
  }

  /** Live updates: every event triggers a refresh; the stream reconnects if it fails. */
  function connectEvents() {
    const url = new URL(`${roomPath(session.room)}/events`, API);
    url.searchParams.set('access_token', session.token);
    const generation = session.generation;
    const source = new EventSource(url.href);
    session.events = source;
    ui.live.textContent = 'Connecting…';
    source.addEventListener('open', () => {
      ui.live.textContent = 'On';
      // Events may have been missed while (re)connecting.
      refresh();
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => onEvent(type, event));
    }
    source.addEventListener('error', () => {
      if (generation !== session.generation) {
        return;
      }
      ui.live.textContent = `Interrupted: refreshing every ${POLL_MS / 1000} s`;
      if (source.readyState === EventSource.CLOSED) {
        session.events = null;
        clearTimeout(session.reconnectTimer);
        session.reconnectTimer = setTimeout(() => {
          if (generation === session.generation) {
            connectEvents();
          }
        }, RECONNECT_MS);
      }
    });
  }

  function onEvent(type, event) {
    if (type === 'layout_changed') {
      try {
        const data = JSON.parse(event.data);
        if (data.kind && data.kind.layout && document.activeElement !== ui.layout) {
          ui.layout.value = data.kind.layout;
        }
      } catch (_) {
        // A malformed event still triggers the refresh below.
      }
    }
    refresh();
  }

  /** Re-fetches the participants: at most one request in flight, and one queued. */
  function refresh() {
    if (!session.room) {
      return;
    }
    if (session.inFlight) {
      session.queued = true;
      return;
    }
    session.inFlight = true;
    const generation = session.generation;
    api('GET', `${roomPath(session.room)}/participants`)
      .then((participants) => {
        if (generation !== session.generation) {
          return;
        }
        render(participants);
        if (session.errorFromRefresh) {
          clearError();
        }
      })
      .catch((error) => {
        if (generation !== session.generation) {
          return;
        }
        showError(error, true);
        if (error.status === 401) {
          forget();
          ui.token.focus();
        }
      })
      .finally(() => {
        session.inFlight = false;
        if (session.queued) {
          session.queued = false;
          refresh();
        }
      });
  }

  /** Re-reads the room (lock state, layout) after a room control. */
  async function refreshDetail() {
    if (!session.room) {
      return;
    }
    const generation = session.generation;
    const detail = await api('GET', roomPath(session.room));
    if (generation === session.generation) {
      showDetail(detail);
    }
  }

  // ---- Participant table --------------------------------------------------------------

  /** A data cell; `label` (its column's name) is shown beside it when rows are cards. */
  const cell = (label, text, on) =>
    el('td', { role: 'cell', text, className: on ? 'yes' : 'no', dataset: { label } });
  const yesNo = (label, value) => cell(label, value ? 'Yes' : 'No', value);

  function audioText(p) {
    if (p.audio_moderator_muted && p.audio_local_muted) {
      return 'Muted (own and moderator)';
    }
    if (p.audio_moderator_muted) {
      return 'Muted by moderator';
    }
    return p.audio_local_muted ? 'Muted (own)' : 'On';
  }

  function videoText(p) {
    if (p.video_moderator_muted) {
      return 'Off by moderator';
    }
    return p.video_muted ? 'Off' : 'On';
  }

  /**
   * One participant button. `set`, for the toggles, is what a click asks for: "true" to mute
   * or make moderator, "false" to undo.
   */
  function actionButton(action, text, label, className, set) {
    const dataset = set === undefined ? { action } : { action, set: String(set) };
    return el('button', { type: 'button', text, 'aria-label': label, className, dataset });
  }

  function actionsFor(p) {
    const who = p.account;
    const buttons = [
      p.audio_moderator_muted
        ? actionButton('mute-audio', 'Unmute', `Unmute audio of ${who}`, '', false)
        : actionButton('mute-audio', 'Mute', `Mute audio of ${who}`, '', true),
      p.video_moderator_muted
        ? actionButton('mute-video', 'Unmute video', `Unmute video of ${who}`, '', false)
        : actionButton('mute-video', 'Mute video', `Mute video of ${who}`, '', true),
    ];
    if (p.in_lobby) {
      buttons.push(actionButton('admit', 'Admit', `Admit ${who}`, ''));
    }
    if (p.hand_raised) {
      buttons.push(actionButton('lower-hand', 'Lower hand', `Lower hand of ${who}`, ''));
    }
    buttons.push(p.moderator
      ? actionButton('make-moderator', 'Remove moderator', `Remove moderator ${who}`,
        'secondary', false)
      : actionButton('make-moderator', 'Make moderator', `Make moderator ${who}`,
        'secondary', true));
    buttons.push(actionButton('kick', 'Kick', `Kick ${who}`, 'danger'));
    buttons.push(actionButton('ban', 'Ban', `Ban and kick ${who}`, 'danger'));
    return el('td', { role: 'cell' }, [el('div', { className: 'actions' }, buttons)]);
  }

  function row(p) {
    const account = el('span', { className: 'account', title: p.account, text: shortAccount(p.account) });
    const dataset = { account: p.account, participant: String(p.id) };
    return el('tr', { role: 'row', dataset }, [
      el('th', { scope: 'row', role: 'rowheader' }, [account]),
      yesNo('Moderator', p.moderator),
      yesNo('Speaking', p.voice_activity),
      yesNo('Hand raised', p.hand_raised),
      cell('Audio', audioText(p), p.audio_moderator_muted || p.audio_local_muted),
      cell('Video', videoText(p), p.video_moderator_muted || p.video_muted),
      yesNo('In lobby', p.in_lobby),
      yesNo('On hold', p.on_hold),
      actionsFor(p),
    ]);
  }

  /** Redraws the table when the participants changed, keeping keyboard focus in place. */
  function render(participants) {
    const list = Array.isArray(participants) ? participants : [];
    const count = list.length === 1 ? '1 participant' : `${list.length} participants`;
    if (ui.status.textContent !== count) {
      ui.status.textContent = count;
    }
    const snapshot = JSON.stringify(list);
    if (snapshot === session.rendered) {
      return;
    }
    session.rendered = snapshot;
    const focused = document.activeElement;
    const focusedRow = focused && ui.tbody.contains(focused) ? focused.closest('tr') : null;
    const restore = focusedRow && {
      participant: focusedRow.dataset.participant,
      action: focused.dataset.action,
    };
    ui.tbody.replaceChildren(...list.map(row));
    if (restore) {
      const tr = ui.tbody.querySelector(`tr[data-participant="${CSS.escape(restore.participant)}"]`);
      const target = tr && (tr.querySelector(`button[data-action="${CSS.escape(restore.action || '')}"]`)
        || tr.querySelector('button'));
      (target || ui.table.parentElement).focus();
    }
  }

  /** What one participant button does: its API calls, and what to announce. */
  async function participantAction(button, tr) {
    const action = button.dataset.action;
    const set = button.dataset.set !== 'false';
    const id = tr.dataset.participant;
    const account = tr.dataset.account;
    const base = `${roomPath(session.room)}/participants/${encodeURIComponent(id)}`;
    switch (action) {
      case 'mute-audio':
        await api('POST', `${base}/mute`, { audio: set });
        return set ? 'Audio muted.' : 'Audio unmuted.';
      case 'mute-video':
        await api('POST', `${base}/mute`, { video: set });
        return set ? 'Video muted.' : 'Video unmuted.';
      case 'kick':
        await api('POST', `${base}/kick`);
        return 'Participant kicked.';
      case 'ban':
        await api('PUT', `${roomPath(session.room)}/bans/${encodeURIComponent(account)}`);
        try {
          await api('POST', `${base}/kick`);
        } catch (error) {
          // The ban may already have hung the account up.
          if (!(error instanceof ApiError) || error.status !== 404) {
            throw error;
          }
        }
        return 'Account banned and kicked.';
      case 'admit':
        await api('POST', `${base}/admit`);
        return 'Participant admitted.';
      case 'lower-hand':
        await api('POST', `${base}/lower-hand`);
        return 'Hand lowered.';
      case 'make-moderator': {
        const path = `${roomPath(session.room)}/moderators/${encodeURIComponent(account)}`;
        await api(set ? 'PUT' : 'DELETE', path);
        return set ? 'Moderator added.' : 'Moderator removed.';
      }
      default:
        throw new Error(`unknown action ${action}`);
    }
  }

  /**
   * Runs a user's action: clears old messages, shows the outcome, refreshes the table. The
   * button is marked busy (not disabled: that would take keyboard focus away) and a second
   * click meanwhile is ignored.
   */
  async function perform(button, work, afterwards) {
    if (button.getAttribute('aria-disabled') === 'true') {
      return;
    }
    clearError();
    notify('');
    button.setAttribute('aria-disabled', 'true');
    try {
      notify(await work());
    } catch (error) {
      showError(error);
      if (error instanceof ApiError && error.status === 401) {
        forget();
        ui.token.focus();
        return;
      }
    } finally {
      button.removeAttribute('aria-disabled');
    }
    refresh();
    if (afterwards) {
      afterwards().catch((error) => showError(error, true));
    }
  }

  // ---- Wiring -------------------------------------------------------------------------

  ui.signInForm.addEventListener('submit', (event) => {
    event.preventDefault();
    clearError();
    notify('');
    const token = ui.token.value.trim();
    const room = ui.roomName.value.trim();
    if (!token) {
      showError(new ApiError(0, 'token_needed', 'Type a token to sign in.'));
      ui.token.focus();
      return;
    }
    signIn(token, room);
  });

  ui.signOut.addEventListener('click', signOut);

  ui.back.addEventListener('click', () => {
    clearError();
    notify('');
    listRooms();
  });

  ui.roomList.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-room]');
    if (!button) {
      return;
    }
    clearError();
    notify('');
    openRoom(button.dataset.room).catch(showError);
  });

  ui.tbody.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const tr = button && button.closest('tr');
    if (!button || !tr || !session.room) {
      return;
    }
    perform(button, () => participantAction(button, tr));
  });

  ui.layoutForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const layout = ui.layout.value;
    perform($('layout-apply'), async () => {
      await api('PUT', `${roomPath(session.room)}/layout`, { layout });
      return 'Layout changed.';
    }, refreshDetail);
  });

  ui.lock.addEventListener('click', () => perform(ui.lock, async () => {
    await api('POST', `${roomPath(session.room)}/lock`);
    return 'Room locked.';
  }, refreshDetail));

  ui.unlock.addEventListener('click', () => perform(ui.unlock, async () => {
    await api('POST', `${roomPath(session.room)}/unlock`);
    return 'Room unlocked.';
  }, refreshDetail));

  ui.muteAll.addEventListener('click', () => perform(ui.muteAll, async () => {
    await api('POST', `${roomPath(session.room)}/mute-all`);
    return 'Everyone but the moderators muted.';
  }));

  ui.chatForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.chatText.value;
    if (!text.trim()) {
      showError(new ApiError(0, 'text_needed', 'Type a message to send.'));
      ui.chatText.focus();
      return;
    }
    perform($('chat-send'), async () => {
      await api('POST', `${roomPath(session.room)}/chat`, { text });
      ui.chatText.value = '';
      return 'Message sent.';
    });
  });

  // Back in a tab that was signed in: sign in again with the kept token (and room).
  const keptToken = sessionStorage.getItem(TOKEN_KEY);
  if (keptToken) {
    const keptRoom = sessionStorage.getItem(ROOM_KEY) || '';
    ui.roomName.value = keptRoom;
    signIn(keptToken, keptRoom);
  } else {
    show(ui.signInView);
  }
})();
