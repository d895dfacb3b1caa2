// Relative times on the public pages. The published HTML is the same for every visitor (it is a
// snapshot): each <time datetime> carries the absolute time in the site's zone, and this script
// turns a past time into "12 minutes ago" in the visitor's language, with the absolute time in the
// visitor's own zone (and the site's zone, named) as its tooltip, also shown on focus or tap (each
// time is focusable: no mouse needed). A future time, and both ends of a maintenance window
// (data-window="start"/"end"), read as the absolute date and hour in the visitor's zone with the
// relative part as a suffix: "Sat 30 Nov, 10:00 – 12:00 CET (in 2 days)". Without JavaScript the
// site zone's absolute time stays. Re-run every minute and after the live page swapped in new markup
// (static/js/live.js dispatches "statuspage:updated").
(() => {
  'use strict';
  const MINUTE = 60 * 1000;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const lang = document.documentElement.lang || undefined;
  // Dates and hours in the visitor's own conventions (en-GB: "Sat 30 Nov, 10:00") when the
  // browser's language is a variant of the page's; the page's language otherwise.
  const dateLang = (() => {
    const mine = navigator.language || '';
    return lang && mine.split('-')[0].toLowerCase() === lang.split('-')[0].toLowerCase() ? mine : lang;
  })();
  const visitorZone = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { return ''; }
  })();
  const siteZone = (document.querySelector('[data-site-zone]') || {}).dataset?.siteZone || 'UTC';
  // "Etc/UTC", "UTC", "Etc/GMT"... are one zone: do not tell a visitor they differ.
  const sameZone = (a, b) => {
    const norm = (z) => (/^(Etc\/)?(UTC|UCT|GMT|Universal|Zulu|Greenwich)$/.test(z) ? 'UTC' : z);
    return norm(a) === norm(b);
  };
  const relative = typeof Intl.RelativeTimeFormat === 'function'
    ? new Intl.RelativeTimeFormat(lang, { numeric: 'auto' }) : null;
  const absolute = new Intl.DateTimeFormat(dateLang, {
    weekday: 'short', year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
  });
  let inSite = null;
  try {
    inSite = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', timeZone: siteZone, timeZoneName: 'short' });
  } catch (e) { inSite = null; } // a zone name this browser does not know

  function relativeText(when, now) {
    const diff = when - now; // negative: in the past
    const abs = Math.abs(diff);
    if (abs < MINUTE) return diff <= 0 ? 'just now' : 'in under a minute';
    if (!relative) return null;
    if (abs < HOUR) return relative.format(Math.round(diff / MINUTE), 'minute');
    if (abs < DAY) return relative.format(Math.round(diff / HOUR), 'hour');
    if (abs < 30 * DAY) return relative.format(Math.round(diff / DAY), 'day');
    return null; // a month or more: the date itself says more
  }

  // Formatters are made once: the page re-renders every <time> each minute.
  const dateOnly = new Intl.DateTimeFormat(dateLang, { year: 'numeric', month: 'short', day: 'numeric' });
  const dayOnly = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit' });
  const weekdayDay = new Intl.DateTimeFormat(dateLang, { weekday: 'short', day: 'numeric', month: 'short' });
  const weekdayDayYear = new Intl.DateTimeFormat(dateLang, {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
  });

  function dateText(when) {
    return dateOnly.format(when);
  }

  // "Sat 30 Nov, 10:00 CET" (the year only when it is not this year's), in the visitor's zone.
  function dayKey(when) {
    return dayOnly.format(when);
  }
  function dayText(when) {
    const withYear = new Date(when).getFullYear() !== new Date().getFullYear();
    return (withYear ? weekdayDayYear : weekdayDay).format(when);
  }
  const hourOnly = new Intl.DateTimeFormat(dateLang, { hour: '2-digit', minute: '2-digit' });
  const hourZone = new Intl.DateTimeFormat(dateLang, { hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });

  function absoluteText(el, when, now) {
    const rel = when > now ? relativeText(when, now) : null;
    const suffix = rel ? ` (${rel})` : '';
    if (el.dataset.window === 'start') {
      // The window's end follows: it names the zone (and the day, when it differs).
      const end = el.parentElement && el.parentElement.querySelector('time[data-window="end"]');
      const endWhen = end ? new Date(end.getAttribute('datetime')) : null;
      if (endWhen && !Number.isNaN(endWhen.getTime()) && dayKey(endWhen) === dayKey(when)) {
        return `${dayText(when)}, ${hourOnly.format(when)}`;
      }
      return `${dayText(when)}, ${hourZone.format(when)}`;
    }
    if (el.dataset.window === 'end') {
      const start = el.parentElement && el.parentElement.querySelector('time[data-window="start"]');
      const startWhen = start ? new Date(start.getAttribute('datetime')) : null;
      const startRel = startWhen && startWhen > now ? relativeText(startWhen.getTime(), now) : null;
      const tail = startRel ? ` (${startRel})` : '';
      if (startWhen && !Number.isNaN(startWhen.getTime()) && dayKey(startWhen) === dayKey(when)) {
        return `${hourZone.format(when)}${tail}`;
      }
      return `${dayText(when)}, ${hourZone.format(when)}${tail}`;
    }
    return `${dayText(when)}, ${hourZone.format(when)}${suffix}`;
  }

  function update(root) {
    const now = Date.now();
    for (const el of (root || document).querySelectorAll('time[datetime]')) {
      if (el.dataset.absolute === undefined) el.dataset.absolute = el.textContent; // the site-zone text
      const when = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(when.getTime())) continue;
      const absoluteFirst = el.dataset.window || when.getTime() > now + MINUTE;
      const text = absoluteFirst ? absoluteText(el, when.getTime(), now)
        : (relativeText(when.getTime(), now) || dateText(when));
      if (el.textContent !== text) el.textContent = text;
      let title = absolute.format(when);
      if (inSite && !sameZone(siteZone, visitorZone)) title += ` (${inSite.format(when)}, the site's time zone)`;
      el.title = title;
      // Reachable without a mouse: focus (keyboard) or a tap shows the exact moment (style.css).
      el.dataset.exact = title;
      if (!el.hasAttribute('tabindex')) el.tabIndex = 0;
    }
  }

  function explainZone() {
    const note = document.getElementById('time-zone-note');
    if (!note) return;
    note.textContent = visitorZone && !sameZone(visitorZone, siteZone)
      ? `Times are shown in your time zone (${visitorZone}); the site's time zone is ${siteZone}. Hover, tap or tab to a time for the exact moment.`
      : `Times are shown in ${siteZone}. Hover, tap or tab to a time for the exact moment.`;
  }

  globalThis.StatusTimes = { update };
  update();
  explainZone();
  setInterval(() => update(), MINUTE);
  document.addEventListener('statuspage:updated', (event) => update(event.target));
})();
