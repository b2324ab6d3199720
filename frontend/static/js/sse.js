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
