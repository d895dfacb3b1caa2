// Live preview of the push notification the current form will send, using the trigger templates.
// Same substitution rule as the server: plain {name} replacement, unknown names left as typed.
(function () {
  const root = document.getElementById('notification-preview');
  if (!root) return;
  const previews = JSON.parse(root.dataset.previews || '{}');
  const baseEvent = root.dataset.event;
  const form = document.getElementById('composer');
  const $ = (id) => document.getElementById(id);
  const human = (s) => (s || '').replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

  // Markdown → plain text the way the server does it (markdown-it CommonMark, then every tag
  // stripped): the common constructs only, but never touching ordinary punctuation like (EU) or !.
  const decoder = document.createElement('textarea');
  function decodeEntities(text) {
    decoder.innerHTML = text.replace(/</g, '&lt;'); // RCDATA: nothing is parsed as markup
    return decoder.value;
  }
  function plain(md) {
    const kept = []; // code spans and escaped characters, restored verbatim at the end
    const keep = (text) => `\uE000${kept.push(text) - 1}\uE001`;
    let s = String(md || '').replace(/\r\n?/g, '\n');
    s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (m, ticks, code) => {
      const inner = code.replace(/\n/g, ' ');
      return keep(/^ .* $/.test(inner) && inner.trim() ? inner.slice(1, -1) : inner);
    });
    s = s.replace(/\\([!-/:-@[-`{-~])/g, (m, ch) => keep(ch));
    s = s.split('\n').map((line) => line
      .replace(/^\s{0,3}(```|~~~).*$/, '')
      .replace(/^\s{0,3}\[[^\]]+\]:\s*\S+.*$/, '')                // link reference definitions
      .replace(/^\s{0,3}([-*_])(\s*\1){2,}\s*$/, '')             // thematic breaks
      .replace(/^\s{0,3}(=+|-+)\s*$/, '')                        // setext underlines
      .replace(/^(\s{0,3}>\s?)+/, '')                            // blockquotes
      .replace(/^\s{0,3}#{1,6}(\s+|$)/, '').replace(/\s+#+\s*$/, '') // ATX headings
      .replace(/^\s*([-*+]|\d{1,9}[.)])\s+/, '')                 // list items
    ).join('\n');
    s = s.replace(/!\[[^\]]*\]\([^)]*\)/g, '')                    // images (the server drops them)
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')                    // inline links
      .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1')                   // reference links
      .replace(/<((?:https?|mailto|ftp):[^<>\s]+)>/gi, '$1')      // autolinks
      .replace(/<([^<>\s@]+@[^<>\s@]+)>/g, '$1');
    for (let i = 0; i < 3; i++) {                                   // nested emphasis
      s = s.replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, (m, mark, text, offset, all) => {
        if (mark === '__' && (/\w/.test(all[offset - 1] || '') || /\w/.test(all[offset + m.length] || ''))) return m;
        return text;
      })
        .replace(/(^|[^\w*])\*(?=[^\s*])([^*]*?[^\s*])?\*(?!\*)/g, (m, pre, text) => pre + (text || ''))
        .replace(/(^|[^\w_])_(?=[^\s_])([^_]*?[^\s_])?_(?![\w_])/g, (m, pre, text) => pre + (text || ''))
        .replace(/~~(?=\S)([\s\S]*?\S)~~/g, '$1');
    }
    s = decodeEntities(s);
    s = s.replace(/\uE000(\d+)\uE001/g, (m, i) => kept[Number(i)]);
    return s.replace(/\s+/g, ' ').trim();
  }

  let triggerRowEvent = null; // on the push settings page: the trigger row being edited

  function eventType() {
    if (triggerRowEvent) return triggerRowEvent;
    const status = form && form.querySelector('[name=status]') ? form.querySelector('[name=status]').value : '';
    if (baseEvent.startsWith('incident.') && (status === 'resolved' || status === 'postmortem') && baseEvent !== 'incident.created') return 'incident.resolved';
    if (baseEvent === 'maintenance.scheduled') return baseEvent;
    if (baseEvent.startsWith('maintenance.')) return status === 'completed' ? 'maintenance.completed' : 'maintenance.started';
    return baseEvent;
  }

  function values() {
    const v = { site_name: '', incident_name: 'Elevated error rates', status: 'Investigating', impact: 'Minor',
      component_name: 'API', update_body: 'We are investigating reports of errors.', url: location.origin + '/',
      starts_at: 'Sat 28 Nov 14:00 UTC', starts_in: '1 hour' };
    if (!form) return v;
    form.querySelectorAll('[data-placeholder]').forEach((el) => {
      const name = el.dataset.placeholder;
      let value = el.value;
      if (name === 'status' || name === 'impact') value = human(value);
      if (name === 'update_body') value = plain(value);
      v[name] = value;
    });
    const checked = [...form.querySelectorAll('input[name=affected]:checked')].map((el) => {
      const name = el.parentElement.querySelector('.picker-label');
      return (name ? name.textContent : el.parentElement.textContent.replace(/\(.*\)/, '')).trim();
    });
    if (checked.length) v.component_name = checked.join(', ');
    return v;
  }

  // How many current subscribers would get it: asked from the server (the same rules fan-out
  // applies: notify, push on, the trigger and its conditions, the subscribers' component choices).
  const audienceUrl = root.dataset.audienceUrl;
  let audienceTimer = null;
  let audienceSeq = 0;
  function updateAudience(type) {
    const out = $('preview-audience');
    if (!audienceUrl || !out) return;
    clearTimeout(audienceTimer);
    audienceTimer = setTimeout(() => {
      const params = new URLSearchParams({ event: type });
      if (form) {
        const ids = [...form.querySelectorAll('input[name=affected]:checked')].map((el) => el.value);
        if (ids.length) params.set('component_ids', ids.join(','));
        const impact = form.querySelector('[name=impact]');
        if (impact && impact.value) params.set('impact', impact.value);
        const notify = form.querySelector('[name=notify]');
        if (notify && !notify.checked) params.set('notify', '0');
      }
      const seq = ++audienceSeq;
      fetch(`${audienceUrl}?${params}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then((r) => (r.ok ? r.json() : null))
        .then((data) => {
          if (!data || seq !== audienceSeq) return;
          out.textContent = data.reason
            ? `No current subscriber would get it: ${data.reason}.`
            : `${data.count} current subscriber${data.count === 1 ? '' : 's'} would get it.`;
          root.dataset.audience = String(data.count);
        })
        .catch(() => {});
    }, 250);
  }

  function render() {
    const type = eventType();
    const t = previews[type];
    if (!t) return;
    const v = values();
    v.site_name = t.site_name;
    const fill = (tpl) => tpl.replace(/\{([^{}]*)\}/g, (m, name) => (name in v ? v[name] : m));
    $('preview-title').textContent = fill(t.title).trim() || t.site_name;
    $('preview-body').textContent = fill(t.body).trim();
    $('preview-icon').src = t.icon;
    const notify = form && form.querySelector('[name=notify]');
    let state = `Event ${type}`;
    if (!t.push_enabled) state += ' — push is disabled, nothing will be sent';
    else if (!t.enabled) state += ' — this trigger is off, nothing will be sent';
    else if (notify && !notify.checked) state += ' — "Notify subscribers" is unchecked, nothing will be sent';
    else state += ' — subscribers will get:';
    $('preview-state').textContent = state;
    root.dataset.previewEvent = type;
    updateAudience(type);
  }

  // Push settings page: the preview follows the trigger row being edited, with its unsaved templates.
  const triggerForm = document.getElementById('trigger-form');
  if (triggerForm) {
    const follow = (e) => {
      const row = e.target.closest('tr');
      const title = row && row.querySelector('input[name^="title-"]');
      if (!title) return;
      const type = title.name.slice('title-'.length);
      const field = (name) => row.querySelector(`[name="${name}-${type}"]`);
      previews[type] = Object.assign({}, previews[type], {
        title: title.value, body: field('body').value, enabled: field('enabled').checked });
      triggerRowEvent = type;
      render();
    };
    ['focusin', 'input', 'change'].forEach((name) => triggerForm.addEventListener(name, follow));
  }

  if (form) {
    form.addEventListener('input', render);
    form.addEventListener('change', render);
  }
  render();
})();
