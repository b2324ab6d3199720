// Markdown from the model -> a sanitised DocumentFragment.
//
// marked (GFM) turns the text into HTML. HTML the model writes itself is shown as text, like the other chat
// interfaces do, except a few harmless tags without attributes (<br>, <sup>, <kbd>, <details>...); so the model's
// markup never reaches the HTML parser (Chrome even reports a CSP violation for an `onerror` it parses and never
// runs). DOMPurify then keeps a small set of tags and attributes, and its hooks make sure nothing loads or runs by
// itself: images from other origins become a "blocked image" note with the address as text, links lose dangerous
// schemes and open external pages in a new tab without a referrer.
// marked and DOMPurify are the vendored globals from static/vendor/ (see the README there).

import { h, icon } from './dom.js';

const ALLOWED_TAGS = [
  'a', 'abbr', 'b', 'blockquote', 'br', 'caption', 'code', 'dd', 'del', 'details', 'div', 'dl', 'dt', 'em',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'input', 'ins', 'kbd', 'li', 'mark', 'ol', 'p', 'pre',
  'q', 's', 'samp', 'small', 'span', 'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th',
  'thead', 'tr', 'u', 'ul',
];
const ALLOWED_ATTR = [
  'href', 'title', 'alt', 'src', 'align', 'start', 'type', 'checked', 'disabled', 'colspan', 'rowspan', 'class',
  'lang', 'dir', 'open',
];
const LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
const LANGUAGE_CLASS = /^language-[\w+#.-]{1,40}$/;
const PLAIN_TAG = /<\/?(?:b|br|del|details|em|i|ins|kbd|mark|p|s|small|strong|sub|summary|sup|u)\s*\/?>/gi;
const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

// Elements the hooks create themselves: only they may carry our class names, so a reply cannot dress its HTML
// up as part of the interface.
const ownNodes = new WeakSet();
let configured = null;

function resolve(url) {
  try {
    return new URL(url, location.href);
  } catch {
    return null;
  }
}

function own(node) {
  ownNodes.add(node);
  return node;
}

function secureLink(link) {
  const href = link.getAttribute('href');
  if (href === null) return;
  const url = resolve(href);
  if (!url || !LINK_PROTOCOLS.has(url.protocol)) {
    link.removeAttribute('href');
    return;
  }
  link.setAttribute('rel', 'noopener noreferrer nofollow');
  if (url.origin !== location.origin) link.setAttribute('target', '_blank');
}

function blockedImage(img) {
  const doc = img.ownerDocument;
  const src = img.getAttribute('src') ?? '';
  const alt = (img.getAttribute('alt') ?? '').trim();
  const url = resolve(src);
  const note = own(doc.createElement('span'));
  note.className = 'blocked-image';
  note.setAttribute('title', 'Images from other sites are not loaded');
  const label = own(doc.createElement('span'));
  label.className = 'blocked-image-label';
  label.textContent = alt ? `Blocked external image: ${alt}` : 'Blocked external image';
  note.append(label);
  if (src) {
    let address;
    if (url && (url.protocol === 'http:' || url.protocol === 'https:')) {
      // The reader may open it on purpose; nothing is fetched until then.
      address = own(doc.createElement('a'));
      address.setAttribute('href', url.href);
      address.setAttribute('rel', 'noopener noreferrer nofollow');
      address.setAttribute('target', '_blank');
    } else {
      address = doc.createElement('span');
    }
    address.className = 'blocked-image-url';
    own(address);
    address.textContent = src.length > 200 ? `${src.slice(0, 200)}…` : src;
    note.append(address);
  }
  return note;
}

function afterSanitizeAttributes(node) {
  switch (node.nodeName) {
    case 'A':
      secureLink(node);
      break;
    case 'IMG': {
      node.removeAttribute('srcset');
      const url = resolve(node.getAttribute('src') ?? '');
      if (!url || url.origin !== location.origin) node.replaceWith(blockedImage(node));
      break;
    }
    case 'INPUT':
      // Only GFM task-list boxes, and never editable.
      if (node.getAttribute('type') !== 'checkbox') node.remove();
      else node.setAttribute('disabled', '');
      break;
    default:
      break;
  }
}

function uponSanitizeAttribute(node, data) {
  if (data.attrName === 'class') {
    data.keepAttr = ownNodes.has(node) || (node.nodeName === 'CODE' && LANGUAGE_CLASS.test(data.attrValue));
  }
}

/** marked's renderer for raw HTML: plain tags pass, anything else is shown as the text it is. */
function rawHtml({ text }) {
  if (!text.replace(PLAIN_TAG, '').includes('<')) return text;
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]);
}

function setUp() {
  const { marked, DOMPurify } = window;
  if (!marked || !DOMPurify) throw new Error('marked and DOMPurify must be loaded before the chat script');
  DOMPurify.addHook('uponSanitizeAttribute', uponSanitizeAttribute);
  DOMPurify.addHook('afterSanitizeAttributes', afterSanitizeAttributes);
  const parser = new marked.Marked({ gfm: true, breaks: false, renderer: { html: rawHtml } });
  return { parser, purify: DOMPurify };
}

function decorateCodeBlocks(fragment) {
  for (const pre of fragment.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    const language = code ? [...code.classList].find((name) => name.startsWith('language-')) : undefined;
    const copy = h(
      'button',
      { type: 'button', class: 'copy-code', 'aria-label': 'Copy code' },
      icon('copy'),
      h('span', { class: 'copy-code-label', text: 'Copy' }),
    );
    const bar = h(
      'div',
      { class: 'code-block-bar' },
      h('span', { class: 'code-block-language', text: language ? language.slice('language-'.length) : '' }),
      copy,
    );
    const block = h('div', { class: 'code-block' });
    pre.replaceWith(block);
    block.append(bar, pre);
  }
  for (const table of fragment.querySelectorAll('table')) {
    const wrap = h('div', { class: 'table-wrap' });
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

/** Render `text` (Markdown, possibly still arriving) into a DocumentFragment that is safe to insert. */
export function renderMarkdown(text) {
  configured ??= setUp();
  const html = configured.parser.parse(String(text ?? ''), { async: false });
  const fragment = configured.purify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    RETURN_DOM_FRAGMENT: true,
  });
  decorateCodeBlocks(fragment);
  return fragment;
}
