// A server-sent-events reader for a fetch() body (EventSource cannot POST or send headers).
// It follows the WHATWG parsing rules: lines end in CR, LF or CRLF; a blank line dispatches; lines starting
// with ":" are comments (the API's keep-alives); an event without data is dropped.

/** Yield `{event, data, id}` for each event of `body` (a ReadableStream of bytes). */
export async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let type = '';
  let data = [];
  let lastId = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return; // an unterminated last event is incomplete and dropped, as the standard says
      let text = buffer + value;
      // A CR at the end of a chunk may be the first half of a CRLF: wait for the next chunk to decide.
      let held = '';
      if (text.endsWith('\r')) {
        held = '\r';
        text = text.slice(0, -1);
      }
      const lines = text.split(/\r\n|\r|\n/);
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield { event: type || 'message', data: data.join('\n'), id: lastId };
          type = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let fieldValue = colon < 0 ? '' : line.slice(colon + 1);
        if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
        if (field === 'event') type = fieldValue;
        else if (field === 'data') data.push(fieldValue);
        else if (field === 'id' && !fieldValue.includes('\0')) lastId = fieldValue;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Waits between reconnections of a lost reply stream (milliseconds); after the last one the reply is given up. */
export const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000];

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('Aborted', 'AbortError'));
      return;
    }
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        window.clearTimeout(timer);
        reject(new DOMException('Aborted', 'AbortError'));
      },
      { once: true },
    );
  });
}

/**
 * Yield the events of a reply that may outlive its connection: those of `initial` (a Response), or of `open('')`,
 * then, whenever the stream ends or breaks before `isDone()`, those of `open(lastId)`: the server sends only the
 * events after the last one seen (Last-Event-ID), so nothing shows twice. Reconnections wait RECONNECT_DELAYS_MS
 * (the count starts again once events flow); `open` resolving to null means there is nothing more to read.
 * `retryable(error)` decides whether a failed `open` is worth another try; an AbortError always ends it.
 */
export async function* followEvents(open, { initial = null, isDone, signal, retryable = () => true } = {}) {
  let lastId = '';
  let failures = 0;
  let response = initial;
  for (;;) {
    if (!response) {
      try {
        response = await open(lastId);
      } catch (error) {
        if (error?.name === 'AbortError' || !retryable(error)) throw error;
        response = undefined;
      }
      if (response === null) return;
    }
    if (response) {
      try {
        for await (const event of serverSentEvents(response.body)) {
          if (event.id) lastId = event.id;
          failures = 0;
          yield event;
        }
      } catch (error) {
        if (error?.name === 'AbortError') throw error;
      }
    }
    if (isDone() || failures >= RECONNECT_DELAYS_MS.length) return;
    await pause(RECONNECT_DELAYS_MS[failures], signal);
    failures += 1;
    response = null;
  }
}
