// The status widget other sites embed with one tag:
//   <script src="https://status.example.com/embed.js" async></script>
// It shows a small status pill where the tag is (or inside data-target="#id"), and during an
// incident or maintenance a banner in a corner of the page, both linking to the status page.
// Options (data-* on the tag): data-target="#css-selector", data-banner="off", data-pill="off",
// data-position="bottom-right|bottom-left|top", data-theme="auto|light|dark".
//
// Served by /embed.js with the page's current status inlined below: no request of its own (so no
// CORS and no connect-src needed on the host page), no cookies, no storage, nothing from a third
// party. It runs under a strict host CSP: script-src must allow the status page's origin, and it
// needs nothing else: no eval, no inline <style> or style="" (the host's style-src may even be
// 'none'), text only through textContent (Trusted Types compatible). Its look lives in shadow
// roots, styled by constructed stylesheets (adoptedStyleSheets, which CSP does not govern) or,
// in browsers without them, by CSSOM properties set one by one (also outside style-src).
(() => {
  'use strict';
  const DATA = /*STATUS_DATA*/null;
  const script = document.currentScript;
  if (!DATA || !script) return;
  const options = script.dataset;

  const COLORS = { none: '#1a7f37', minor: '#d4a72c', major: '#bc4c00', critical: '#c62828', maintenance: '#0969da' };
  const THEMES = {
    light: { bg: '#ffffff', fg: '#1f2328', muted: '#59636e', line: 'rgba(31,35,40,.18)', link: '#0969da' },
    dark: { bg: '#161b22', fg: '#e6edf3', muted: '#9198a1', line: 'rgba(240,246,252,.2)', link: '#58a6ff' },
  };
  const wantDark = options.theme === 'dark'
    || (options.theme !== 'light' && window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches);
  const T = THEMES[wantDark ? 'dark' : 'light'];
  const FONT = '13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const corner = { 'bottom-left': { bottom: '16px', left: '16px' }, top: { top: '16px', right: '16px' } }[
    options.position] || { bottom: '16px', right: '16px' };

  // One style table for both ways of applying it.
  const STYLES = {
    '.pill': {
      display: 'inline-flex', 'align-items': 'center', gap: '.45em', padding: '.2em .75em .2em .6em',
      'border-radius': '999px', border: `1px solid ${T.line}`, background: T.bg, color: T.fg, font: FONT,
      'font-weight': '500', 'text-decoration': 'none', 'white-space': 'nowrap', 'vertical-align': 'middle',
    },
    '.dot': { display: 'inline-block', width: '.62em', height: '.62em', 'border-radius': '50%', flex: '0 0 auto' },
    '.banner': {
      position: 'fixed', 'z-index': '2147483000', 'max-width': 'min(360px, calc(100vw - 32px))',
      'box-sizing': 'border-box', display: 'flex', gap: '.7em', 'align-items': 'flex-start', padding: '.8em .9em',
      background: T.bg, color: T.fg, font: FONT, border: `1px solid ${T.line}`, 'border-radius': '10px',
      'box-shadow': '0 8px 24px rgba(0,0,0,.18)', 'text-align': 'left', ...corner,
    },
    '.stripe': { width: '4px', 'align-self': 'stretch', 'border-radius': '2px', flex: '0 0 auto' },
    '.body': { flex: '1 1 auto', 'min-width': '0' },
    '.kicker': { margin: '0', color: T.muted, 'font-size': '12px' },
    '.title': { display: 'block', margin: '.15em 0', color: T.fg, 'font-weight': '600', 'text-decoration': 'none' },
    '.more': { margin: '.3em 0 0', 'font-size': '12px' },
    '.link': { color: T.link },
    '.close': {
      flex: '0 0 auto', border: '0', background: 'transparent', color: T.muted, font: '18px/1 system-ui, sans-serif',
      padding: '.1em .3em', cursor: 'pointer', 'border-radius': '6px',
    },
  };
  const FOCUS = `outline: 2px solid ${T.link}; outline-offset: 2px;`;
  const constructed = typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype
    && 'adoptedStyleSheets' in ShadowRoot.prototype;

  function sheetText() {
    const rules = Object.entries(STYLES).map(([selector, props]) =>
      `${selector}{${Object.entries(props).map(([k, v]) => `${k}:${v}`).join(';')}}`);
    rules.push(`a:focus-visible,button:focus-visible{${FOCUS}}`, '.title:hover{text-decoration:underline}');
    return rules.join('\n');
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text) node.textContent = text;
    if (!constructed) {
      for (const [k, v] of Object.entries(STYLES[`.${className}`] || {})) node.style.setProperty(k, v);
    }
    return node;
  }

  function mount(hostTag, kind, build) {
    const host = document.createElement(hostTag);
    host.setAttribute('data-status-widget', kind);
    const root = host.attachShadow({ mode: 'open' });
    if (constructed) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(sheetText());
      root.adoptedStyleSheets = [sheet];
    }
    root.append(build(root));
    return host;
  }

  function pill() {
    const link = el('a', 'pill');
    link.href = DATA.page.url;
    link.target = '_blank';
    link.rel = 'noopener';
    link.setAttribute('aria-label', `${DATA.page.name} status: ${DATA.status.description}`);
    const dot = el('span', 'dot');
    dot.style.setProperty('background', COLORS[DATA.status.indicator] || COLORS.none);
    dot.setAttribute('aria-hidden', 'true');
    link.append(dot, el('span', 'text', DATA.status.description));
    return link;
  }

  function banner(item, others) {
    const box = el('div', 'banner');
    box.setAttribute('role', 'region');
    box.setAttribute('aria-label', `${DATA.page.name} status`);
    const stripe = el('span', 'stripe');
    stripe.style.setProperty('background', COLORS[item.level] || COLORS.minor);
    const body = el('div', 'body');
    body.append(el('p', 'kicker', `${item.kind === 'maintenance' ? 'Maintenance' : 'Incident'} · ${item.status}`));
    const title = el('a', 'title', item.name);
    title.href = item.url;
    title.target = '_blank';
    title.rel = 'noopener';
    body.append(title);
    const more = el('p', 'more');
    const page = el('a', 'link', others ? `${others} more on the status page` : 'View the status page');
    page.href = DATA.page.url;
    page.target = '_blank';
    page.rel = 'noopener';
    more.append(page);
    body.append(more);
    const close = el('button', 'close', '\u00d7');
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss the status banner');
    close.addEventListener('click', () => box.getRootNode().host.remove());
    box.append(stripe, body, close);
    return box;
  }

  const place = () => {
    if (options.pill !== 'off') {
      const target = options.target ? document.querySelector(options.target) : null;
      const host = mount('span', 'pill', pill);
      if (target) target.append(host);
      else if (script.parentNode && script.parentNode !== document.head) script.after(host);
    }
    const items = DATA.incidents.concat(DATA.maintenances);
    if (options.banner !== 'off' && items.length) {
      document.body.append(mount('div', 'banner', () => banner(items[0], items.length - 1)));
    }
  };
  // The banner needs <body>; a tag in <head> runs before there is one.
  if (document.body) place();
  else document.addEventListener('DOMContentLoaded', place, { once: true });
})();
