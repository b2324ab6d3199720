// The prompt picker: the prompts of every connected server; choosing one asks for its arguments, and "Use prompt"
// renders it (POST /api/prompts/get) and hands its user messages' text to the composer to edit and send.
// Names, descriptions and rendered text come from servers, so all of them are inserted as text.

import { apiJson } from './api.js';
import { h } from './dom.js';
import { Picker, problem } from './picker.js';

let formCount = 0;

/** The text a rendered prompt puts in the composer: its user messages, a blank line apart. */
function promptText(messages) {
  return (messages ?? [])
    .filter((message) => message.role === 'user')
    .map((message) => message.text)
    .join('\n\n');
}

export class PromptPicker extends Picker {
  /** @param {{trigger: HTMLButtonElement, panel: HTMLElement, onUse: (text: string) => void}} options */
  constructor({ trigger, panel, onUse }) {
    super({ trigger, panel, title: 'Use a prompt' });
    this.onUse = onUse;
    this.loading = 0;
  }

  /** The list of prompts. */
  async render() {
    const ticket = ++this.loading;
    this.content.replaceChildren(this.status('Loading prompts…'));
    let prompts;
    try {
      prompts = await apiJson('/prompts');
    } catch (error) {
      if (ticket === this.loading) this.content.replaceChildren(this.status(problem(error), { error: true }));
      return;
    }
    if (ticket !== this.loading || !this.isOpen) return;
    if (!prompts.length) {
      this.content.replaceChildren(this.status('The connected servers offer no prompts.'));
      return;
    }
    const hadFocus = this.panel.contains(document.activeElement);
    this.content.replaceChildren(
      h(
        'ul',
        { class: 'picker-list' },
        prompts.map((prompt) => {
          const count = prompt.arguments?.length ?? 0;
          const meta = `${prompt.server_id} · ${count === 1 ? '1 argument' : `${count} arguments`}`;
          const choose = h(
            'button',
            { type: 'button', class: 'picker-item', dataset: { prompt: prompt.name } },
            h('span', { class: 'picker-item-title', text: prompt.title || prompt.name }),
            h('span', { class: 'picker-item-meta', text: meta }),
            prompt.description ? h('span', { class: 'picker-item-description', text: prompt.description }) : null,
          );
          choose.addEventListener('click', () => this.showPrompt(prompt));
          return h('li', {}, choose);
        }),
      ),
    );
    if (hadFocus || document.activeElement === document.body) this.focusFirst();
  }

  /** One prompt's arguments, then "Use prompt". */
  showPrompt(prompt) {
    this.loading += 1;
    formCount += 1;
    const fields = (prompt.arguments ?? []).map((argument, index) => {
      const id = `prompt-${formCount}-${index}`;
      const hint = argument.description
        ? h('p', { class: 'field-hint', id: `${id}-hint`, text: argument.description })
        : null;
      const input = h('input', {
        type: 'text',
        id,
        name: argument.name,
        required: argument.required || undefined,
        autocomplete: 'off',
        'aria-describedby': hint ? `${id}-hint` : undefined,
      });
      const label = h(
        'label',
        { for: id },
        argument.name,
        argument.required ? h('span', { class: 'required-mark', text: ' (required)' }) : null,
      );
      return { argument, input, element: h('div', { class: 'field' }, label, input, hint) };
    });
    const errorEl = h('p', { class: 'picker-status picker-error', role: 'alert', hidden: true });
    const use = h('button', { type: 'submit', class: 'button primary small', text: 'Use prompt' });
    const back = h('button', { type: 'button', class: 'button small', text: 'Back' });
    const form = h(
      'form',
      { class: 'picker-form', novalidate: true, 'aria-label': prompt.title || prompt.name },
      h('h3', { class: 'picker-subtitle', text: prompt.title || prompt.name }),
      h('p', { class: 'picker-item-meta', text: `${prompt.server_id} · ${prompt.name}` }),
      prompt.description ? h('p', { class: 'picker-item-description', text: prompt.description }) : null,
      fields.length ? fields.map((field) => field.element) : h('p', { class: 'picker-status', text: 'No arguments.' }),
      errorEl,
      h('div', { class: 'picker-actions' }, use, back),
    );
    back.addEventListener('click', () => {
      this.render();
      this.focusFirst();
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const missing = fields.find((field) => field.argument.required && !field.input.value.trim());
      if (missing) {
        errorEl.textContent = `Fill in ${missing.argument.name}.`;
        errorEl.hidden = false;
        missing.input.focus();
        return;
      }
      const args = Object.fromEntries(
        fields.filter((field) => field.input.value !== '').map((field) => [field.argument.name, field.input.value]),
      );
      errorEl.hidden = true;
      use.disabled = true;
      const ticket = this.loading;
      try {
        const rendered = await apiJson('/prompts/get', {
          method: 'POST',
          json: { server_id: prompt.server_id, name: prompt.name, arguments: args },
        });
        if (ticket !== this.loading || !this.isOpen) return;
        const text = promptText(rendered.messages);
        if (!text) throw new Error('The prompt gave no text to send.');
        this.close({ restoreFocus: false });
        this.onUse(text);
      } catch (error) {
        if (ticket !== this.loading) return;
        errorEl.textContent = problem(error);
        errorEl.hidden = false;
      } finally {
        use.disabled = false;
      }
    });
    this.content.replaceChildren(form);
    this.focusFirst();
  }
}
