// The "New message" and "New group" panels: find people, then start a
// direct conversation or create a group.

import * as api from './api.js';
import { byId, el, say } from './dom.js';

async function searchUsers(query) {
  const page = await api.request(`/users?query=${encodeURIComponent(query)}&limit=10`);
  return page.items;
}

/** Lists people as buttons; `label(user)` names each button's action. */
function renderPeople(list, users, label, onPick) {
  list.replaceChildren(
    ...users.map((user) => {
      const button = el('button', { type: 'button', className: 'link' }, label(user));
      button.addEventListener('click', () => onPick(user, button));
      return el('li', {}, el('span', { className: 'person' }, user.display_name), button);
    }),
  );
}

function foundText(count) {
  if (count === 0) return 'Nobody found. Names match from the start; emails must match exactly.';
  return `${count} ${count === 1 ? 'person' : 'people'} found.`;
}

export class NewChat {
  /** `onCreated(chat)` runs with the chat that was found or created. */
  constructor(onCreated) {
    this.onCreated = onCreated;
    this.members = new Map();
    this.panels = [
      { toggle: byId('open-direct'), panel: byId('new-direct'), focus: byId('direct-query') },
      { toggle: byId('open-group'), panel: byId('new-group'), focus: byId('group-title') },
    ];
    for (const entry of this.panels) {
      entry.toggle.addEventListener('click', () => this.toggle(entry));
    }

    byId('direct-search').addEventListener('submit', (event) => {
      event.preventDefault();
      this.searchDirect();
    });
    byId('group-search').addEventListener('click', () => this.searchGroup());
    byId('group-query').addEventListener('keydown', (event) => {
      // Enter in the search box searches instead of submitting the group form.
      if (event.key === 'Enter') {
        event.preventDefault();
        this.searchGroup();
      }
    });
    byId('group-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.createGroup();
    });
  }

  toggle(entry) {
    const opening = entry.panel.hidden;
    this.closeAll();
    if (!opening) return;
    entry.panel.hidden = false;
    entry.toggle.setAttribute('aria-expanded', 'true');
    entry.focus.focus();
  }

  closeAll() {
    for (const { toggle, panel } of this.panels) {
      panel.hidden = true;
      toggle.setAttribute('aria-expanded', 'false');
    }
  }

  /** Empties both panels, for example after a logout. */
  reset() {
    this.closeAll();
    this.members.clear();
    this.renderMembers();
    for (const id of ['direct-query', 'group-query', 'group-title']) byId(id).value = '';
    for (const id of ['direct-results', 'group-results']) byId(id).replaceChildren();
    for (const id of ['direct-error', 'direct-status', 'group-error', 'group-status']) say(byId(id));
  }

  async searchDirect() {
    const query = byId('direct-query').value.trim();
    const error = byId('direct-error');
    const status = byId('direct-status');
    if (!query) return say(error, 'Enter a name or an email address.');

    say(error);
    say(status, 'Searching…');
    try {
      const users = await searchUsers(query);
      say(status, foundText(users.length));
      renderPeople(byId('direct-results'), users, (user) => `Message ${user.display_name}`, (user, button) =>
        this.startDirect(user, button),
      );
    } catch (failure) {
      say(status);
      say(error, `Search failed: ${failure.message}`);
    }
  }

  async startDirect(user, button) {
    const error = byId('direct-error');
    button.disabled = true;
    try {
      const chat = await api.request('/chats', { method: 'POST', body: { kind: 'direct', user_id: user.id } });
      this.reset();
      this.onCreated(chat);
    } catch (failure) {
      say(error, `Could not start the conversation: ${failure.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async searchGroup() {
    const query = byId('group-query').value.trim();
    const status = byId('group-status');
    const error = byId('group-error');
    if (!query) return say(error, 'Enter a name or an email address to search for.');

    say(error);
    say(status, 'Searching…');
    try {
      const users = await searchUsers(query);
      say(status, foundText(users.length));
      renderPeople(byId('group-results'), users, (user) => `Add ${user.display_name}`, (user) => {
        this.members.set(user.id, user);
        this.renderMembers();
        say(status, `${user.display_name} added.`);
      });
    } catch (failure) {
      say(status);
      say(error, `Search failed: ${failure.message}`);
    }
  }

  renderMembers() {
    const list = byId('group-members');
    if (this.members.size === 0) {
      list.replaceChildren(el('li', { className: 'hint' }, 'Only you so far.'));
      return;
    }
    renderPeople(list, [...this.members.values()], (user) => `Remove ${user.display_name}`, (user) => {
      this.members.delete(user.id);
      this.renderMembers();
      byId('group-query').focus();
    });
  }

  async createGroup() {
    const title = byId('group-title').value.trim();
    const error = byId('group-error');
    if (!title) {
      say(error, 'Enter a group name.');
      byId('group-title').focus();
      return;
    }

    say(error);
    try {
      const chat = await api.request('/chats', {
        method: 'POST',
        body: { kind: 'group', title, member_ids: [...this.members.keys()] },
      });
      this.reset();
      this.onCreated(chat);
    } catch (failure) {
      say(error, `Could not create the group: ${failure.message}`);
    }
  }
}
