// The list of conversations: title, last message and unread count, most
// recent activity first.

import * as api from './api.js';
import { byId, el, say } from './dom.js';

/** Returns the name to show for a chat: its title, or the other member's name. */
export function chatTitle(chat) {
  if (chat.kind === 'group') return chat.title ?? 'Untitled group';
  const me = api.currentUser()?.id;
  const other = chat.members.find((member) => member.user_id !== me);
  return other?.display_name ?? 'Only you';
}

/** Returns a member's display name, or a placeholder for a former member. */
export function senderName(chat, userId) {
  if (userId === api.currentUser()?.id) return 'You';
  const member = chat?.members.find((candidate) => candidate.user_id === userId);
  return member?.display_name ?? `Former member #${userId}`;
}

function lastActivity(chat) {
  return Date.parse(chat.last_message?.created_at ?? chat.created_at) || 0;
}

function preview(chat) {
  const message = chat.last_message;
  if (!message) return 'No messages yet';
  const text = message.body ?? 'Message deleted';
  return `${senderName(chat, message.sender_id)}: ${text}`;
}

export class ChatList {
  /** `onSelect(chat)` runs when the user picks a conversation. */
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.chats = new Map();
    this.openId = null;
    this.nextCursor = null;
    this.list = byId('chat-list');
    this.error = byId('chats-error');
    this.more = byId('more-chats');
    this.more.addEventListener('click', () => this.loadMore());
  }

  /** Replaces the list with the first page from the server. */
  async load() {
    try {
      const page = await api.request('/chats');
      this.chats.clear();
      this.addPage(page);
      say(this.error);
    } catch (error) {
      say(this.error, `Could not load conversations: ${error.message}`);
    }
  }

  async loadMore() {
    if (!this.nextCursor) return;
    this.more.disabled = true;
    try {
      const page = await api.request(`/chats?cursor=${encodeURIComponent(this.nextCursor)}`);
      this.addPage(page);
      say(this.error);
    } catch (error) {
      say(this.error, `Could not load more conversations: ${error.message}`);
    } finally {
      this.more.disabled = false;
    }
  }

  addPage(page) {
    for (const chat of page.items) this.chats.set(chat.id, chat);
    this.nextCursor = page.next_cursor ?? null;
    this.render();
  }

  clear() {
    this.chats.clear();
    this.openId = null;
    this.nextCursor = null;
    this.render();
  }

  get(chatId) {
    return this.chats.get(chatId);
  }

  /** Adds or replaces a chat, as sent by the server. */
  upsert(chat) {
    this.chats.set(chat.id, chat);
    this.render();
  }

  remove(chatId) {
    this.chats.delete(chatId);
    this.render();
  }

  /** Fetches one chat, for events about a chat this list has not loaded. */
  async fetch(chatId) {
    const chat = await api.request(`/chats/${chatId}`);
    this.upsert(chat);
    return chat;
  }

  setOpen(chatId) {
    this.openId = chatId;
    this.render();
  }

  /** Records a new or changed message, counting it as unread when `unread` is true. */
  noteMessage(chatId, message, { unread }) {
    const chat = this.chats.get(chatId);
    if (!chat) return;
    const last = chat.last_message;
    if (!last || message.id >= last.id) chat.last_message = message;
    if (unread) chat.unread_count += 1;
    this.render();
  }

  markRead(chatId) {
    const chat = this.chats.get(chatId);
    if (!chat || chat.unread_count === 0) return;
    chat.unread_count = 0;
    this.render();
  }

  render() {
    const chats = [...this.chats.values()].sort((a, b) => lastActivity(b) - lastActivity(a));
    const focusedId = document.activeElement?.dataset?.chatId;
    this.list.replaceChildren(...chats.map((chat) => this.renderItem(chat)));
    // Re-rendering replaces the buttons, so keep keyboard focus where it was.
    if (focusedId) this.list.querySelector(`[data-chat-id="${focusedId}"]`)?.focus();
    byId('chats-empty').hidden = chats.length > 0;
    this.more.hidden = !this.nextCursor;
  }

  renderItem(chat) {
    const unread = chat.unread_count > 0 ? chat.unread_count : 0;
    const badge = unread
      ? el('span', { className: 'unread' }, String(unread), el('span', { className: 'visually-hidden' }, ' unread'))
      : null;
    const button = el(
      'button',
      { type: 'button', className: 'chat-item' },
      el('span', { className: 'chat-title' }, chatTitle(chat)),
      badge,
      el('span', { className: 'chat-preview' }, preview(chat)),
    );
    button.dataset.chatId = String(chat.id);
    if (chat.id === this.openId) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => this.onSelect(this.chats.get(chat.id) ?? chat));
    return el('li', {}, button);
  }
}
