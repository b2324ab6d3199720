// The conversation list: search, select, rename in place, delete; and, on narrow screens, the drawer it lives in.

import { h, icon } from './dom.js';

const NARROW = window.matchMedia('(max-width: 760px)');

export class Sidebar {
  /**
   * @param {{onSelect: (id: string) => void, onRename: (id: string, title: string) => Promise<void>,
   *   onDelete: (id: string) => void}} handlers
   */
  constructor({ onSelect, onRename, onDelete }) {
    this.onSelect = onSelect;
    this.onRename = onRename;
    this.onDelete = onDelete;
    this.list = document.getElementById('conversation-list');
    this.empty = document.getElementById('conversation-list-empty');
    this.search = document.getElementById('conversation-search');
    this.layout = document.getElementById('chat-layout');
    this.toggle = document.getElementById('sidebar-toggle');
    this.backdrop = document.getElementById('sidebar-backdrop');
    this.main = document.getElementById('chat-main');
    this.conversations = [];
    this.activeId = null;
    this.items = new Map(); // id -> li

    this.list.replaceChildren(); // the server-rendered list is replaced by the same list, now interactive
    this.list.addEventListener('click', (event) => this.onListClick(event));
    this.search.addEventListener('input', () => this.applyFilter());
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.search.value) {
        event.stopPropagation();
        this.search.value = '';
        this.applyFilter();
      }
    });
    this.toggle.addEventListener('click', () => (this.isOpen ? this.close() : this.open()));
    this.backdrop.addEventListener('click', () => this.close());
    NARROW.addEventListener('change', () => this.close({ restoreFocus: false }));
  }

  // ---- list ----

  setConversations(conversations) {
    this.conversations = [...conversations];
    this.render();
  }

  upsert(conversation) {
    const index = this.conversations.findIndex((item) => item.id === conversation.id);
    if (index >= 0) this.conversations[index] = { ...this.conversations[index], ...conversation };
    else this.conversations.unshift(conversation);
    this.render();
  }

  remove(id) {
    this.conversations = this.conversations.filter((item) => item.id !== id);
    this.render();
  }

  title(id) {
    return this.conversations.find((item) => item.id === id)?.title ?? null;
  }

  setActive(id) {
    this.activeId = id;
    for (const [itemId, li] of this.items) {
      const link = li.querySelector('.conversation-link');
      if (itemId === id) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  createItem(id) {
    const link = h('a', { class: 'conversation-link', href: `/c/${encodeURIComponent(id)}` });
    const rename = h('button', { type: 'button', class: 'icon-button rename-conversation' }, icon('pencil'));
    const remove = h('button', { type: 'button', class: 'icon-button delete-conversation' }, icon('trash'));
    return h(
      'li',
      { class: 'conversation-item', dataset: { conversationId: id } },
      link,
      h('span', { class: 'conversation-actions' }, rename, remove),
    );
  }

  updateItem(li, conversation) {
    if (li.dataset.renaming) return; // never clobber what the user is typing
    const link = li.querySelector('.conversation-link');
    link.textContent = conversation.title;
    link.title = conversation.title;
    li.querySelector('.rename-conversation').setAttribute('aria-label', `Rename “${conversation.title}”`);
    li.querySelector('.delete-conversation').setAttribute('aria-label', `Delete “${conversation.title}”`);
    if (conversation.id === this.activeId) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }

  render() {
    const seen = new Set();
    this.conversations.forEach((conversation, index) => {
      seen.add(conversation.id);
      let li = this.items.get(conversation.id);
      if (!li) {
        li = this.createItem(conversation.id);
        this.items.set(conversation.id, li);
      }
      this.updateItem(li, conversation);
      // Move only what is out of place, so a focused item keeps its focus.
      if (this.list.children[index] !== li) this.list.insertBefore(li, this.list.children[index] ?? null);
    });
    for (const [id, li] of this.items) {
      if (!seen.has(id)) {
        li.remove();
        this.items.delete(id);
      }
    }
    this.applyFilter();
  }

  applyFilter() {
    const query = this.search.value.trim().toLowerCase();
    let visible = 0;
    for (const conversation of this.conversations) {
      const match = !query || conversation.title.toLowerCase().includes(query);
      this.items.get(conversation.id).hidden = !match;
      if (match) visible += 1;
    }
    this.empty.hidden = visible > 0;
    this.empty.textContent = this.conversations.length ? 'No chat title matches the search.' : 'No conversations yet.';
  }

  onListClick(event) {
    const li = event.target.closest('li[data-conversation-id]');
    if (!li) return;
    const id = li.dataset.conversationId;
    if (event.target.closest('.rename-conversation')) {
      this.startRename(li);
    } else if (event.target.closest('.delete-conversation')) {
      this.onDelete(id);
    } else if (event.target.closest('.conversation-link')) {
      // Let the browser open new tabs and windows itself.
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      this.onSelect(id);
    }
  }

  /** Focus the link of the item after `id` (or before it, or New chat): used before an item disappears. */
  focusNeighbour(id) {
    const li = this.items.get(id);
    const neighbour = [li?.nextElementSibling, li?.previousElementSibling].find((item) => item && !item.hidden);
    (neighbour?.querySelector('.conversation-link') ?? document.getElementById('new-chat')).focus();
  }

  // ---- rename in place ----

  startRename(li) {
    if (li.dataset.renaming) return;
    const id = li.dataset.conversationId;
    const link = li.querySelector('.conversation-link');
    const current = this.title(id) ?? link.textContent;
    const input = h('input', {
      type: 'text',
      class: 'rename-input',
      maxlength: '200',
      'aria-label': 'New title',
      spellcheck: 'false',
    });
    input.value = current;
    li.dataset.renaming = 'true';
    link.hidden = true;
    li.insertBefore(input, link);
    input.focus();
    input.select();

    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      const hadFocus = document.activeElement === input;
      input.remove();
      link.hidden = false;
      delete li.dataset.renaming;
      if (hadFocus) link.focus();
      if (save && title && title !== current) {
        link.textContent = title; // at once; put back by the list refresh if the rename fails
        await this.onRename(id, title);
      }
      this.render();
    };
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault();
        finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(true));
  }

  // ---- drawer (narrow screens) ----

  get isOpen() {
    return this.layout.hasAttribute('data-sidebar-open');
  }

  open() {
    if (!NARROW.matches) return;
    this.layout.setAttribute('data-sidebar-open', '');
    this.toggle.setAttribute('aria-expanded', 'true');
    this.toggle.setAttribute('aria-label', 'Hide conversations');
    this.backdrop.hidden = false;
    this.main.inert = true;
    (this.list.querySelector('[aria-current="page"]') ?? document.getElementById('new-chat')).focus();
  }

  close({ restoreFocus = true } = {}) {
    if (!this.isOpen) return;
    this.layout.removeAttribute('data-sidebar-open');
    this.toggle.setAttribute('aria-expanded', 'false');
    this.toggle.setAttribute('aria-label', 'Show conversations');
    this.backdrop.hidden = true;
    this.main.inert = false;
    if (restoreFocus) this.toggle.focus();
  }
}
