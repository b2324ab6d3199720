// Questions an MCP server asks during a tool call, as a card under that call's card: a form to fill in or a link to
// open (elicitation), a request to let the server use the model (sampling), or a protected server's sign-in page
// (authorization: the card ends by itself once the server's pages send the user back). The answer goes to
// POST /api/conversations/<id>/interactions/<id>; the stream's `interaction_ended` then says how the question ended.
// Everything in a card comes from a server, so all of it is inserted as text; a link opens only when clicked.

import { ApiError, api } from './api.js';
import { h } from './dom.js';
import { SchemaForm } from './schemaform.js';

const COARSE_POINTER = window.matchMedia('(pointer: coarse)');
const TICK_MS = 1000;
const LINK_PROTOCOLS = new Set(['https:', 'http:']);

const OUTCOMES = {
  elicitation: { accept: 'Answered', decline: 'Declined', cancel: 'Cancelled' },
  sampling: { accept: 'Allowed', decline: 'Refused', cancel: 'Cancelled' },
  authorization: { accept: 'Signed in', decline: 'Not signed in', cancel: 'Not signed in', failed: 'Sign-in failed' },
};
const OTHER_OUTCOMES = { timeout: 'Timed out', refused: 'Refused by the assistant' };

let cardCount = 0;

/** 45 s, 4:05 */
function formatRemaining(seconds) {
  const whole = Math.max(0, Math.ceil(seconds));
  return whole < 60 ? `${whole} s` : `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

function openableUrl(text) {
  try {
    const url = new URL(text);
    return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function button(label, { primary = false, type = 'button' } = {}) {
  return h('button', { type, class: primary ? 'button primary small' : 'button small', text: label });
}

export class InteractionCard {
  /**
   * @param {{id: string, kind: 'elicitation'|'sampling', server_id?: string, tool_call_id?: string,
   *   details: object, timeout_seconds?: number, conversationId: string}} request
   */
  constructor({ id, kind, server_id: serverId, tool_call_id: toolCallId, details, timeout_seconds, conversationId }) {
    cardCount += 1;
    this.id = id;
    this.kind = kind;
    this.toolCallId = toolCallId ?? null;
    this.conversationId = conversationId;
    this.details = details ?? {};
    this.busy = false;
    this.sent = null; // {action, content} once the server took the answer
    this.timer = 0;
    this.form = null; // the SchemaForm of a form question
    this.instructions = null; // what to do, for a link; goes with the controls

    const titleId = `interaction-${cardCount}-title`;
    const server = serverId || 'a server';
    this.statusEl = h('span', { class: 'interaction-card-status', text: 'Waiting for your answer' });
    this.countdownEl = h('span', { class: 'interaction-card-countdown', role: 'timer', hidden: true });
    this.errorEl = h('p', { class: 'interaction-card-error', role: 'alert', hidden: true });
    this.controls = h('div', { class: 'interaction-card-controls' });
    this.actions = h('div', { class: 'interaction-card-actions' });

    let title;
    if (kind === 'sampling') {
      title = `The server ${server} asks to use the model`;
      this.buildSampling();
    } else if (kind === 'authorization') {
      title = `Sign in to ${server}`;
      this.statusEl.textContent = 'Waiting for you to sign in';
      this.buildSignIn();
    } else if (this.details.mode === 'url') {
      title = `The server ${server} asks you to open a link`;
      this.buildUrl();
    } else {
      title = `A question from the server ${server}`;
      this.buildForm();
    }
    const message = typeof this.details.message === 'string' ? this.details.message : '';
    this.element = h(
      'section',
      {
        class: 'interaction-card',
        dataset: { interactionId: id, kind, state: 'waiting' },
        'aria-labelledby': titleId,
        tabindex: '-1',
      },
      h(
        'div',
        { class: 'interaction-card-header' },
        h('h3', { class: 'interaction-card-title', id: titleId, text: title }),
        h('span', { class: 'interaction-card-meta' }, this.statusEl, this.countdownEl),
      ),
      message ? h('p', { class: 'interaction-card-message', text: message }) : null,
      this.controls,
      this.errorEl,
    );
    // Esc in a field here must not stop the whole reply (the page's shortcut).
    this.element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') event.stopPropagation();
    });
    if (typeof timeout_seconds === 'number' && timeout_seconds > 0) this.startCountdown(timeout_seconds);
  }

  get state() {
    return this.element.dataset.state;
  }

  // ---- the three kinds ----

  buildForm() {
    this.form = new SchemaForm(this.details.requested_schema ?? {});
    const submit = button('Submit', { primary: true, type: 'submit' });
    const decline = button('Decline');
    const cancel = button('Cancel');
    decline.addEventListener('click', () => this.answer('decline'));
    cancel.addEventListener('click', () => this.answer('cancel'));
    this.actions.append(submit, decline, cancel);
    const form = h('form', { class: 'interaction-form', novalidate: true }, this.form.element, this.actions);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const { content, problem, field } = this.form.read();
      if (problem) {
        this.showError(problem);
        field.focusTarget?.focus();
        return;
      }
      this.answer('accept', content);
    });
    this.controls.append(form);
  }

  buildUrl() {
    const url = typeof this.details.url === 'string' ? this.details.url : '';
    this.instructions = h('p', { class: 'interaction-hint', text: 'Open the link, finish there, then choose Done.' });
    const open = button('Open link');
    const done = button('Done', { primary: true });
    const decline = button('Decline');
    open.addEventListener('click', () => {
      const href = openableUrl(url);
      if (!href) {
        this.showError('This link cannot be opened from here.');
        return;
      }
      window.open(href, '_blank', 'noopener,noreferrer');
    });
    done.addEventListener('click', () => this.answer('accept'));
    decline.addEventListener('click', () => this.answer('decline'));
    this.actions.append(open, done, decline);
    this.controls.append(
      h(
        'div',
        { class: 'interaction-url' },
        h('span', { class: 'interaction-label', text: 'Link' }),
        h('code', { class: 'interaction-url-text', text: url }),
      ),
      this.instructions,
      this.actions,
    );
  }

  buildSignIn() {
    const url = typeof this.details.url === 'string' ? this.details.url : '';
    this.instructions = h('p', {
      class: 'interaction-hint',
      text: 'The sign-in page opens in a new tab. When it sends you back, the reply goes on by itself.',
    });
    const open = button('Sign in', { primary: true });
    const cancel = button('Cancel');
    open.addEventListener('click', () => {
      const href = openableUrl(url);
      if (!href) {
        this.showError('This sign-in page cannot be opened from here.');
        return;
      }
      // noopener: the server's pages get no handle on this one.
      window.open(href, '_blank', 'noopener');
      this.statusEl.textContent = 'Waiting for the sign-in to finish…';
    });
    cancel.addEventListener('click', () => this.answer('decline'));
    this.actions.append(open, cancel);
    this.controls.append(
      h(
        'div',
        { class: 'interaction-url' },
        h('span', { class: 'interaction-label', text: 'Sign-in page' }),
        h('code', { class: 'interaction-url-text', text: openableUrl(url) ? new URL(url).origin : url }),
      ),
      this.instructions,
      this.actions,
    );
  }

  buildSampling() {
    const { system_prompt: systemPrompt, messages, max_tokens: maxTokens } = this.details;
    const parts = [];
    if (systemPrompt) {
      parts.push(
        h('div', { class: 'interaction-label', text: 'System prompt' }),
        h('pre', { class: 'interaction-text', text: String(systemPrompt) }),
      );
    }
    for (const message of Array.isArray(messages) ? messages : []) {
      parts.push(
        h('div', { class: 'interaction-label', text: message?.role === 'assistant' ? 'Assistant' : 'User' }),
        h('pre', { class: 'interaction-text', text: String(message?.text ?? '') }),
      );
    }
    if (typeof maxTokens === 'number') {
      parts.push(h('p', { class: 'interaction-hint', text: `The reply may use up to ${maxTokens} tokens.` }));
    }
    const allow = button('Allow', { primary: true });
    const refuse = button('Refuse');
    allow.addEventListener('click', () => this.answer('accept'));
    refuse.addEventListener('click', () => this.answer('decline'));
    this.actions.append(allow, refuse);
    this.controls.append(h('div', { class: 'interaction-sampling' }, ...parts), this.actions);
  }

  // ---- time ----

  startCountdown(seconds) {
    const deadline = performance.now() + seconds * 1000;
    const show = () => {
      const left = (deadline - performance.now()) / 1000;
      this.countdownEl.textContent = left > 0 ? `${formatRemaining(left)} left` : 'Time is up';
      if (left <= 0) this.stopCountdown();
    };
    this.countdownEl.hidden = false;
    show();
    this.timer = window.setInterval(show, TICK_MS);
  }

  stopCountdown() {
    window.clearInterval(this.timer);
    this.timer = 0;
  }

  // ---- answering ----

  /** Move the focus into the card: its first field (not on touch screens, where that opens the keyboard). */
  focus() {
    const field = COARSE_POINTER.matches ? null : this.form?.firstControl;
    (field ?? this.element).focus();
  }

  setBusy(busy) {
    this.busy = busy;
    for (const control of this.actions.querySelectorAll('button')) control.disabled = busy;
    this.form?.setDisabled(busy);
  }

  showError(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }

  async answer(action, content) {
    if (this.busy || this.state !== 'waiting') return;
    this.showError('');
    this.setBusy(true);
    const body = action === 'accept' && content !== undefined ? { action, content } : { action };
    const conversation = encodeURIComponent(this.conversationId);
    const path = `/conversations/${conversation}/interactions/${encodeURIComponent(this.id)}`;
    try {
      await api(path, { method: 'POST', json: body });
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        this.answered(null, 'This question was already answered.');
      } else if (error instanceof ApiError && error.status === 404) {
        this.end(null, 'This question is no longer waiting for an answer.');
      } else {
        // 422 (the answer does not fit the form) and network errors: say why and keep what was filled in.
        this.setBusy(false);
        this.showError(error.message);
      }
      return;
    }
    this.answered({ action, content });
  }

  /** The server took the answer; the tool call goes on, and `interaction_ended` will follow on the stream. */
  answered(sent, note = 'Sent. Waiting for the server…') {
    this.sent = sent;
    this.stopCountdown();
    this.countdownEl.hidden = true;
    this.element.dataset.state = 'answered';
    this.statusEl.textContent = note;
    this.setBusy(true);
    this.busy = false;
  }

  /** The question is over (`outcome`: accept, decline, cancel, timeout, refused), or `label` says why. */
  end(outcome, label) {
    if (this.state === 'ended') return;
    const hadFocus = this.element.contains(document.activeElement);
    this.stopCountdown();
    this.countdownEl.hidden = true;
    this.element.dataset.state = 'ended';
    if (outcome) this.element.dataset.outcome = outcome;
    this.statusEl.textContent = label ?? OUTCOMES[this.kind]?.[outcome] ?? OTHER_OUTCOMES[outcome] ?? 'Ended';
    // The controls go; what was asked stays, and an accepted form keeps what was sent, as text.
    this.actions.remove();
    this.instructions?.remove();
    if (this.form) {
      const sent = outcome === 'accept' && this.sent?.content ? this.form.summary(this.sent.content) : [];
      const pairs = sent.flatMap(([name, value]) => [h('dt', { text: name }), h('dd', { text: value })]);
      this.controls.replaceChildren(...(pairs.length ? [h('dl', { class: 'interaction-answer' }, pairs)] : []));
    }
    this.showError('');
    if (hadFocus) this.element.focus();
  }

  /** The reply ended first (stopped, failed, or the stream was lost). */
  abandon() {
    if (this.state === 'waiting') this.end(null, 'Not answered: the reply ended');
    else if (this.state === 'answered') this.end(this.sent?.action ?? null, this.sent ? undefined : 'Answered');
  }
}
