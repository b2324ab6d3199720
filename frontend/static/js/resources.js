// MCP resources in the chat: the picker that attaches them to the next message, the chips of what is attached,
// and the dialog that shows a resource a tool result links to. Names, URIs, descriptions and contents come from
// servers, so all of them are inserted as text.

import { apiJson } from './api.js';
import { h, icon } from './dom.js';
import { Picker, problem } from './picker.js';

const MAX_ATTACHMENTS = 10; // the API's limit per message
const TEMPLATE_PART = /\{[^}]*\}/;

let templateCount = 0;

/** `{server_id, uri}`: an attachment as the message body names it. */
export function resourceRef({ server_id: serverId, uri }) {
  return { server_id: serverId, uri };
}

function sameResource(a, b) {
  return a.server_id === b.server_id && a.uri === b.uri;
}

/** The chips above the composer's text box: what the next message carries. */
export class Attachments {
  /** @param {{list: HTMLElement, input: HTMLElement, onChange: () => void}} options */
  constructor({ list, input, onChange }) {
    this.list = list;
    this.input = input;
    this.onChange = onChange;
    this.items = []; // {server_id, uri, label}
    list.addEventListener('click', (event) => {
      const remove = event.target.closest('button.attachment-remove');
      if (!remove) return;
      const index = [...list.children].indexOf(remove.closest('.attachment-chip'));
      if (index >= 0) this.removeAt(index);
    });
  }

  get count() {
    return this.items.length;
  }

  has(item) {
    return this.items.some((other) => sameResource(other, item));
  }

  add(item) {
    if (this.has(item) || this.items.length >= MAX_ATTACHMENTS) return;
    this.items.push(item);
    this.render();
  }

  removeAt(index) {
    this.items.splice(index, 1);
    this.render();
    // Keep the focus on a chip (the next, or the one before), or give it to the message box.
    const next = this.list.children[Math.min(index, this.list.children.length - 1)];
    (next?.querySelector('button') ?? this.input).focus();
  }

  /** Take everything out (the message was sent) and return it, to put back with `restore` if sending failed. */
  take() {
    const items = this.items;
    this.items = [];
    this.render();
    return items;
  }

  restore(items) {
    for (const item of items) this.add(item);
  }

  render() {
    this.list.replaceChildren(
      ...this.items.map((item) =>
        h(
          'li',
          { class: 'attachment-chip', dataset: { serverId: item.server_id, uri: item.uri }, title: item.uri },
          icon('paperclip'),
          h('span', { class: 'attachment-chip-label', text: item.label }),
          h(
            'button',
            { type: 'button', class: 'attachment-remove', 'aria-label': `Remove the attachment ${item.uri}` },
            icon('x'),
          ),
        ),
      ),
    );
    this.list.hidden = this.items.length === 0;
    this.onChange();
  }
}

/** "Attach a resource": the resources and templates of every connected server, fetched each time it opens. */
export class ResourcePicker extends Picker {
  /** @param {{trigger: HTMLButtonElement, panel: HTMLElement, attachments: Attachments, onDone: () => void}} options */
  constructor({ trigger, panel, attachments, onDone }) {
    super({ trigger, panel, title: 'Attach a resource' });
    this.attachments = attachments;
    this.onDone = onDone;
    this.loading = 0;
  }

  async render() {
    const ticket = ++this.loading;
    this.content.replaceChildren(this.status('Loading resources…'));
    let resources;
    try {
      resources = await apiJson('/resources');
    } catch (error) {
      if (ticket === this.loading) this.content.replaceChildren(this.status(problem(error), { error: true }));
      return;
    }
    if (ticket !== this.loading || !this.isOpen) return;
    if (!resources.length) {
      this.content.replaceChildren(this.status('The connected servers offer no resources.'));
      return;
    }
    const hadFocus = this.panel.contains(document.activeElement);
    this.errorEl = h('p', { class: 'picker-status picker-error', role: 'alert', hidden: true });
    this.content.replaceChildren(
      this.errorEl,
      h(
        'ul',
        { class: 'picker-list' },
        resources.map((resource) => (resource.uri ? this.resourceItem(resource) : this.templateItem(resource))),
      ),
    );
    if (hadFocus || document.activeElement === document.body) this.focusFirst();
  }

  resourceItem(resource) {
    const attached = this.attachments.has(resource);
    const choose = h(
      'button',
      { type: 'button', class: 'picker-item', disabled: attached, dataset: { uri: resource.uri } },
      h('span', { class: 'picker-item-title', text: resource.title || resource.name }),
      h('span', { class: 'picker-item-meta', text: `${resource.server_id} · ${resource.uri}` }),
      resource.description ? h('span', { class: 'picker-item-description', text: resource.description }) : null,
      attached ? h('span', { class: 'picker-item-meta', text: 'Attached' }) : null,
    );
    choose.addEventListener('click', () =>
      this.attach({ server_id: resource.server_id, uri: resource.uri, label: resource.title || resource.uri }),
    );
    return h('li', {}, choose);
  }

  /** A template: the user writes the concrete URI, starting from the template. */
  templateItem(resource) {
    templateCount += 1;
    const id = `resource-template-${templateCount}`;
    const input = h('input', { type: 'text', id, spellcheck: 'false', autocomplete: 'off' });
    input.value = resource.uri_template ?? '';
    const attach = h('button', { type: 'button', class: 'button small', text: 'Attach' });
    const submit = () => {
      const uri = input.value.trim();
      if (!uri || TEMPLATE_PART.test(uri)) {
        this.showError(`Fill in the parts in braces of ${resource.uri_template} first.`);
        input.focus();
        return;
      }
      this.attach({ server_id: resource.server_id, uri, label: uri });
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    attach.addEventListener('click', submit);
    return h(
      'li',
      { class: 'picker-template' },
      h(
        'label',
        { for: id, class: 'picker-template-label' },
        h('span', { class: 'picker-item-title', text: resource.title || resource.name }),
        h('span', { class: 'picker-item-meta', text: `${resource.server_id} · template` }),
      ),
      resource.description ? h('span', { class: 'picker-item-description', text: resource.description }) : null,
      h('div', { class: 'picker-template-row' }, input, attach),
    );
  }

  showError(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }

  attach(item) {
    if (this.attachments.count >= MAX_ATTACHMENTS) {
      this.showError(`A message can carry at most ${MAX_ATTACHMENTS} resources.`);
      return;
    }
    this.attachments.add(item);
    this.close({ restoreFocus: false });
    this.onDone();
  }
}

/** base64 text -> how many bytes it holds */
function base64Bytes(blob) {
  const padding = blob.endsWith('==') ? 2 : blob.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((blob.length * 3) / 4) - padding);
}

/** The dialog that shows a resource's contents (a link in a tool result). */
export class ResourceViewer {
  constructor(dialog) {
    this.dialog = dialog;
    this.uriEl = dialog.querySelector('.resource-dialog-uri');
    this.body = dialog.querySelector('.resource-dialog-body');
    this.opener = null;
    this.loading = 0;
    dialog.querySelector('.resource-dialog-close').addEventListener('click', () => dialog.close());
    // Esc closes the dialog (the browser does it); it must not also stop the running reply.
    dialog.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') event.stopPropagation();
    });
    // A click on the backdrop lands on the dialog element itself.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener('close', () => {
      this.loading += 1;
      if (this.opener?.isConnected) this.opener.focus();
      this.opener = null;
    });
  }

  async show(serverId, uri) {
    const ticket = ++this.loading;
    this.opener = document.activeElement;
    this.uriEl.textContent = `${serverId} · ${uri}`;
    this.body.replaceChildren(h('p', { class: 'picker-status', text: 'Reading the resource…' }));
    if (!this.dialog.open) this.dialog.showModal();
    let read;
    try {
      const query = new URLSearchParams({ server_id: serverId, uri });
      read = await apiJson(`/resources/read?${query}`);
    } catch (error) {
      if (ticket === this.loading) {
        this.body.replaceChildren(h('p', { class: 'picker-status picker-error', role: 'alert', text: problem(error) }));
      }
      return;
    }
    if (ticket !== this.loading) return;
    const contents = read.contents ?? [];
    if (!contents.length) {
      this.body.replaceChildren(h('p', { class: 'picker-status', text: 'The resource is empty.' }));
      return;
    }
    this.body.replaceChildren(
      ...contents.map((part) => {
        const named = contents.length > 1 || part.uri !== uri;
        const label = named ? h('div', { class: 'tool-card-label', text: part.uri }) : null;
        if (typeof part.text === 'string') {
          return h('div', { class: 'resource-part' }, label, h('pre', { class: 'resource-text', text: part.text }));
        }
        const bytes = base64Bytes(part.blob ?? '');
        const note = `binary, ${bytes} bytes${part.mime_type ? `, ${part.mime_type}` : ''}`;
        return h('div', { class: 'resource-part' }, label, h('p', { class: 'resource-binary', text: note }));
      }),
    );
  }
}
