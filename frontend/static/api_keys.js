// The API keys page works without this script; it copies a new key, asks before revoking one and shows times in
// the reader's own time zone.

import { formatDateTime } from './js/dom.js';

for (const button of document.querySelectorAll('button.copy-key')) {
  button.addEventListener('click', async () => {
    const input = document.getElementById(button.dataset.copyTarget ?? '');
    if (!(input instanceof HTMLInputElement)) return;
    try {
      await navigator.clipboard.writeText(input.value);
      button.textContent = 'Copied';
    } catch {
      input.select(); // no clipboard access (plain http): the key is selected for copying by hand
      button.textContent = 'Press Ctrl+C';
    }
  });
}

for (const form of document.querySelectorAll('form.revoke-api-key-form')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm('Revoke this key? Clients using it will be refused from now on.')) {
      event.preventDefault();
    }
  });
}

for (const time of document.querySelectorAll('time[datetime]')) {
  const text = formatDateTime(time.getAttribute('datetime') ?? '');
  if (text) time.textContent = text;
}
