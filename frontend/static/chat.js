// The chat page: conversation list, conversation pane, composer, and the streamed turn.
// Server data arrives in the #initial-state JSON block; everything after that goes through same-origin /api/.

import { ApiError, api, apiJson } from './js/api.js';
import { copyText, h } from './js/dom.js';
import { ApprovalCard } from './js/approvals.js';
import { InteractionCard } from './js/interactions.js';
import { AssistantView, reasonText, renderHistory, turnError, userMessage } from './js/messages.js';
import { PromptPicker } from './js/prompts.js';
import { Attachments, ResourcePicker, ResourceViewer, resourceRef } from './js/resources.js';
import { Sidebar } from './js/sidebar.js';
import { followEvents } from './js/sse.js';

const APP_NAME = 'MCP Assistant';
const LIST_LIMIT = 50;
const STICKY_PX = 48; // this close to the bottom counts as "following the reply"
const STOP_GRACE_MS = 2000; // after asking to stop, how long the stream may take to end by itself
const COMPOSER_MAX_PX = 240;

const $ = (id) => document.getElementById(id);
const els = {
  messages: $('messages'),
  scroller: $('messages-scroll'),
  empty: $('empty-state'),
  title: $('conversation-title'),
  form: $('composer'),
  input: $('composer-input'),
  send: $('send-button'),
  stop: $('stop-button'),
  hint: $('composer-hint'),
  jump: $('jump-to-latest'),
  live: $('live-status'),
  toast: $('toast'),
  toastText: $('toast-text'),
  toastClose: $('toast-close'),
  newChat: $('new-chat'),
  attachmentList: $('composer-attachments'),
  attach: $('attach-resource'),
  resourcePanel: $('resource-panel'),
  promptButton: $('prompt-picker'),
  promptPanel: $('prompt-panel'),
  resourceDialog: $('resource-dialog'),
};
const defaultHint = els.hint.textContent;

const initial = JSON.parse($('initial-state').textContent || '{}');
const state = {
  currentId: null, // the conversation shown, or null on the start page
  loading: 0, // bumps on every navigation so a late answer for another conversation is ignored
  turn: null, // the reply being streamed, if any (see runTurn); one at a time
  following: true,
};

// ---------------------------------------------------------------- small UI pieces

let toastTimer = 0;
function toast(message) {
  els.toastText.textContent = message;
  els.toast.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => (els.toast.hidden = true), 8000);
}
els.toastClose.addEventListener('click', () => (els.toast.hidden = true));

function announce(message) {
  els.live.textContent = message;
}

// On touch screens focusing the composer would pop up the keyboard over the conversation.
const COARSE_POINTER = window.matchMedia('(pointer: coarse)');
function focusComposer() {
  if (!COARSE_POINTER.matches) els.input.focus();
}

function setTitle(title) {
  els.title.textContent = title;
  document.title = `${title} · ${APP_NAME}`;
}

function updateEmptyState() {
  els.empty.hidden = els.messages.childElementCount > 0;
}

// ---------------------------------------------------------------- scrolling

function atBottom() {
  const { scrollTop, scrollHeight, clientHeight } = els.scroller;
  return scrollHeight - scrollTop - clientHeight < STICKY_PX;
}

function scrollToBottom() {
  els.scroller.scrollTop = els.scroller.scrollHeight;
  state.following = true;
  els.jump.hidden = true;
}

function afterRender() {
  updateEmptyState();
  if (state.following) scrollToBottom();
  else els.jump.hidden = false;
}

els.scroller.addEventListener('scroll', () => {
  state.following = atBottom();
  if (state.following) els.jump.hidden = true;
});
els.jump.addEventListener('click', () => {
  scrollToBottom();
  focusComposer();
});

// ---------------------------------------------------------------- composer

function autosize() {
  els.input.style.height = 'auto';
  els.input.style.height = `${Math.min(els.input.scrollHeight, COMPOSER_MAX_PX)}px`;
}

function updateComposer() {
  const turn = state.turn;
  const here = turn !== null && turn.conversationId === state.currentId;
  const elsewhere = turn !== null && !here;
  const stopHadFocus = document.activeElement === els.stop;
  els.stop.hidden = !here;
  // aria-disabled, not disabled: a disabled button drops the keyboard focus to <body>.
  els.stop.setAttribute('aria-disabled', String(here && turn.stopping));
  els.send.hidden = here;
  els.send.disabled = turn !== null || els.input.value.trim() === '';
  els.hint.textContent = elsewhere ? 'A reply is still being written in another conversation.' : defaultHint;
  if (stopHadFocus && els.stop.hidden) els.input.focus();
}

function setTurnState(value) {
  document.body.dataset.turnState = value;
}

els.input.addEventListener('input', () => {
  autosize();
  updateComposer();
});
els.input.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.altKey) return;
  event.preventDefault();
  send();
});
els.form.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
els.stop.addEventListener('click', () => stopTurn());

// Resources attached to the next message, and the prompt picker that fills the text box.
const attachments = new Attachments({ list: els.attachmentList, input: els.input, onChange: () => afterRender() });
const resourcePicker = new ResourcePicker({
  trigger: els.attach,
  panel: els.resourcePanel,
  attachments,
  onDone: () => (COARSE_POINTER.matches ? els.attach : els.input).focus(),
});
const promptPicker = new PromptPicker({
  trigger: els.promptButton,
  panel: els.promptPanel,
  onUse: (text) => {
    // Added to what is already written, never over it.
    const current = els.input.value.trimEnd();
    els.input.value = current ? `${current}\n\n${text}` : text;
    autosize();
    updateComposer();
    els.input.focus();
    els.input.setSelectionRange(els.input.value.length, els.input.value.length);
  },
});
const resourceViewer = new ResourceViewer(els.resourceDialog);

// ---------------------------------------------------------------- navigation

function conversationPath(id) {
  return `/c/${encodeURIComponent(id)}`;
}

function idFromPath(pathname) {
  const match = /^\/c\/([^/]+)\/?$/.exec(pathname);
  return match ? decodeURIComponent(match[1]) : null;
}

function navigate(path, push) {
  if (push && location.pathname !== path) history.pushState(null, '', path);
}

/** Put elements for `conversation` (its stored messages, plus the live reply if it is the one running). */
function showConversation(conversation) {
  state.currentId = conversation.id;
  sidebar.setActive(conversation.id);
  setTitle(conversation.title);
  let messages = conversation.messages ?? [];
  const live = state.turn && state.turn.conversationId === conversation.id ? state.turn.view : null;
  // A reply still being written (this page was reloaded, or it runs for another tab): follow it live.
  const attach = !live && !state.turn && conversation.running_turn ? conversation.id : null;
  if (live || attach) {
    // The running reply is shown by its live view; the steps of it already stored would show twice.
    const lastUser = messages.findLastIndex((message) => message.role === 'user');
    messages = messages.slice(0, lastUser + 1);
  }
  els.messages.replaceChildren(...renderHistory(messages));
  if (live) els.messages.append(live.element);
  updateComposer();
  state.following = true;
  afterRender();
  if (attach) attachTurn(attach);
  else if (!live && messages.length) showWaitingQuestions(conversation.id);
}

/**
 * Questions a server and tool calls are waiting for in this conversation, when its reply runs elsewhere (another
 * tab, or before the page was loaded again): without that reply's stream there is no tool card to put them under,
 * nor an end to wait for, so they go at the bottom.
 */
async function showWaitingQuestions(conversationId) {
  const ticket = state.loading;
  const path = `/conversations/${encodeURIComponent(conversationId)}`;
  let waiting;
  let approvals;
  try {
    [waiting, approvals] = await Promise.all([apiJson(`${path}/interactions`), apiJson(`${path}/approvals`)]);
  } catch {
    return; // only a convenience: the reply's own tab shows them
  }
  if (!(waiting?.length || approvals?.length) || ticket !== state.loading || state.currentId !== conversationId) return;
  if (state.turn?.conversationId === conversationId) return; // this tab's own reply shows them
  const cards = [
    ...(approvals ?? []).map((request) => new ApprovalCard({ ...request, conversationId })),
    ...(waiting ?? []).map((request) => new InteractionCard({ ...request, conversationId })),
  ];
  els.messages.append(
    h(
      'article',
      { class: 'message assistant', 'aria-label': 'Assistant' },
      h('div', { class: 'message-body' }, ...cards.map((card) => card.element)),
    ),
  );
  afterRender();
}

function showStart() {
  state.currentId = null;
  state.loading += 1;
  sidebar.setActive(null);
  setTitle('New chat');
  els.messages.replaceChildren();
  updateComposer();
  afterRender();
}

async function openConversation(id, { push = true } = {}) {
  sidebar.close({ restoreFocus: false });
  if (id === state.currentId) {
    navigate(conversationPath(id), push);
    focusComposer();
    return;
  }
  const ticket = ++state.loading;
  state.currentId = id;
  sidebar.setActive(id);
  navigate(conversationPath(id), push);
  els.messages.replaceChildren();
  els.messages.setAttribute('aria-busy', 'true');
  setTitle(sidebar.title(id) ?? 'Conversation');
  updateComposer();
  try {
    const conversation = await apiJson(`/conversations/${encodeURIComponent(id)}`);
    if (ticket !== state.loading) return;
    showConversation(conversation);
    focusComposer();
  } catch (error) {
    if (ticket !== state.loading) return;
    const message =
      error instanceof ApiError && error.status === 404
        ? 'This conversation does not exist or is not yours.'
        : error.message;
    els.messages.replaceChildren(turnError(message));
    updateEmptyState();
  } finally {
    if (ticket === state.loading) els.messages.removeAttribute('aria-busy');
  }
}

async function createConversation() {
  const conversation = await apiJson('/conversations', { method: 'POST', json: {} });
  sidebar.upsert(conversation);
  return conversation;
}

async function newChat() {
  sidebar.close({ restoreFocus: false });
  try {
    const conversation = await createConversation();
    state.loading += 1;
    navigate(conversationPath(conversation.id), true);
    showConversation({ ...conversation, messages: [] });
    focusComposer();
  } catch (error) {
    toast(error.message);
  }
}

async function refreshList() {
  try {
    sidebar.setConversations(await apiJson(`/conversations?limit=${LIST_LIMIT}`));
    if (state.currentId) {
      const title = sidebar.title(state.currentId);
      if (title) setTitle(title);
    }
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) console.warn('could not refresh the list:', error);
  }
}

async function renameConversation(id, title) {
  try {
    const conversation = await apiJson(`/conversations/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      json: { title },
    });
    sidebar.upsert(conversation);
    if (id === state.currentId) setTitle(conversation.title);
  } catch (error) {
    toast(`Could not rename the conversation: ${error.message}`);
  }
}

async function deleteConversation(id) {
  const title = sidebar.title(id) ?? 'this conversation';
  if (!window.confirm(`Delete “${title}”? Its messages are deleted too.`)) return;
  try {
    await api(`/conversations/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch (error) {
    toast(`Could not delete the conversation: ${error.message}`);
    return;
  }
  sidebar.focusNeighbour(id);
  sidebar.remove(id);
  if (id === state.currentId) {
    navigate('/', true);
    showStart();
  }
}

window.addEventListener('popstate', () => {
  const id = idFromPath(location.pathname);
  if (id) openConversation(id, { push: false });
  else showStart();
});

// ---------------------------------------------------------------- a turn

async function send() {
  const text = els.input.value;
  if (!text.trim() || state.turn) return;
  let conversationId = state.currentId;
  if (!conversationId) {
    try {
      const conversation = await createConversation();
      conversationId = conversation.id;
      state.loading += 1;
      navigate(conversationPath(conversationId), true);
      showConversation({ ...conversation, messages: [] });
    } catch (error) {
      toast(error.message);
      return;
    }
  }
  els.input.value = '';
  autosize();
  await runTurn(conversationId, text, attachments.take());
}

function handleEvent(turn, { event, data }) {
  let payload;
  try {
    payload = JSON.parse(data);
  } catch {
    return; // not one of ours
  }
  const view = turn.view;
  switch (event) {
    case 'message_start':
      // Again: the reply was taken over after a restart and is told from its start.
      if (turn.started) view.reset();
      turn.started = true;
      refreshList(); // the first message names the conversation
      if (turn.attached.length) showStoredUserMessage(turn, payload.user_message_id);
      break;
    case 'token':
      view.appendText(payload.text ?? '');
      break;
    case 'tool_call_started':
      view.addToolCall({
        id: payload.id,
        name: payload.name,
        serverId: payload.server_id,
        tool: payload.tool,
        arguments: payload.arguments,
      });
      break;
    case 'tool_call_progress':
      view.card(payload.id)?.progress(payload);
      break;
    case 'tool_call_finished':
      view.card(payload.id)?.finish(payload);
      view.onRender();
      break;
    case 'interaction_requested': {
      const card = view.addInteraction(payload, turn.conversationId);
      announce(`${payload.server_id} asks you something; answer it in the conversation.`);
      if (card.element.isConnected) card.focus();
      break;
    }
    case 'interaction_ended':
      view.interaction(payload.id)?.end(payload.outcome);
      break;
    case 'approval_requested': {
      const card = view.addApproval(payload, turn.conversationId);
      announce(`The tool ${payload.tool} waits for your approval; decide in the conversation.`);
      if (card.element.isConnected) card.focus();
      break;
    }
    case 'approval_ended':
      view.interaction(payload.id)?.end(payload.decision);
      break;
    case 'error':
      turn.lastError = payload.message;
      view.error(reasonText(payload.message, 'The reply failed.'));
      break;
    case 'message_end':
      turn.ended = true;
      view.end(payload);
      break;
    default:
      break;
  }
}

/** The user's message as stored, with the attached resources the server appended: replaces the one shown. */
async function showStoredUserMessage(turn, messageId) {
  let conversation;
  try {
    conversation = await apiJson(`/conversations/${encodeURIComponent(turn.conversationId)}`);
  } catch {
    return; // the message as sent stays; a reload shows the stored one
  }
  const stored = conversation.messages?.find((message) => message.id === messageId);
  if (!stored) return;
  const replacement = userMessage(stored.content);
  turn.userEl.replaceWith(replacement);
  turn.userEl = replacement;
  afterRender();
}

async function runTurn(conversationId, text, attached = []) {
  const view = new AssistantView({
    live: true,
    onRender: () => {
      if (view.element.isConnected) afterRender();
    },
  });
  const turn = newTurn(conversationId, view, attached);
  state.turn = turn;
  setTurnState('streaming');
  announce('The assistant is replying.');
  const userEl = userMessage(text, attached);
  turn.userEl = userEl;
  els.messages.append(userEl, view.element);
  state.following = true;
  afterRender();
  updateComposer();

  let response = null;
  try {
    response = await api(`/conversations/${encodeURIComponent(conversationId)}/messages`, {
      method: 'POST',
      json: attached.length ? { content: text, attachments: attached.map(resourceRef) } : { content: text },
      accept: 'text/event-stream',
      signal: turn.controller.signal,
    });
  } catch (error) {
    // Nothing started: keep the message on screen and give the text back to edit or resend.
    view.element.remove();
    if (error?.name === 'AbortError') {
      userEl.after(turnError('Stopped before the reply started.'));
    } else {
      userEl.after(turnError(error.message));
    }
    if (!els.input.value) {
      els.input.value = text;
      autosize();
    }
    attachments.restore(attached);
    finishTurn(turn, 'The message was not answered.');
    return;
  }

  await readReply(turn, response);
}

function newTurn(conversationId, view, attached = []) {
  return {
    conversationId,
    view,
    controller: new AbortController(),
    started: false, // message_start arrived
    ended: false, // message_end arrived
    gone: false, // the server has no more of it to send (it ended while we were away)
    stopping: false,
    stopTimer: 0,
    lastError: null,
    attached, // resources sent with the message
    userEl: null,
  };
}

/** Follow a reply being written that this page did not start (after a reload, or from another tab). */
async function attachTurn(conversationId) {
  const view = new AssistantView({
    live: true,
    onRender: () => {
      if (view.element.isConnected) afterRender();
    },
  });
  const turn = newTurn(conversationId, view);
  turn.started = true; // the message is stored: Stop asks the server
  state.turn = turn;
  setTurnState('streaming');
  els.messages.append(view.element);
  afterRender();
  updateComposer();
  await readReply(turn, null);
}

/**
 * Show a reply's events until it ends. A stream that breaks (a network change, a proxy, a restarting server) is
 * opened again after the last event seen, with growing pauses, so the rest of the answer shows, and only once.
 */
async function readReply(turn, response) {
  const id = encodeURIComponent(turn.conversationId);
  const open = async (lastId) => {
    const after = lastId ? `?after=${encodeURIComponent(lastId)}` : '';
    const answer = await api(`/conversations/${id}/events${after}`, {
      accept: 'text/event-stream',
      signal: turn.controller.signal,
    });
    if (answer.status === 204) {
      turn.gone = true;
      return null;
    }
    return answer;
  };
  const events = followEvents(open, {
    initial: response,
    isDone: () => turn.ended,
    signal: turn.controller.signal,
    // Worth another try: the network, or a server (or proxy) that is restarting; not a refusal.
    retryable: (error) => !(error instanceof ApiError) || error.status === 0 || error.status >= 500,
  });
  try {
    for await (const event of events) handleEvent(turn, event);
    if (turn.gone && !turn.ended) {
      turn.view.end({ status: 'complete' }); // the stored conversation, shown below, has the rest
    } else if (!turn.ended) {
      // A turn that fails outright sends an `error` event and no message_end.
      turn.view.end({ status: 'error', reason: turn.lastError ?? 'the connection was lost before the reply finished' });
    }
  } catch (error) {
    if (turn.ended) {
      // the reply was complete; only the closing of the stream failed
    } else if (error?.name === 'AbortError') {
      turn.view.end({ status: 'incomplete', reason: 'stopped' });
    } else {
      turn.view.end({ status: 'error', reason: 'the connection was lost before the reply finished' });
    }
  }
  finishTurn(turn, 'The reply is finished.');
  refreshList();
  // It ended while the page was away: the stored conversation has the whole reply.
  if (turn.gone && !turn.ended && state.currentId === turn.conversationId) reloadConversation(turn.conversationId);
}

async function reloadConversation(id) {
  const ticket = ++state.loading;
  try {
    const conversation = await apiJson(`/conversations/${encodeURIComponent(id)}`);
    if (ticket === state.loading && state.currentId === id) showConversation(conversation);
  } catch {
    // the reply as shown stays; opening the conversation again shows the stored one
  }
}

function finishTurn(turn, message) {
  window.clearTimeout(turn.stopTimer);
  if (state.turn === turn) state.turn = null;
  setTurnState('idle');
  announce(message);
  updateComposer();
  afterRender();
}

async function stopTurn() {
  const turn = state.turn;
  if (!turn || turn.stopping) return;
  turn.stopping = true;
  updateComposer();
  if (!turn.started) {
    turn.controller.abort();
    // The reply runs on the server once the message is stored, whether or not anyone listens.
    apiJson(`/conversations/${encodeURIComponent(turn.conversationId)}/stop`, { method: 'POST' }).catch(() => {});
    return;
  }
  // Ask the server first, so that it ends the stream with what was written; abort if that takes too long.
  try {
    const answer = await apiJson(`/conversations/${encodeURIComponent(turn.conversationId)}/stop`, {
      method: 'POST',
    });
    if (!answer?.stopped) turn.controller.abort();
  } catch {
    turn.controller.abort();
  }
  turn.stopTimer = window.setTimeout(() => turn.controller.abort(), STOP_GRACE_MS);
}

// ---------------------------------------------------------------- clicks and keys

els.messages.addEventListener('click', (event) => {
  const link = event.target.closest('button.resource-link');
  if (link) resourceViewer.show(link.dataset.serverId, link.dataset.uri);
});

els.messages.addEventListener('click', async (event) => {
  const button = event.target.closest('button.copy-code');
  if (!button) return;
  const code = button.closest('.code-block')?.querySelector('pre');
  const label = button.querySelector('.copy-code-label');
  try {
    await copyText(code?.textContent ?? '');
    label.textContent = 'Copied';
  } catch {
    label.textContent = 'Copy failed';
  }
  window.setTimeout(() => (label.textContent = 'Copy'), 1500);
});

els.newChat.addEventListener('click', () => newChat());

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') {
    if (resourcePicker.isOpen || promptPicker.isOpen) {
      resourcePicker.close();
      promptPicker.close();
    } else if (sidebar.isOpen) {
      sidebar.close();
    } else if (state.turn && state.turn.conversationId === state.currentId) {
      event.preventDefault();
      stopTurn();
    }
  } else if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === 'o') {
    event.preventDefault();
    newChat();
  }
});

// ---------------------------------------------------------------- start

const sidebar = new Sidebar({
  onSelect: (id) => openConversation(id),
  onRename: renameConversation,
  onDelete: deleteConversation,
});
sidebar.setConversations(initial.conversations ?? []);
setTurnState('idle');
if (initial.conversation) {
  showConversation(initial.conversation);
} else {
  showStart();
}
autosize();
updateComposer();
focusComposer();
