// The sign-in and registration form.

import * as api from './api.js';
import { byId, say } from './dom.js';

const MODES = {
  login: {
    title: 'Sign in',
    submit: 'Sign in',
    prompt: 'No account yet?',
    switchLabel: 'Create an account',
    passwordAutocomplete: 'current-password',
  },
  register: {
    title: 'Create an account',
    submit: 'Create account',
    prompt: 'Already have an account?',
    switchLabel: 'Sign in instead',
    passwordAutocomplete: 'new-password',
  },
};

export class AuthView {
  /** `onSignedIn(user)` runs after a successful login or registration. */
  constructor(onSignedIn) {
    this.onSignedIn = onSignedIn;
    this.root = byId('auth');
    this.form = byId('auth-form');
    this.error = byId('auth-error');
    this.notice = byId('auth-notice');
    this.email = byId('auth-email');
    this.password = byId('auth-password');
    this.name = byId('auth-name');
    this.submit = byId('auth-submit');
    this.mode = 'login';

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    byId('auth-switch').addEventListener('click', () => {
      this.setMode(this.mode === 'login' ? 'register' : 'login');
      this.email.focus();
    });
  }

  /** Shows the form, with an optional notice such as why the session ended. */
  show(notice = '') {
    this.root.hidden = false;
    this.setMode('login');
    this.password.value = '';
    say(this.error);
    say(this.notice, notice);
    this.email.focus();
  }

  hide() {
    this.root.hidden = true;
  }

  setMode(mode) {
    this.mode = mode;
    const text = MODES[mode];
    byId('auth-title').textContent = text.title;
    this.submit.textContent = text.submit;
    byId('auth-switch-prompt').textContent = text.prompt;
    byId('auth-switch').textContent = text.switchLabel;
    byId('auth-name-field').hidden = mode !== 'register';
    byId('auth-password-hint').hidden = mode !== 'register';
    this.password.autocomplete = text.passwordAutocomplete;
    say(this.error);
  }

  async send() {
    const email = this.email.value.trim();
    const password = this.password.value;
    if (!email || !password) {
      say(this.error, 'Enter your email and password.');
      (email ? this.password : this.email).focus();
      return;
    }

    say(this.error);
    say(this.notice);
    this.submit.disabled = true;
    try {
      const user =
        this.mode === 'register'
          ? await api.register(email, password, this.name.value.trim())
          : await api.login(email, password);
      this.password.value = '';
      this.name.value = '';
      this.onSignedIn(user);
    } catch (error) {
      say(this.error, error.message);
      this.password.focus();
    } finally {
      this.submit.disabled = false;
    }
  }
}
