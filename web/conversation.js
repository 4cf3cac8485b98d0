// The open conversation: its history (older pages load on scroll), the
// composer, editing and deleting one's own messages, and typing notices.

import * as api from './api.js';
import { byId, el, randomId, say, shortTime } from './dom.js';
import { chatTitle, senderName } from './chat-list.js';

const PAGE_SIZE = 50;
/** Largest page the server returns, used to catch up after a reconnect. */
const CATCH_UP_PAGE = 200;
/** Distance from the top, in pixels, within which scrolling loads older messages. */
const LOAD_OLDER_MARGIN = 80;
/** Minimum spacing of the typing notices this client sends, in milliseconds. */
const TYPING_SEND_INTERVAL = 3000;
/** Display time of a typing notice that no newer notice renews, in milliseconds. */
const TYPING_SHOW_FOR = 5000;

export class Conversation {
  /**
   * `realtime` sends typing notices, `chatList` receives read and message
   * updates, `announce(text)` reads text out to screen readers and
   * `onClose()` runs when the user leaves the conversation.
   */
  constructor({ realtime, chatList, announce, onClose }) {
    this.realtime = realtime;
    this.chatList = chatList;
    this.announce = announce;
    this.onClose = onClose;
    this.chat = null;
    this.view = byId('conversation-view');
    this.scroller = byId('message-scroller');
    this.list = byId('messages');
    this.historyStatus = byId('history-status');
    this.olderButton = byId('load-older');
    this.error = byId('conversation-error');
    this.input = byId('composer-input');
    this.sendButton = byId('composer-send');
    this.typingLine = byId('typing');
    this.reset();

    byId('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.input.addEventListener('input', () => this.sendTyping());
    this.scroller.addEventListener('scroll', () => {
      if (this.scroller.scrollTop < LOAD_OLDER_MARGIN) this.loadOlder();
    });
    this.olderButton.addEventListener('click', () => this.loadOlder());
    byId('back').addEventListener('click', () => this.close());
    document.addEventListener('visibilitychange', () => this.markRead());
  }

  reset() {
    this.messages = new Map();
    this.nodes = new Map();
    this.hasOlder = false;
    this.loadingOlder = false;
    this.pending = null;
    this.editingId = null;
    this.lastReadSent = 0;
    this.lastTypingSent = 0;
    for (const timer of this.typing?.values() ?? []) clearTimeout(timer);
    this.typing = new Map();
    // Bumped on every open, so a slow response for a previous chat is dropped.
    this.generation = (this.generation ?? 0) + 1;
  }

  isOpen(chatId) {
    return this.chat?.id === chatId;
  }

  async open(chat) {
    this.reset();
    const generation = this.generation;
    this.chat = chat;
    this.input.value = '';
    this.list.replaceChildren();
    this.renderHeader();
    this.renderTyping();
    say(this.error);
    this.olderButton.hidden = true;
    byId('no-conversation').hidden = true;
    this.view.hidden = false;
    document.body.classList.add('show-conversation');
    this.input.focus();

    say(this.historyStatus, 'Loading messages…');
    try {
      const page = await api.request(`/chats/${chat.id}/messages?limit=${PAGE_SIZE}`);
      if (generation !== this.generation) return;
      page.items.forEach((message) => this.upsert(message));
      this.setHasOlder(page.has_more);
      this.scrollToBottom();
      this.markRead();
    } catch (error) {
      if (generation !== this.generation) return;
      say(this.historyStatus, `Could not load messages: ${error.message}`);
    }
  }

  close() {
    this.reset();
    this.chat = null;
    this.view.hidden = true;
    byId('no-conversation').hidden = false;
    document.body.classList.remove('show-conversation');
    this.onClose();
  }

  /** Updates the header after the chat's title or members changed. */
  updateChat(chat) {
    if (!this.isOpen(chat.id)) return;
    this.chat = chat;
    this.renderHeader();
  }

  renderHeader() {
    byId('conversation-title').textContent = chatTitle(this.chat);
    const names = this.chat.members.map((member) => senderName(this.chat, member.user_id));
    byId('conversation-members').textContent =
      this.chat.kind === 'group' ? `Members: ${names.join(', ')}` : 'Direct conversation';
  }

  setHasOlder(hasOlder) {
    this.hasOlder = hasOlder;
    this.olderButton.hidden = !hasOlder;
    say(this.historyStatus, hasOlder ? '' : 'This is the start of the conversation.');
  }

  async loadOlder() {
    if (!this.hasOlder || this.loadingOlder || !this.chat) return;
    const generation = this.generation;
    const oldest = Math.min(...this.messages.keys());
    this.loadingOlder = true;
    say(this.historyStatus, 'Loading older messages…');
    try {
      const page = await api.request(
        `/chats/${this.chat.id}/messages?before=${oldest}&limit=${PAGE_SIZE}`,
      );
      if (generation !== this.generation) return;
      // Keep the messages on screen in place while older ones go in above.
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      page.items.forEach((message) => this.upsert(message));
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
      this.setHasOlder(page.has_more);
    } catch (error) {
      say(this.historyStatus, `Could not load older messages: ${error.message}`);
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Fetches the messages sent while the connection was down. */
  async catchUp() {
    if (!this.chat) return;
    const generation = this.generation;
    if (this.messages.size === 0) return this.open(this.chat);

    let after = Math.max(...this.messages.keys());
    try {
      for (;;) {
        const page = await api.request(
          `/chats/${this.chat.id}/messages?after=${after}&limit=${CATCH_UP_PAGE}`,
        );
        if (generation !== this.generation) return;
        const nearBottom = this.isNearBottom();
        page.items.forEach((message) => this.upsert(message));
        if (nearBottom) this.scrollToBottom();
        if (!page.has_more || page.items.length === 0) break;
        after = page.items[page.items.length - 1].id;
      }
      this.markRead();
    } catch (error) {
      say(this.error, `Could not load new messages: ${error.message}`);
    }
  }

  /** Applies a message.created, message.updated or message.deleted event. */
  onMessageEvent(event) {
    const message = event.message;
    const nearBottom = this.isNearBottom();
    const isNew = !this.messages.has(message.id);
    this.upsert(message);
    if (event.type !== 'message.created' || !isNew) return;

    if (nearBottom) this.scrollToBottom();
    if (message.sender_id !== api.currentUser()?.id) {
      this.stopTyping(message.sender_id);
      this.announce(`${senderName(this.chat, message.sender_id)}: ${message.body ?? ''}`);
      this.markRead();
    }
  }

  onTyping(event) {
    if (event.user_id === api.currentUser()?.id) return;
    clearTimeout(this.typing.get(event.user_id));
    this.typing.set(event.user_id, setTimeout(() => this.stopTyping(event.user_id), TYPING_SHOW_FOR));
    this.renderTyping();
  }

  stopTyping(userId) {
    clearTimeout(this.typing.get(userId));
    if (this.typing.delete(userId)) this.renderTyping();
  }

  renderTyping() {
    const names = [...this.typing.keys()].map((userId) => senderName(this.chat, userId));
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length > 1) text = `${names.join(' and ')} are typing…`;
    this.typingLine.textContent = text;
  }

  sendTyping() {
    const now = Date.now();
    if (!this.chat || !this.input.value || now - this.lastTypingSent < TYPING_SEND_INTERVAL) return;
    this.lastTypingSent = now;
    this.realtime.send({ type: 'typing', chat_id: this.chat.id });
  }

  /** Moves the read marker to the newest message while the page is visible. */
  async markRead() {
    if (!this.chat || document.visibilityState !== 'visible' || this.messages.size === 0) return;
    const chatId = this.chat.id;
    const newest = Math.max(...this.messages.keys());
    this.chatList.markRead(chatId);
    if (newest <= this.lastReadSent) return;
    this.lastReadSent = newest;
    try {
      await api.request(`/chats/${chatId}/read`, { method: 'POST', body: { message_id: newest } });
    } catch (error) {
      // Not a user action: the marker moves again with the next message.
      this.lastReadSent = 0;
      console.warn('Could not mark the conversation as read:', error.message);
    }
  }

  async send() {
    const text = this.input.value;
    if (!this.chat || !text.trim()) return;
    // A retry of the same text reuses its client id, so the server stores it once.
    if (this.pending?.body !== text) this.pending = { body: text, clientId: randomId() };
    const chatId = this.chat.id;

    say(this.error);
    this.sendButton.disabled = true;
    try {
      const message = await api.request(`/chats/${chatId}/messages`, {
        method: 'POST',
        body: { body: text, client_id: this.pending.clientId },
      });
      this.pending = null;
      // The next keystroke starts a new message, so it may notify at once.
      this.lastTypingSent = 0;
      if (this.isOpen(chatId)) {
        if (this.input.value === text) this.input.value = '';
        this.upsert(message);
        this.scrollToBottom();
      }
      this.chatList.noteMessage(chatId, message, { unread: false });
    } catch (error) {
      say(this.error, `Message not sent: ${error.message}`);
    } finally {
      this.sendButton.disabled = false;
    }
  }

  /** Inserts a message in id order, or replaces the one with the same id. */
  upsert(message) {
    this.messages.set(message.id, message);
    if (this.editingId === message.id) {
      // Keep the open edit form, unless the message is gone.
      if (!message.deleted_at) return;
      this.editingId = null;
    }
    const node = this.renderMessage(message);
    const existing = this.nodes.get(message.id);
    this.nodes.set(message.id, node);
    if (existing) {
      existing.replaceWith(node);
      return;
    }
    const next = [...this.list.children].find((child) => Number(child.dataset.messageId) > message.id);
    this.list.insertBefore(node, next ?? null);
  }

  renderMessage(message) {
    const mine = message.sender_id === api.currentUser()?.id;
    const deleted = message.body === null || message.body === undefined;
    const node = el('li', { className: `message${mine ? ' mine' : ''}${deleted ? ' deleted' : ''}` });
    node.dataset.messageId = String(message.id);

    const edited = message.edited_at && !deleted ? el('span', { className: 'edited' }, ' (edited)') : null;
    node.append(
      el(
        'p',
        { className: 'meta' },
        el('span', { className: 'sender' }, senderName(this.chat, message.sender_id)),
        ' ',
        el('time', { dateTime: message.created_at }, shortTime(message.created_at)),
        edited,
      ),
    );
    // The body is inserted as a text node, never parsed as HTML.
    const body = deleted
      ? el('p', { className: 'body' }, el('em', {}, 'This message was deleted.'))
      : el('p', { className: 'body' }, message.body);
    node.append(body);

    if (mine && !deleted) {
      const time = shortTime(message.created_at);
      const edit = el('button', { type: 'button', className: 'link' }, 'Edit');
      edit.setAttribute('aria-label', `Edit your message from ${time}`);
      edit.addEventListener('click', () => this.startEdit(message, node, body));
      const remove = el('button', { type: 'button', className: 'link danger' }, 'Delete');
      remove.setAttribute('aria-label', `Delete your message from ${time}`);
      remove.addEventListener('click', () => this.remove(message));
      node.append(el('p', { className: 'message-actions' }, edit, ' ', remove));
    }
    return node;
  }

  startEdit(message, node, body) {
    this.editingId = message.id;
    const input = el('textarea', { className: 'edit-input', id: `edit-${message.id}`, rows: 2, maxLength: 4000 });
    input.value = message.body;
    const form = el(
      'form',
      { className: 'edit-form' },
      el('label', { htmlFor: input.id, className: 'visually-hidden' }, 'Edit message'),
      input,
      el('button', { type: 'submit', className: 'primary' }, 'Save'),
      ' ',
      el('button', { type: 'button', className: 'cancel' }, 'Cancel'),
    );
    const cancel = () => this.finishEdit(message.id);
    form.querySelector('.cancel').addEventListener('click', cancel);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') cancel();
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.saveEdit(message, input.value);
    });
    body.replaceWith(form);
    node.querySelector('.message-actions').hidden = true;
    input.focus();
  }

  /** Closes the edit form and shows the message as stored, focusing its Edit button. */
  finishEdit(messageId) {
    this.editingId = null;
    const message = this.messages.get(messageId);
    if (!message) return;
    this.upsert(message);
    (this.nodes.get(messageId)?.querySelector('.message-actions button') ?? this.input).focus();
  }

  async saveEdit(message, text) {
    if (!text.trim()) {
      say(this.error, 'A message cannot be empty. Delete it instead.');
      return;
    }
    if (text === message.body) return this.finishEdit(message.id);
    say(this.error);
    try {
      const updated = await api.request(`/chats/${message.chat_id}/messages/${message.id}`, {
        method: 'PATCH',
        body: { body: text },
      });
      this.messages.set(updated.id, updated);
      this.chatList.noteMessage(updated.chat_id, updated, { unread: false });
      this.finishEdit(updated.id);
    } catch (error) {
      say(this.error, `Could not edit the message: ${error.message}`);
    }
  }

  async remove(message) {
    if (!window.confirm('Delete this message? Everyone in the conversation will see that a message was deleted.')) {
      return;
    }
    say(this.error);
    try {
      await api.request(`/chats/${message.chat_id}/messages/${message.id}`, { method: 'DELETE' });
      const tombstone = { ...message, body: null, deleted_at: new Date().toISOString() };
      this.upsert(tombstone);
      this.chatList.noteMessage(message.chat_id, tombstone, { unread: false });
      this.input.focus();
    } catch (error) {
      say(this.error, `Could not delete the message: ${error.message}`);
    }
  }

  isNearBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < 120;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}
