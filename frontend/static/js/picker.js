// A small panel that opens above the composer from a button (the resource and prompt pickers). One is open at a
// time; Esc, the button again, or a click elsewhere closes it, and the focus goes back to the button.

import { h, icon } from './dom.js';

let openPicker = null;

document.addEventListener('pointerdown', (event) => {
  if (openPicker && !openPicker.panel.contains(event.target) && !openPicker.trigger.contains(event.target)) {
    openPicker.close({ restoreFocus: false });
  }
});

export class Picker {
  /** @param {{trigger: HTMLButtonElement, panel: HTMLElement, title: string}} options */
  constructor({ trigger, panel, title }) {
    this.trigger = trigger;
    this.panel = panel;
    this.titleEl = h('h2', { class: 'picker-title', id: `${panel.id}-title`, text: title });
    const close = h('button', { type: 'button', class: 'icon-button picker-close', 'aria-label': 'Close' }, icon('x'));
    this.content = h('div', { class: 'picker-content' });
    panel.replaceChildren(h('div', { class: 'picker-head' }, this.titleEl, close), this.content);
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-labelledby', this.titleEl.id);
    panel.tabIndex = -1;
    trigger.setAttribute('aria-haspopup', 'dialog');
    trigger.setAttribute('aria-controls', panel.id);
    trigger.setAttribute('aria-expanded', 'false');

    trigger.addEventListener('click', () => (this.isOpen ? this.close() : this.open()));
    close.addEventListener('click', () => this.close());
    panel.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || event.isComposing) return;
      event.preventDefault();
      event.stopPropagation(); // Esc here closes the picker, not the running reply
      this.close();
    });
    // Tabbing out of the panel closes it (a removed element's focus loss has no relatedTarget, and does not).
    panel.addEventListener('focusout', (event) => {
      const next = event.relatedTarget;
      if (next && !panel.contains(next) && next !== trigger) this.close({ restoreFocus: false });
    });
  }

  get isOpen() {
    return !this.panel.hidden;
  }

  open() {
    if (this.isOpen) return;
    openPicker?.close({ restoreFocus: false });
    openPicker = this;
    this.panel.hidden = false;
    this.trigger.setAttribute('aria-expanded', 'true');
    this.render();
    this.focusFirst();
  }

  close({ restoreFocus = true } = {}) {
    if (!this.isOpen) return;
    if (openPicker === this) openPicker = null;
    const hadFocus = this.panel.contains(document.activeElement);
    this.panel.hidden = true;
    this.trigger.setAttribute('aria-expanded', 'false');
    if (restoreFocus || hadFocus) this.trigger.focus();
  }

  /** Put the focus on the first control of the panel's content, or on the panel. */
  focusFirst() {
    const first = this.content.querySelector('button:not(:disabled), input:not(:disabled), select, textarea');
    (first ?? this.panel).focus();
  }

  /** Fill `this.content`; subclasses override. */
  render() {}

  /** A status line (loading, empty, or an error as an alert). */
  status(text, { error = false } = {}) {
    const props = error ? { class: 'picker-status picker-error', role: 'alert' } : { class: 'picker-status' };
    return h('p', { ...props, text });
  }
}

/** The text of an API error for a picker. */
export function problem(error) {
  return error?.message || 'Something went wrong.';
}
