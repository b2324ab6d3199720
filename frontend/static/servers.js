// The servers page works without this script; it adds a confirmation before removing a server or disconnecting
// from one, and shows connection times in the reader's own time zone.

import { formatDateTime } from './js/dom.js';

for (const form of document.querySelectorAll('form.remove-server-form')) {
  form.addEventListener('submit', (event) => {
    const serverId = form.dataset.serverId ?? '';
    if (!window.confirm(`Remove the server “${serverId}”? Its tools stop being offered to the model.`)) {
      event.preventDefault();
    }
  });
}

for (const form of document.querySelectorAll('form.disconnect-server-form')) {
  form.addEventListener('submit', (event) => {
    const serverId = form.dataset.serverId ?? '';
    if (!window.confirm(`Disconnect from “${serverId}”? The assistant forgets your sign-in there.`)) {
      event.preventDefault();
    }
  });
}

for (const time of document.querySelectorAll('time[datetime]')) {
  const text = formatDateTime(time.getAttribute('datetime') ?? '');
  if (text) time.textContent = text;
}
