// Messages in the conversation pane: the user's as plain text, the assistant's turn as Markdown with its tool
// cards in the order they happened. One `.message.assistant` holds a whole turn (every model step and tool call
// between two user messages), with exactly one `.message-body` inside.

import { h, sentence } from './dom.js';
import { ApprovalCard } from './approvals.js';
import { InteractionCard } from './interactions.js';
import { renderMarkdown } from './markdown.js';
import { ToolCard } from './toolcards.js';

// What the API appends to a message for each attached resource (orchestrator/mcp/contents.py, attachment_block).
const ATTACHED_RESOURCE = /<attached-resource server="([^"]*)" uri="([^"]*)">\n?([\s\S]*?)\n?<\/attached-resource>/g;

/** A stored user message: what the user wrote, and each attached resource as a collapsed block (all as text). */
function userMessageBody(text) {
  const body = h('div', { class: 'message-body' });
  let last = 0;
  for (const match of text.matchAll(ATTACHED_RESOURCE)) {
    const [block, server, uri, contents] = match;
    const before = text.slice(last, match.index);
    if (before.trim()) body.append(before.trimEnd());
    last = match.index + block.length;
    body.append(
      h(
        'details',
        { class: 'message-attachment' },
        h('summary', { title: server ? `From the server ${server}` : undefined, text: `Attached: ${uri}` }),
        h('pre', { class: 'message-attachment-text', text: contents }),
      ),
    );
  }
  const rest = last === 0 ? text : text.slice(last).trim();
  if (rest) body.append(rest);
  return body;
}

/**
 * A user's message. `attaching` lists resources the server is still to read and append (a message being sent);
 * stored messages carry them in their text already.
 */
export function userMessage(text, attaching = []) {
  const body = userMessageBody(text);
  for (const { uri } of attaching) {
    body.append(h('p', { class: 'message-attachment-pending', text: `Attached: ${uri}` }));
  }
  return h('article', { class: 'message user', 'aria-label': 'You' }, body);
}

/** A standalone error notice (a request that failed before any reply started). */
export function turnError(text) {
  return h('div', { class: 'turn-error', role: 'alert', text });
}

/** An API reason ("stopped before the reply finished") as a sentence; `fallback` when there is none. */
export function reasonText(reason, fallback) {
  const text = sentence(reason);
  if (!text) return fallback;
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

export class AssistantView {
  /** @param {{live?: boolean, onRender?: () => void}} options */
  constructor({ live = false, onRender = () => {} } = {}) {
    this.live = live;
    this.onRender = onRender;
    this.body = h('div', { class: 'message-body' });
    this.notes = h('div', { class: 'message-notes' });
    this.element = h('article', { class: 'message assistant', 'aria-label': 'Assistant' }, this.body, this.notes);
    this.segment = null; // the Markdown block that receives text: {el, text, dirty}
    this.segments = [];
    this.textSinceCard = ''; // the current model step's text, to compare with message_end's content
    this.cards = new Map();
    this.interactions = new Map();
    this.errors = new Set();
    this.frame = 0;
    if (live) {
      this.element.classList.add('is-streaming');
      this.typing = h(
        'div',
        { class: 'typing-indicator', 'aria-label': 'The assistant is thinking' },
        h('span'),
        h('span'),
        h('span'),
      );
      this.body.append(this.typing);
    }
  }

  /** Forget what was shown: the reply is told again from its start (it was resumed after a restart). */
  reset() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    for (const interaction of this.interactions.values()) interaction.abandon();
    this.body.replaceChildren();
    this.notes.replaceChildren();
    this.segment = null;
    this.segments = [];
    this.textSinceCard = '';
    this.cards = new Map();
    this.interactions = new Map();
    this.errors = new Set();
    if (this.typing) this.body.append(this.typing);
    this.onRender();
  }

  get isEmpty() {
    return this.segments.every((segment) => !segment.text) && this.cards.size === 0;
  }

  dropTyping() {
    this.typing?.remove();
    this.typing = null;
  }

  openSegment() {
    if (!this.segment) {
      this.dropTyping();
      this.segment = { el: h('div', { class: 'markdown' }), text: '', dirty: false };
      this.segments.push(this.segment);
      this.body.append(this.segment.el);
    }
    return this.segment;
  }

  /** Text streamed in: rendered at most once per animation frame. */
  appendText(text) {
    const segment = this.openSegment();
    segment.text += text;
    segment.dirty = true;
    this.textSinceCard += text;
    this.frame ||= requestAnimationFrame(() => {
      this.frame = 0;
      this.flush();
    });
  }

  /** A finished block of Markdown (history, or the final text of a step when no token arrived). */
  setText(text) {
    const segment = this.openSegment();
    segment.text = text;
    segment.dirty = true;
    this.flush();
  }

  flush() {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    for (const segment of this.segments) {
      if (!segment.dirty) continue;
      segment.dirty = false;
      segment.el.replaceChildren(renderMarkdown(segment.text));
    }
    this.onRender();
  }

  /** Text after a tool call starts a new block below the card. */
  closeSegment() {
    if (this.segment && !this.segment.text) {
      this.segment.el.remove();
      this.segments.pop();
    }
    this.segment = null;
  }

  addToolCall(call) {
    this.flush();
    this.closeSegment();
    this.dropTyping();
    this.textSinceCard = '';
    const card = new ToolCard({ ...call, open: this.live });
    this.cards.set(call.id, card);
    this.body.append(card.element);
    if (this.live) card.start();
    this.onRender();
    return card;
  }

  card(id) {
    return this.cards.get(id);
  }

  /** A call waiting for the user's approval (`approval_requested`), under its tool call's card like a question. */
  addApproval(request, conversationId) {
    return this.placeInteraction(request, new ApprovalCard({ ...request, conversationId }));
  }

  /** A server's question (`interaction_requested`), right under its tool call's card and earlier questions. */
  addInteraction(request, conversationId) {
    return this.placeInteraction(request, new InteractionCard({ ...request, conversationId }));
  }

  placeInteraction(request, interaction) {
    const siblings = [...this.interactions.values()].filter((other) => other.toolCallId === request.tool_call_id);
    const anchor = siblings.at(-1)?.element ?? this.cards.get(request.tool_call_id)?.element;
    if (anchor) {
      anchor.after(interaction.element);
    } else {
      this.flush();
      this.closeSegment();
      this.dropTyping();
      this.body.append(interaction.element);
    }
    this.interactions.set(request.id, interaction);
    this.onRender();
    return interaction;
  }

  interaction(id) {
    return this.interactions.get(id);
  }

  note(text) {
    this.notes.append(h('p', { class: 'message-note', text }));
    this.onRender();
  }

  /** An error notice; the same text twice (an `error` event, then message_end's reason) shows once. */
  error(text) {
    if (this.errors.has(text)) return;
    this.errors.add(text);
    this.notes.append(h('div', { class: 'turn-error', role: 'alert', text }));
    this.onRender();
  }

  /** The reply is over: render what is left, stop timers, say why it ended if it did not complete. */
  end({ status = 'complete', content = '', reason = null } = {}) {
    // `content` is the last model step's text; it only adds something when no token of it arrived.
    if (content && !this.textSinceCard) {
      this.openSegment().text = content;
      this.segment.dirty = true;
    }
    this.dropTyping();
    this.flush();
    this.closeSegment();
    for (const card of this.cards.values()) card.interrupt('The call did not finish before the reply ended.');
    for (const interaction of this.interactions.values()) interaction.abandon();
    if (status === 'error') this.error(reasonText(reason, 'The reply failed.'));
    else if (status === 'incomplete') {
      const why = reasonText(reason, 'Stopped.');
      if (!this.errors.has(why)) this.note(why);
    }
    this.element.classList.remove('is-streaming');
    this.live = false;
  }

  /** Add a stored assistant message: its text, then cards for its tool calls (filled by addToolResult). */
  addStoredMessage(message) {
    if (message.content) {
      this.closeSegment();
      this.setText(message.content);
    }
    for (const call of message.tool_calls ?? []) {
      this.addToolCall({ id: call.id, name: call.name, arguments: call.arguments });
    }
    this.closeSegment();
    if (message.status === 'error') this.error(reasonText(message.error, 'The reply failed.'));
    else if (message.status === 'incomplete') this.note(reasonText(message.error, 'Stopped.'));
  }

  addToolResult(message) {
    let card = this.cards.get(message.tool_call_id);
    if (!card) {
      card = this.addToolCall({ id: message.tool_call_id ?? '', name: message.tool_name ?? 'tool', arguments: '' });
    }
    card.finish({
      is_error: Boolean(message.is_error),
      result: message.content ?? '',
      truncated: false,
      duration_ms: message.duration_ms,
    });
  }
}

/** Elements for a stored conversation's messages, oldest first. */
export function renderHistory(messages) {
  const nodes = [];
  const views = [];
  let view = null;
  for (const message of messages) {
    if (message.role === 'user') {
      view = null;
      nodes.push(userMessage(message.content));
      continue;
    }
    if (!view) {
      view = new AssistantView();
      views.push(view);
      nodes.push(view.element);
    }
    if (message.role === 'assistant') view.addStoredMessage(message);
    else if (message.role === 'tool') view.addToolResult(message);
  }
  for (const stored of views) {
    for (const card of stored.cards.values()) card.interrupt('No result was stored: the call was interrupted.');
  }
  return nodes;
}
