// A tool call waiting for the user's approval, as a card under that call's card: the tool, its server and the
// call's full arguments, with "Allow once", "Allow in this conversation", "Always allow" and "Deny". The decision goes
// to POST /api/conversations/<id>/approvals/<id>; the stream's `approval_ended` then says how it ended. The tool's
// name and arguments come from the model and the server, so all of it is inserted as text.

import { ApiError, api } from './api.js';
import { h } from './dom.js';

const DECISIONS = [
  ['once', 'Allow once', true],
  ['conversation', 'Allow in this conversation', false],
  ['always', 'Always allow', false],
  ['deny', 'Deny', false],
];
const OUTCOMES = {
  once: 'Allowed once',
  conversation: 'Allowed in this conversation',
  always: 'Always allowed',
  deny: 'Denied',
  timeout: 'Timed out: the call did not run',
};

let cardCount = 0;

/** The arguments as indented JSON; the raw text when they are not JSON. */
function prettyArguments(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text ?? '');
  }
}

export class ApprovalCard {
  /**
   * @param {{id: string, tool_call_id: string, name: string, server_id: string, tool: string, arguments: string,
   *   conversationId: string}} request
   */
  constructor({ id, tool_call_id: toolCallId, server_id: serverId, tool, arguments: args, conversationId }) {
    cardCount += 1;
    this.id = id;
    this.kind = 'approval';
    this.toolCallId = toolCallId ?? null;
    this.conversationId = conversationId;
    this.busy = false;
    this.decision = null;

    const titleId = `approval-${cardCount}-title`;
    this.statusEl = h('span', { class: 'interaction-card-status', text: 'Waiting for your decision' });
    this.errorEl = h('p', { class: 'interaction-card-error', role: 'alert', hidden: true });
    this.actions = h('div', { class: 'interaction-card-actions' });
    for (const [decision, label, primary] of DECISIONS) {
      const control = h('button', {
        type: 'button',
        class: primary ? 'button primary small' : 'button small',
        text: label,
        dataset: { decision },
      });
      control.addEventListener('click', () => this.decide(decision));
      this.actions.append(control);
    }
    this.element = h(
      'section',
      {
        class: 'interaction-card approval-card',
        dataset: { approvalId: id, kind: 'approval', state: 'waiting' },
        'aria-labelledby': titleId,
        tabindex: '-1',
      },
      h(
        'div',
        { class: 'interaction-card-header' },
        h('h3', { class: 'interaction-card-title', id: titleId, text: `Allow the tool ${tool} to run?` }),
        h('span', { class: 'interaction-card-meta' }, this.statusEl),
      ),
      h(
        'dl',
        { class: 'approval-facts' },
        h('dt', { text: 'Tool' }),
        h('dd', {}, h('code', { class: 'approval-tool', text: String(tool ?? '') })),
        h('dt', { text: 'Server' }),
        h('dd', {}, h('code', { class: 'approval-server', text: String(serverId ?? '') })),
      ),
      h('div', { class: 'interaction-label', text: 'Arguments' }),
      h('pre', { class: 'interaction-text approval-arguments', text: prettyArguments(args) }),
      this.actions,
      this.errorEl,
    );
    this.element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') event.stopPropagation();
    });
  }

  get state() {
    return this.element.dataset.state;
  }

  focus() {
    this.element.focus();
  }

  showError(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }

  setBusy(busy) {
    this.busy = busy;
    for (const control of this.actions.querySelectorAll('button')) control.disabled = busy;
  }

  async decide(decision) {
    if (this.busy || this.state !== 'waiting') return;
    this.showError('');
    this.setBusy(true);
    const path = `/conversations/${encodeURIComponent(this.conversationId)}/approvals/${encodeURIComponent(this.id)}`;
    try {
      await api(path, { method: 'POST', json: { decision } });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
        this.end(null, 'This call is no longer waiting for a decision.');
      } else {
        this.setBusy(false);
        this.showError(error.message);
      }
      return;
    }
    this.decision = decision;
    this.element.dataset.state = 'answered';
    this.statusEl.textContent = OUTCOMES[decision];
  }

  /** The wait is over (`decision`: once, conversation, always, deny, timeout), or `label` says why. */
  end(decision, label) {
    if (this.state === 'ended') return;
    const hadFocus = this.element.contains(document.activeElement);
    this.element.dataset.state = 'ended';
    if (decision) this.element.dataset.outcome = decision;
    this.statusEl.textContent = label ?? OUTCOMES[decision] ?? 'Ended';
    this.actions.remove();
    this.showError('');
    if (hadFocus) this.element.focus();
  }

  /** The reply's stream ended first: a decision sent stands; a call still waiting can still be decided here. */
  abandon() {
    if (this.state === 'answered') this.end(this.decision);
  }
}
