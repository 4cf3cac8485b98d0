// Small DOM helpers. Every piece of text goes in as a text node, never as
// HTML, so message bodies and names cannot inject markup.

/** Returns the element with this id; throws when the page lacks it. */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`index.html has no element #${id}`);
  return element;
}

/**
 * Creates an element. `props` sets properties (`className`, `type`, ...),
 * except `attrs`, an object of attributes. Children are nodes or strings.
 */
export function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  const { attrs = {}, ...properties } = props;
  Object.assign(element, properties);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** Shows `message` in an element, hiding the element when it is empty. */
export function say(element, message = '') {
  element.textContent = message;
  element.hidden = message === '';
}

/** Formats an RFC 3339 time as a short local time, with the date when it is not today. */
export function shortTime(rfc3339) {
  const date = new Date(rfc3339);
  const now = new Date();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

/** Returns an id unique enough to make a send idempotent. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
