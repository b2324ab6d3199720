// The memories page works without this script; it asks before deleting a memory and shows times in the reader's
// own time zone.

import { formatDateTime } from './js/dom.js';

for (const form of document.querySelectorAll('form.delete-memory-form')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm('Delete this memory? The assistant will no longer recall it.')) {
      event.preventDefault();
    }
  });
}

for (const time of document.querySelectorAll('time[datetime]')) {
  const text = formatDateTime(time.getAttribute('datetime') ?? '');
  if (text) time.textContent = text;
}
