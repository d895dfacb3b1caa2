// Uptime bars: the day's details (worst status, downtime, incidents with links) on hover, tap
// or keyboard focus. One tab stop per strip (roving tabindex); Left/Right/Home/End move between
// days, Escape closes; Tab from a bar goes into the details' links. No inline styles (the page's
// CSP is style-src 'self'): the arrow is placed with a CSS custom property set through CSSOM.
(() => {
  'use strict';
  // One day's details open at a time on the whole page; one opened by a tap or click stays
  // (hovering other bars does not replace it) until the next tap, Escape or a click elsewhere.
  let closeOpen = null;
  let pinned = null;

  function setup(root) {
    const bars = Array.from(root.querySelectorAll('.uptime-bars button'));
    const panel = root.querySelector('.uptime-detail');
    if (!bars.length || !panel) return;
    bars.forEach((bar, index) => {
      bar.tabIndex = index === bars.length - 1 ? 0 : -1;
      bar.setAttribute('aria-controls', panel.id);
      bar.setAttribute('aria-expanded', 'false');
    });
    let current = null;
    let hideTimer = 0;

    function render(bar) {
      const title = document.createElement('p');
      title.className = 'uptime-detail-title';
      title.textContent = bar.getAttribute('aria-label');
      const parts = [title];
      const extra = bar.dataset.detail && document.getElementById(bar.dataset.detail);
      if (extra) {
        for (const node of extra.childNodes) parts.push(node.cloneNode(true));
      } else {
        const none = document.createElement('p');
        none.className = 'muted';
        none.textContent = 'No incidents reported this day.';
        parts.push(none);
      }
      panel.replaceChildren(...parts);
    }

    function show(bar) {
      clearTimeout(hideTimer);
      if (closeOpen && closeOpen !== hide) closeOpen();
      closeOpen = hide;
      if (current && current !== bar) current.setAttribute('aria-expanded', 'false');
      current = bar;
      render(bar);
      bar.setAttribute('aria-expanded', 'true');
      panel.hidden = false;
      const strip = bar.closest('.uptime-bars');
      const x = bar.getBoundingClientRect().left - strip.getBoundingClientRect().left + bar.offsetWidth / 2;
      panel.style.setProperty('--arrow-x', `${Math.round(x)}px`);
    }

    function hide() {
      clearTimeout(hideTimer);
      if (closeOpen === hide) closeOpen = null;
      if (pinned === hide) pinned = null;
      panel.hidden = true;
      if (current) current.setAttribute('aria-expanded', 'false');
    }

    function focusBar(index) {
      const next = bars[Math.max(0, Math.min(bars.length - 1, index))];
      for (const b of bars) b.tabIndex = b === next ? 0 : -1;
      next.focus();
    }

    bars.forEach((bar, index) => {
      bar.addEventListener('mouseenter', () => { if (!pinned) show(bar); });
      bar.addEventListener('focus', () => {
        for (const b of bars) b.tabIndex = b === bar ? 0 : -1;
        show(bar);
      });
      bar.addEventListener('click', () => {
        if (pinned === hide && current === bar && !panel.hidden) {
          hide();
        } else {
          show(bar);
          pinned = hide;
        }
      });
      bar.addEventListener('keydown', (event) => {
        const moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: bars.length - 1 };
        if (event.key in moves) {
          event.preventDefault();
          focusBar(moves[event.key]);
        }
      });
    });

    root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !panel.hidden) {
        const back = current;
        hide();
        if (back && root.contains(document.activeElement)) back.focus();
      }
    });
    root.addEventListener('mouseleave', () => {
      if (pinned !== hide && !root.contains(document.activeElement)) hideTimer = setTimeout(hide, 250);
    });
    root.addEventListener('focusout', (event) => {
      if (!root.contains(event.relatedTarget)) hide();
    });
    document.addEventListener('click', (event) => {
      if (pinned === hide && !root.contains(event.target)) hide();
    });
  }

  function setupAll() {
    for (const root of document.querySelectorAll('[data-uptime]:not([data-uptime-ready])')) {
      root.dataset.uptimeReady = '';
      setup(root);
    }
  }

  setupAll();
  // The live page (static/js/live.js) swapped in fresh markup: set up its strips.
  document.addEventListener('statuspage:updated', setupAll);
})();
