/*
 * Subscribe control for browser Web Push (ES module, no build step).
 * Markup: templates/_subscribe.html (root #push-subscribe). The root's data-state is one of
 *   loading | unsupported | ios-install | denied | subscribed | unsubscribed | error | disabled
 * Server API (same origin, JSON):
 *   GET    /api/push/public-key      -> {"publicKey": "<base64url>"}
 *   POST   /api/push/subscriptions   {...PushSubscription.toJSON(), components, maintenance?, resolved?,
 *                                      oldEndpoint?} -> {"id", "status", "maintenance", "resolved"}
 *   DELETE /api/push/subscriptions   {"endpoint"}
 *   POST   /api/push/test            {"endpoint"} -> 202
 * Errors are {"error": "..."} and are shown to the visitor as is; browser errors are put in
 * plain words for the visitor's platform (the raw error goes to the console), and the panel
 * always offers the Atom feed as another way to follow.
 * The header button #subscribe-open opens and closes the panel (the root); Escape and the
 * close button close it and give focus back to the header button.
 */
import './push-shared.js';

const { store } = globalThis.StatusPush;
const shared = globalThis.StatusPush;
const SW_URL = '/sw-push.js';
const TEST_URL = '/api/push/test';
const SYNC_EVERY_MS = 24 * 60 * 60 * 1000; // re-POST an existing subscription at most daily
const KEY_RECHECK_MS = 60 * 1000; // look for a rotated site key at most once a minute
const SW_READY_TIMEOUT_MS = 15000;
// The visitor's choices besides components, as the server names them; stored under "choices".
const DEFAULT_CHOICES = Object.freeze({ maintenance: true, resolved: true });

/* ------------------------------------------------------------------ helpers */

class ApiError extends Error {
  constructor(message, status, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function api(method, url, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError('Could not reach the server. Check your connection and try again.', 0);
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (!res.ok) {
    const retryAfter = res.headers.get('Retry-After');
    let msg = data && typeof data.error === 'string' && data.error ? data.error : '';
    if (!msg) {
      msg = res.status === 429
        ? 'Too many requests. Please wait a moment and try again.'
        : `The status server could not do this right now (error ${res.status}). Please try again in a minute.`;
    }
    throw new ApiError(msg, res.status, retryAfter);
  }
  return data;
}

function detectPlatform() {
  const ua = navigator.userAgent || '';
  const isIOS = /iPhone|iPad|iPod/.test(ua)
    || (navigator.platform === 'MacIntel' && navigator.maxTouchPoints > 1);
  const standalone = navigator.standalone === true
    || (typeof matchMedia === 'function' && matchMedia('(display-mode: standalone)').matches);
  const supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  const isAndroid = /Android/.test(ua);
  // Which help applies: "ios" (Home Screen app), "android" or "desktop".
  const kind = isIOS ? 'ios' : isAndroid ? 'android' : 'desktop';
  return { isIOS, isAndroid, standalone, supported, kind };
}

/** Promise-based requestPermission that also copes with the old callback-only form. */
function requestPermission() {
  return new Promise((resolve) => {
    let done = false;
    const finish = (p) => { if (!done) { done = true; resolve(p || Notification.permission); } };
    try {
      const maybe = Notification.requestPermission(finish);
      if (maybe && typeof maybe.then === 'function') maybe.then(finish, () => finish(Notification.permission));
    } catch (e) {
      finish(Notification.permission);
    }
  });
}

function withTimeout(promise, ms, message) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(message)), ms); }),
  ]).finally(() => clearTimeout(t));
}

function errorText(e) {
  if (!e) return 'Something went wrong.';
  if (e instanceof ApiError || e instanceof VisitorError) return e.message;
  if (e.name === 'NotAllowedError') return 'The browser did not allow notifications for this site.';
  return 'Something went wrong in the browser. Reload the page and try again.';
}

/** An error whose message is already written for the visitor. */
class VisitorError extends Error {
  constructor(message) {
    super(message);
    this.name = 'VisitorError';
  }
}

/**
 * Why the browser would not create a push subscription, in plain words. When permission was
 * granted the usual cause is a private (incognito) window, where Chrome, Edge and Firefox turn
 * push off; otherwise it depends on the platform.
 */
function subscribeFailureText(e, platform) {
  if (Notification.permission === 'granted') {
    return 'Notifications are allowed, but this browser would not register for them. This usually '
      + 'happens in a private or incognito window: open this page in a normal window and try again.';
  }
  if (e && e.name === 'NotAllowedError') {
    return platform.kind === 'ios'
      ? 'Notifications were not allowed. Open Settings \u2192 Notifications \u2192 this app, and allow them.'
      : 'Notifications were not allowed for this site. Allow them in the browser\u2019s site settings, then try again.';
  }
  return 'This browser could not register for notifications right now. Reload the page and try again.';
}

/* ------------------------------------------------------------------ control */

class SubscribeControl {
  constructor(root) {
    this.root = root;
    const $ = (id) => root.querySelector(`#${id}`);
    this.el = {
      status: $('subscribe-status'),
      toggle: document.getElementById('subscribe-open'),
      close: $('subscribe-close'),
      feedback: $('subscribe-feedback'),
      components: $('subscribe-choices') || $('subscribe-components'),
      all: $('subscribe-all'),
      boxes: Array.from(root.querySelectorAll('input[type="checkbox"][name="components"]')),
      choices: $('subscribe-kinds'),
      incidentsOnly: $('subscribe-kind-incidents'),
      withMaintenance: $('subscribe-kind-all'),
      resolved: $('subscribe-resolved'),
      primary: $('subscribe-button'),
      save: $('subscribe-save'),
      test: $('subscribe-test'),
      change: $('subscribe-change'),
      unsubscribe: $('subscribe-unsubscribe'),
      helps: Array.from(root.querySelectorAll('[data-for]')),
    };
    this.state = root.dataset.state || 'loading';
    this.enabled = root.dataset.enabled !== 'false';
    this.reg = null;
    this.serverKey = null;
    this.keyCheckedAt = 0;
    this.editing = false;
    this.busy = false;
    this.generation = 0;
    this.hasSubscription = false;
    this.bind();
  }

  /* ---- rendering ---- */

  render(state, status) {
    const { el } = this;
    this.state = state;
    this.root.dataset.state = state;
    if (status !== undefined && el.status) el.status.textContent = status;
    if (state !== 'subscribed') this.editing = false;

    for (const h of el.helps) h.hidden = h.dataset.for !== state;
    if (el.components) {
      el.components.hidden = !(state === 'unsubscribed' || (state === 'subscribed' && this.editing));
      if (state === 'subscribed' && this.editing && 'open' in el.components) el.components.open = true;
    }
    if (el.toggle) {
      el.toggle.dataset.state = state;
      const label = el.toggle.querySelector('span');
      if (label) label.textContent = state === 'subscribed' ? 'Subscribed' : 'Subscribe';
    }
    if (el.primary) {
      el.primary.hidden = !(state === 'unsubscribed' || state === 'error');
      el.primary.textContent = state === 'error' ? 'Try again' : 'Get notified';
    }
    if (el.save) el.save.hidden = !(state === 'subscribed' && this.editing);
    if (el.test) el.test.hidden = !(state === 'subscribed' && !this.editing);
    if (el.change) {
      el.change.hidden = !(state === 'subscribed' && (el.components || el.choices));
      el.change.setAttribute('aria-expanded', String(state === 'subscribed' && this.editing));
      el.change.textContent = state === 'subscribed' && this.editing ? 'Cancel' : 'Change choices';
    }
    if (el.unsubscribe) {
      el.unsubscribe.hidden = !(state === 'subscribed' || (state === 'disabled' && this.hasSubscription));
    }
    this.fixFocus();
  }

  /** If the focused control just disappeared, move focus somewhere sensible inside the region. */
  fixFocus(wasInside = false) {
    const active = document.activeElement;
    const inside = active && active !== document.body && this.root.contains(active);
    if (!inside && !wasInside) return;
    if (inside && !active.disabled && !active.closest('[hidden]')) return;
    const next = Array.from(this.root.querySelectorAll('button'))
      .find((b) => !b.hidden && !b.disabled && !b.closest('[hidden]'));
    (next || this.el.status).focus();
  }

  feedback(text, kind = 'info') {
    const f = this.el.feedback;
    if (!f) return;
    f.textContent = text || '';
    f.classList.toggle('is-error', kind === 'error');
    f.classList.toggle('is-success', kind === 'success');
  }

  setBusy(busy) {
    this.busy = busy;
    if (busy) this.root.setAttribute('aria-busy', 'true');
    else this.root.removeAttribute('aria-busy');
    for (const b of this.root.querySelectorAll('button')) b.disabled = busy;
    if (!busy) this.fixFocus();
  }

  async run(task) {
    if (this.busy) return;
    const focused = document.activeElement;
    this.setBusy(true);
    try {
      await task();
    } catch (e) {
      console.error('[subscribe]', e);
      this.feedback(errorText(e), 'error');
    } finally {
      this.setBusy(false);
      const wasInside = !!focused && this.root.contains(focused);
      const now = document.activeElement;
      if (now && now !== document.body && now !== focused) {
        this.fixFocus(); // the task moved focus itself
      } else if (wasInside && !focused.disabled && !focused.closest('[hidden]')) {
        focused.focus(); // disabling the button while busy dropped focus: put it back
      } else {
        this.fixFocus(wasInside);
      }
    }
  }

  /* ---- component choice ---- */

  selectedComponents() {
    const picked = this.el.boxes.filter((b) => b.checked).map((b) => Number(b.value));
    if (!picked.length || (this.el.all && this.el.all.checked)) return [];
    return picked;
  }

  showComponents(ids) {
    const set = new Set((Array.isArray(ids) ? ids : []).map(Number));
    let any = false;
    for (const b of this.el.boxes) {
      b.checked = set.has(Number(b.value));
      any = any || b.checked;
    }
    if (this.el.all) this.el.all.checked = !any;
  }

  describeComponents(ids) {
    if (!Array.isArray(ids) || !ids.length) return 'all components';
    const names = this.el.boxes
      .filter((b) => ids.includes(Number(b.value)))
      .map((b) => b.dataset.name || b.value);
    return names.length ? names.join(', ') : `${ids.length} selected component${ids.length === 1 ? '' : 's'}`;
  }

  /* ---- what to send (incidents only or with maintenance; resolved notices) ---- */

  /** The choices stored after the server last accepted them, or undefined (none known yet). */
  async storedChoices() {
    const c = await store.get('choices');
    if (c && typeof c.maintenance === 'boolean' && typeof c.resolved === 'boolean') return c;
    return undefined;
  }

  selectedChoices() {
    const { el } = this;
    return {
      maintenance: !(el.incidentsOnly && el.incidentsOnly.checked),
      resolved: el.resolved ? el.resolved.checked : true,
    };
  }

  showChoices(choices) {
    const c = choices || DEFAULT_CHOICES;
    if (this.el.incidentsOnly) this.el.incidentsOnly.checked = !c.maintenance;
    if (this.el.withMaintenance) this.el.withMaintenance.checked = !!c.maintenance;
    if (this.el.resolved) this.el.resolved.checked = !!c.resolved;
  }

  describeChoices(choices) {
    const c = choices || DEFAULT_CHOICES;
    const parts = [];
    if (!c.maintenance) parts.push('incidents only');
    if (!c.resolved) parts.push('not when resolved');
    return parts.length ? ` (${parts.join(', ')})` : '';
  }

  async renderSubscribed(ids, choices) {
    const chosen = ids !== undefined ? ids : await store.components();
    const picked = choices !== undefined ? choices : await this.storedChoices();
    this.showComponents(chosen);
    this.showChoices(picked);
    this.hasSubscription = true;
    this.render('subscribed', `You are subscribed to notifications about ${this.describeComponents(chosen)}`
      + `${this.describeChoices(picked)}.`);
  }

  /* ---- the panel ---- */

  get isOpen() {
    return !this.root.hidden;
  }

  setOpen(open, { returnFocus = false } = {}) {
    const { el } = this;
    this.root.hidden = !open;
    if (el.toggle) el.toggle.setAttribute('aria-expanded', String(open));
    if (open && el.status) el.status.focus(); // a screen reader reads the current state first
    else if (!open && returnFocus && el.toggle) el.toggle.focus();
  }

  bindPanel() {
    const { el } = this;
    if (!el.toggle) { this.root.hidden = false; return; } // no header button: show it in place
    el.toggle.hidden = false;
    el.toggle.addEventListener('click', () => this.setOpen(!this.isOpen));
    if (el.close) el.close.addEventListener('click', () => this.setOpen(false, { returnFocus: true }));
    // Escape closes it from inside the panel or from the header button.
    document.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape' || !this.isOpen) return;
      const active = document.activeElement;
      if (!this.root.contains(active) && active !== el.toggle) return;
      event.preventDefault();
      this.setOpen(false, { returnFocus: true });
    });
    document.addEventListener('click', (event) => {
      if (this.isOpen && !this.root.contains(event.target) && !el.toggle.contains(event.target)) this.setOpen(false);
    });
    if (location.hash === '#subscribe') this.setOpen(true);
  }

  /* ---- events ---- */

  bind() {
    const { el } = this;
    this.bindPanel();
    if (el.primary) {
      el.primary.addEventListener('click', () => {
        if (this.busy) return;
        if (this.state === 'error') { this.feedback(''); this.init(); return; }
        if (this.state !== 'unsubscribed') return;
        // Ask for permission synchronously inside the click (Safari needs the user gesture).
        const permission = Notification.permission === 'granted'
          ? Promise.resolve('granted') : requestPermission();
        this.run(() => this.subscribe(permission));
      });
    }
    if (el.unsubscribe) el.unsubscribe.addEventListener('click', () => this.run(() => this.unsubscribe()));
    if (el.test) el.test.addEventListener('click', () => this.run(() => this.sendTest()));
    if (el.save) el.save.addEventListener('click', () => this.run(() => this.saveComponents()));
    if (el.change) {
      el.change.addEventListener('click', async () => {
        if (this.busy || this.state !== 'subscribed') return;
        this.editing = !this.editing;
        if (!this.editing) { // cancel: restore
          this.showComponents(await store.components());
          this.showChoices(await this.storedChoices());
        }
        this.feedback('');
        this.render('subscribed');
        if (this.editing) {
          const first = (el.components || el.choices) && (el.components || el.choices).querySelector('input');
          if (first) first.focus();
        }
      });
    }
    if (el.all) {
      el.all.addEventListener('change', () => {
        if (el.all.checked) for (const b of el.boxes) b.checked = false;
      });
    }
    for (const b of el.boxes) {
      b.addEventListener('change', () => {
        if (el.all) el.all.checked = !el.boxes.some((x) => x.checked);
      });
    }
    // The site's key may be rotated while this page stays open: look again when it is shown.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.recheckKey();
    });
    // Re-evaluate when the visitor changes the permission in site settings.
    if (navigator.permissions && navigator.permissions.query) {
      navigator.permissions.query({ name: 'notifications' }).then((status) => {
        status.addEventListener('change', () => { if (!this.busy) this.init(); });
      }).catch(() => { /* not supported for notifications (older Safari) */ });
    }
  }

  /* ---- flows ---- */

  async fetchServerKey() {
    this.keyCheckedAt = Date.now();
    const data = await api('GET', shared.KEY_URL);
    try {
      this.serverKey = shared.publicKeyFrom(data);
    } catch (e) {
      throw new ApiError(e.message, 0);
    }
    return this.serverKey;
  }

  async activeRegistration() {
    if (this.reg && this.reg.active) return this.reg;
    const reg = await withTimeout(navigator.serviceWorker.ready, SW_READY_TIMEOUT_MS,
      'The notification service worker did not start. Reload the page and try again.');
    this.reg = reg;
    return reg;
  }

  /** POST the subscription with the components and choices (the stored ones when not given:
   *  none stored yet means the server keeps what it has), then remember what it accepted. */
  async postSubscription(sub, components, oldEndpoint, choices) {
    const picked = choices !== undefined ? choices : await this.storedChoices();
    const body = Object.assign(shared.subscriptionBody(sub, components, oldEndpoint), picked || {});
    const data = await api('POST', shared.SUBSCRIPTIONS_URL, body);
    await shared.remember(sub, components);
    if (data && typeof data.maintenance === 'boolean' && typeof data.resolved === 'boolean') {
      await store.set('choices', { maintenance: data.maintenance, resolved: data.resolved });
    }
    return data;
  }

  /*
   * init(): find out what this browser can do and show it. Each step renders its outcome and
   * says whether to go on; `stale()` turns true once a newer init() started (a permission change
   * re-runs it), and a stale run renders nothing more.
   */
  async init() {
    const gen = ++this.generation;
    const stale = () => gen !== this.generation;
    this.render('loading', 'Checking whether this browser can receive notifications…');
    const platform = detectPlatform();
    if (!this.enabled) {
      await this.showDisabled(platform, stale);
      return;
    }
    if (this.showBlocked(platform)) return;
    const key = await this.registerAndFetchKey(stale);
    if (!key) return;
    let sub = null;
    try { sub = await this.reg.pushManager.getSubscription(); } catch (e) { sub = null; }
    if (stale()) return;
    const chosen = await store.components();
    if (stale()) return;
    if (!sub || Notification.permission !== 'granted') {
      this.showUnsubscribed(chosen, 'Get a browser notification when an incident starts, is updated or is resolved.');
      return;
    }
    if (shared.madeWithOtherKey(sub, key)) {
      await this.renewForNewKey(sub, key, chosen, stale);
      return;
    }
    this.syncWithServer(sub, chosen);
    await this.renderSubscribed(chosen);
  }

  /** Push is turned off by the site; an existing subscriber may still unsubscribe. */
  async showDisabled({ supported }, stale) {
    this.hasSubscription = false;
    if (supported) {
      try {
        const reg = await navigator.serviceWorker.getRegistration('/');
        const sub = reg && await reg.pushManager.getSubscription();
        if (sub) { this.reg = reg; this.hasSubscription = true; }
      } catch (e) { /* ignore */ }
    }
    if (!stale()) this.render('disabled', 'Push notifications are turned off for this site.');
  }

  /** States in which this browser cannot subscribe now; true when one was shown. */
  showBlocked({ isIOS, standalone, supported }) {
    if (isIOS && !standalone) {
      this.render('ios-install', 'To get notifications on iPhone or iPad, add this site to your Home Screen first.');
    } else if (!supported) {
      let msg = 'This browser cannot receive push notifications.';
      if (!window.isSecureContext) msg = 'Push notifications need a secure (HTTPS) connection to this site.';
      else if (isIOS) msg = 'Notifications need iOS or iPadOS 16.4 or later. Update your device, then open this app from the Home Screen again.';
      this.render('unsupported', msg);
    } else if (Notification.permission === 'denied') {
      this.showDenied();
    } else {
      return false;
    }
    return true;
  }

  /** Blocked in the browser's settings: only the steps for this visitor's platform. */
  showDenied() {
    const kind = detectPlatform().kind;
    for (const li of this.root.querySelectorAll('[data-platform]')) li.hidden = li.dataset.platform !== kind;
    this.render('denied', 'Notifications are blocked for this site in your browser settings.');
  }

  /** Register the service worker and fetch the site's push key; null (error shown) if either fails. */
  async registerAndFetchKey(stale) {
    try {
      this.reg = await navigator.serviceWorker.register(SW_URL, { scope: '/' });
    } catch (e) {
      console.warn('[subscribe] service worker registration failed:', e);
      // Firefox's private windows and "never remember history" refuse service workers.
      if (!stale()) {
        this.render('error', 'This browser would not start notifications for this site. Private windows '
          + 'and some privacy settings block them: try a normal window.');
      }
      return null;
    }
    if (stale()) return null;
    try {
      const key = await this.fetchServerKey();
      return stale() ? null : key;
    } catch (e) {
      if (!stale()) this.render('error', `Notifications are unavailable right now: ${errorText(e)}`);
      return null;
    }
  }

  showUnsubscribed(components, status) {
    this.hasSubscription = false;
    this.showComponents(components);
    this.storedChoices().then((c) => this.showChoices(c));
    this.render('unsubscribed', status);
  }

  /** The site's push key changed: renew silently (permission is already granted). */
  async renewForNewKey(sub, key, chosen, stale) {
    try {
      const reg = await this.activeRegistration();
      const renewed = await shared.subscriptionForKey(reg.pushManager, key, sub);
      await this.postSubscription(renewed.sub, chosen, renewed.oldEndpoint);
    } catch (e) {
      console.warn('[subscribe] renewing the subscription failed:', e);
      if (!stale()) {
        this.showUnsubscribed(chosen, 'This site\u2019s notification keys changed. Press \u201cGet notified\u201d to renew your subscription.');
      }
      return;
    }
    if (!stale()) await this.renderSubscribed(chosen);
  }

  /** The page is visible again: if the site's key was rotated since it was last fetched (the page
   *  stayed open), renew silently as init() does on a load. At most once per KEY_RECHECK_MS. */
  async recheckKey() {
    if (this.busy || this.rechecking || this.state !== 'subscribed') return;
    if (Date.now() - this.keyCheckedAt < KEY_RECHECK_MS) return;
    const gen = this.generation;
    const stale = () => gen !== this.generation || this.busy;
    this.rechecking = true;
    try {
      let key, sub;
      try {
        key = await this.fetchServerKey();
        sub = this.reg && await this.reg.pushManager.getSubscription();
      } catch (e) {
        return; // offline or unavailable: the next visit looks again
      }
      if (stale() || !sub || Notification.permission !== 'granted' || !shared.madeWithOtherKey(sub, key)) return;
      const chosen = await store.components();
      if (!stale()) await this.renewForNewKey(sub, key, chosen, stale);
    } finally {
      this.rechecking = false;
    }
  }

  /** Keep the server in sync (it may have lost or expired the row), at most once a day. */
  syncWithServer(sub, chosen) {
    store.get('lastSync').then((lastSync) => {
      if (Date.now() - (Number(lastSync) || 0) > SYNC_EVERY_MS) return this.postSubscription(sub, chosen);
      return undefined;
    }).catch((e) => console.warn('[subscribe] sync failed:', e));
  }

  async subscribe(permissionPromise) {
    const permission = await permissionPromise;
    if (permission === 'denied') {
      this.showDenied();
      return;
    }
    if (permission !== 'granted') {
      this.feedback('Notifications were not allowed. Press \u201cGet notified\u201d again when you are ready.', 'error');
      return;
    }
    const key = this.serverKey || await this.fetchServerKey();
    const reg = await this.activeRegistration();
    let sub;
    let oldEndpoint;
    try {
      ({ sub, oldEndpoint } = await shared.subscriptionForKey(reg.pushManager, key));
    } catch (e) {
      console.warn('[subscribe] pushManager.subscribe failed:', e);
      throw new VisitorError(subscribeFailureText(e, detectPlatform()));
    }
    const components = this.selectedComponents();
    const choices = this.selectedChoices();
    try {
      await this.postSubscription(sub, components, oldEndpoint, choices);
    } catch (e) {
      // The server did not accept it: do not leave a browser subscription nobody sends to.
      try { await sub.unsubscribe(); } catch (e2) { /* ignore */ }
      if (e instanceof ApiError && e.status) throw new ApiError(`Could not subscribe: ${e.message}`, e.status, e.retryAfter);
      throw e;
    }
    await this.renderSubscribed(components, choices);
    this.feedback('Subscribed. Use \u201cSend me a test\u201d to check that notifications arrive.', 'success');
  }

  async unsubscribe() {
    const reg = this.reg || await navigator.serviceWorker.getRegistration('/');
    const sub = reg && await reg.pushManager.getSubscription();
    let serverError = null;
    if (sub) {
      try {
        await api('DELETE', shared.SUBSCRIPTIONS_URL, { endpoint: sub.endpoint });
      } catch (e) {
        serverError = e; // the push service will report the endpoint gone; the server expires it then
      }
      await sub.unsubscribe();
    }
    await store.del('endpoint');
    await store.del('lastSync');
    this.hasSubscription = false;
    if (this.state === 'disabled') {
      this.render('disabled');
    } else {
      this.showComponents(await store.components());
      this.showChoices(await this.storedChoices());
      this.render('unsubscribed', 'You will not receive notifications from this site.');
    }
    if (serverError) this.feedback(`Unsubscribed in this browser. The server said: ${errorText(serverError)}`, 'error');
    else this.feedback('Unsubscribed.', 'success');
  }

  async sendTest() {
    const reg = await this.activeRegistration();
    const sub = await reg.pushManager.getSubscription();
    if (!sub) {
      await this.init();
      this.feedback('This browser is no longer subscribed. Press \u201cGet notified\u201d to subscribe again.', 'error');
      return;
    }
    this.feedback('Sending a test notification\u2026');
    try {
      await api('POST', TEST_URL, { endpoint: sub.endpoint });
    } catch (e) {
      let msg = errorText(e);
      if (e instanceof ApiError && e.status === 429 && e.retryAfter && /^\d+$/.test(e.retryAfter)) {
        msg += ` (try again in ${e.retryAfter} s)`;
      }
      this.feedback(msg, 'error');
      return;
    }
    this.feedback('Test sent \u2014 it should arrive in a few seconds.', 'success');
  }

  async saveComponents() {
    const reg = await this.activeRegistration();
    const sub = await reg.pushManager.getSubscription();
    if (!sub) {
      await this.init();
      this.feedback('This browser is no longer subscribed. Press \u201cGet notified\u201d to subscribe again.', 'error');
      return;
    }
    const components = this.selectedComponents();
    const choices = this.selectedChoices();
    await this.postSubscription(sub, components, undefined, choices);
    this.editing = false;
    await this.renderSubscribed(components, choices);
    this.feedback('Your choices were saved.', 'success');
    if (this.el.change) this.el.change.focus();
  }
}

/* ------------------------------------------------------------------ boot */

function boot() {
  for (const root of document.querySelectorAll('#push-subscribe')) {
    if (root.dataset.bound) continue;
    root.dataset.bound = 'true';
    const control = new SubscribeControl(root);
    root.subscribeControl = control; // handy for debugging / tests
    control.init();
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
