// Entry point: restores the session, then wires the views to the API and
// to the server's events.

import * as api from './api.js';
import { AuthView } from './auth-view.js';
import { ChatList } from './chat-list.js';
import { Conversation } from './conversation.js';
import { byId, say } from './dom.js';
import { NewChat } from './new-chat.js';
import { Realtime } from './realtime.js';

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  online: '',
  reconnecting: 'Connection lost. Reconnecting… New messages will appear when it is back.',
};

const connection = byId('connection');
const announcer = byId('announcer');

const realtime = new Realtime({
  token: () => api.accessTokenValue(),
  renew: async () => {
    const renewed = await api.refresh();
    if (!renewed) api.endSession('Your session has ended. Sign in again.');
    return renewed;
  },
  onReady: catchUp,
  onEvent: handleEvent,
  onStatus: (status) => {
    say(connection, CONNECTION_TEXT[status]);
    connection.dataset.status = status;
  },
});

const chatList = new ChatList((chat) => openChat(chat));
const conversation = new Conversation({
  realtime,
  chatList,
  announce: (text) => {
    announcer.textContent = text;
  },
  onClose: () => chatList.setOpen(null),
});
const newChat = new NewChat((chat) => {
  chatList.upsert(chat);
  openChat(chat);
});
const authView = new AuthView(enterApp);

byId('logout').addEventListener('click', async () => {
  byId('logout').disabled = true;
  await api.logout();
  byId('logout').disabled = false;
});

api.sessionEvents.addEventListener('signedout', (event) => leaveApp(event.detail));

function enterApp(user) {
  authView.hide();
  byId('me-name').textContent = user.display_name;
  say(byId('app-error'));
  byId('app').hidden = false;
  chatList.load();
  realtime.start();
  byId('open-direct').focus();
}

function leaveApp(notice) {
  realtime.stop();
  if (conversation.chat) conversation.close();
  chatList.clear();
  newChat.reset();
  byId('app').hidden = true;
  authView.show(notice);
}

function openChat(chat) {
  chatList.setOpen(chat.id);
  conversation.open(chat);
}

/** Reloads what may have changed while the socket was down. */
function catchUp() {
  chatList.load();
  conversation.catchUp();
}

function handleEvent(event) {
  switch (event.type) {
    case 'message.created':
    case 'message.updated':
    case 'message.deleted':
      return messageEvent(event);
    case 'chat.created':
    case 'chat.updated':
      chatList.upsert(event.chat);
      return conversation.updateChat(event.chat);
    case 'member.added':
    case 'member.removed':
      return memberEvent(event);
    case 'read.updated':
      // Another tab or device of this user read the conversation.
      if (event.user_id === api.currentUser()?.id) chatList.markRead(event.chat_id);
      return undefined;
    case 'typing':
      if (conversation.isOpen(event.chat_id)) conversation.onTyping(event);
      return undefined;
    case 'error':
      console.warn(`Server event error ${event.code}: ${event.message}`);
      return undefined;
    default:
      return undefined;
  }
}

async function messageEvent(event) {
  const open = conversation.isOpen(event.chat_id);
  if (open) conversation.onMessageEvent(event);
  if (!chatList.get(event.chat_id)) {
    // A chat this list has not loaded, for example one further down: the
    // server's copy already counts this message.
    await refetchChat(event.chat_id);
    return;
  }
  const fromOther = event.message.sender_id !== api.currentUser()?.id;
  const unread =
    event.type === 'message.created' && fromOther && !(open && document.visibilityState === 'visible');
  chatList.noteMessage(event.chat_id, event.message, { unread });
}

async function memberEvent(event) {
  if (event.type === 'member.removed' && event.user_id === api.currentUser()?.id) {
    chatList.remove(event.chat_id);
    if (conversation.isOpen(event.chat_id)) {
      conversation.close();
      say(byId('app-error'), 'You were removed from that conversation.');
    }
    return;
  }
  const chat = await refetchChat(event.chat_id);
  if (chat) conversation.updateChat(chat);
}

async function refetchChat(chatId) {
  try {
    return await chatList.fetch(chatId);
  } catch (error) {
    say(byId('app-error'), `Could not update a conversation: ${error.message}`);
    return null;
  }
}

async function start() {
  let notice = '';
  try {
    const user = await api.restore();
    if (user) {
      byId('loading').hidden = true;
      enterApp(user);
      return;
    }
  } catch (error) {
    notice = error.message;
  }
  byId('loading').hidden = true;
  authView.show();
  if (notice) say(byId('auth-error'), notice);
}

start();
