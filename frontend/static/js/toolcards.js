// A tool call as a card: "server · tool", its arguments, live progress and elapsed time, then its result.
// Everything in a card comes from a model or a tool, so all of it is inserted as text.

import { formatDuration, h } from './dom.js';

const RESOURCE_LINK = /\[resource: ([^\]\s]+)\]/g; // how a result names a resource it links to (mcp/results.py)
const LONG_RESULT_LINES = 10;
const LONG_RESULT_CHARS = 600;
const TICK_MS = 100;

const running = new Set();
let ticker = 0;

function tick() {
  const now = performance.now();
  for (const card of running) card.showElapsed(now - card.startedAt);
}

function track(card) {
  running.add(card);
  ticker ||= window.setInterval(tick, TICK_MS);
}

function untrack(card) {
  running.delete(card);
  if (running.size === 0 && ticker) {
    window.clearInterval(ticker);
    ticker = 0;
  }
}

/** The exposed name is `<server>__<tool>`: split at the first `__` (server ids never contain one). */
export function splitToolName(name) {
  const at = name.indexOf('__');
  return at > 0 ? { server: name.slice(0, at), tool: name.slice(at + 2) } : { server: '', tool: name };
}

function prettyArguments(text) {
  if (!text) return '{}';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // the model sent something that is not JSON; show it as it came
  }
}

/**
 * A result's text, with each `[resource: <uri>]` link's URI as a button that opens the resource (chat.js listens
 * for clicks on `button.resource-link`). Without a server to read from, the text stays as it is.
 */
function resultNodes(text, serverId) {
  if (!serverId) return [text];
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(RESOURCE_LINK)) {
    const uri = match[1];
    const start = match.index + '[resource: '.length;
    nodes.push(text.slice(last, start));
    nodes.push(
      h('button', {
        type: 'button',
        class: 'resource-link',
        dataset: { serverId, uri },
        title: 'Show this resource',
        text: uri,
      }),
    );
    last = start + uri.length;
  }
  nodes.push(text.slice(last));
  return nodes.filter((node) => node !== '');
}

function formatNumber(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

export class ToolCard {
  /**
   * @param {{id: string, name: string, serverId?: string|null, tool?: string|null, arguments?: string,
   *   open?: boolean}} call
   */
  constructor({ id, name, serverId, tool, arguments: args, open = true }) {
    const split = splitToolName(name ?? '');
    const server = serverId || split.server;
    const toolName = tool || split.tool;
    this.serverId = server;
    this.startedAt = performance.now();
    this.nameEl = h('span', { class: 'tool-card-name', text: server ? `${server} · ${toolName}` : toolName });
    this.stateEl = h('span', { class: 'tool-card-state', text: 'Running' });
    this.progressTextEl = h('span', { class: 'tool-card-progress-text' });
    this.elapsedEl = h('span', { class: 'tool-card-elapsed', text: formatDuration(0) });
    this.progressBar = h('progress', { class: 'tool-card-progress-bar', 'aria-label': 'Tool progress' });
    this.progressEl = h('div', { class: 'tool-card-progress', hidden: true }, this.progressBar);
    this.resultSection = h('div', { class: 'tool-card-section tool-card-result-section', hidden: true });
    this.element = h(
      'details',
      { class: 'tool-card', dataset: { toolCallId: id, state: 'running' }, open },
      h(
        'summary',
        { class: 'tool-card-header' },
        h('span', { class: 'tool-card-status', 'aria-hidden': 'true' }),
        this.nameEl,
        this.stateEl,
        this.progressTextEl,
        this.elapsedEl,
      ),
      h(
        'div',
        { class: 'tool-card-content' },
        this.progressEl,
        h(
          'div',
          { class: 'tool-card-section' },
          h('div', { class: 'tool-card-label', text: 'Arguments' }),
          h('pre', { class: 'tool-card-arguments', text: prettyArguments(args) }),
        ),
        this.resultSection,
      ),
    );
  }

  get state() {
    return this.element.dataset.state;
  }

  /** Count elapsed time from now, or from `elapsedMs` ago. */
  start(elapsedMs = 0) {
    this.startedAt = performance.now() - elapsedMs;
    this.showElapsed(elapsedMs);
    track(this);
  }

  showElapsed(ms) {
    this.elapsedEl.textContent = formatDuration(ms);
  }

  progress({ progress, total, message, elapsed_ms: elapsedMs }) {
    if (this.state !== 'running') return;
    if (typeof elapsedMs === 'number') this.startedAt = performance.now() - elapsedMs;
    this.progressEl.hidden = false;
    const hasTotal = typeof total === 'number' && total > 0;
    if (hasTotal) {
      this.progressBar.max = total;
      this.progressBar.value = Math.min(progress, total);
    } else {
      this.progressBar.removeAttribute('value'); // indeterminate
    }
    const count = hasTotal ? `${formatNumber(progress)}/${formatNumber(total)}` : formatNumber(progress);
    this.progressTextEl.textContent = message ? `${count} ${message}` : count;
  }

  finish({ is_error: isError, result, truncated, duration_ms: durationMs }) {
    if (typeof durationMs === 'number') this.showElapsed(durationMs);
    else if (running.has(this)) this.showElapsed(performance.now() - this.startedAt);
    else this.elapsedEl.textContent = ''; // a stored call without a recorded duration
    untrack(this);
    this.element.dataset.state = isError ? 'error' : 'done';
    this.stateEl.textContent = isError ? 'Failed' : 'Done';
    this.progressEl.hidden = true;
    this.progressTextEl.textContent = '';
    this.showResult(result ?? '', isError, truncated);
  }

  /** The call never finished (the turn was stopped or the connection lost), or its result was never stored. */
  interrupt(reason) {
    if (this.state !== 'running') return;
    if (!running.has(this)) this.elapsedEl.textContent = '';
    untrack(this);
    this.element.dataset.state = 'error';
    this.stateEl.textContent = 'Interrupted';
    this.progressEl.hidden = true;
    this.progressTextEl.textContent = '';
    this.resultSection.replaceChildren(h('p', { class: 'tool-card-note', text: reason }));
    this.resultSection.hidden = false;
  }

  showResult(text, isError, truncated) {
    const lines = text.split('\n').length;
    const pre = h('pre', { class: 'tool-card-result' }, resultNodes(text, this.serverId));
    const label = isError ? 'Error' : 'Result';
    const parts = [];
    if (lines > LONG_RESULT_LINES || text.length > LONG_RESULT_CHARS) {
      parts.push(
        h(
          'details',
          { class: 'tool-card-result-details' },
          h('summary', { text: `${label} (${lines} lines, ${text.length} characters)` }),
          pre,
        ),
      );
    } else {
      parts.push(h('div', { class: 'tool-card-label', text: label }), pre);
    }
    if (truncated) {
      const note = 'The tool returned more than this; the model saw only this part.';
      parts.push(h('p', { class: 'tool-card-note', text: note }));
    }
    this.resultSection.replaceChildren(...parts);
    this.resultSection.hidden = false;
  }
}
