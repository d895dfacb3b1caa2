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
  const plain = (md) => (md || '').replace(/[*_`#>~\[\]()!]/g, '').replace(/\s+/g, ' ').trim();

  function eventType() {
    const status = form && form.querySelector('[name=status]') ? form.querySelector('[name=status]').value : '';
    if (baseEvent.startsWith('incident.') && (status === 'resolved' || status === 'postmortem') && baseEvent !== 'incident.created') return 'incident.resolved';
    if (baseEvent.startsWith('maintenance.')) return status === 'completed' ? 'maintenance.completed' : 'maintenance.started';
    return baseEvent;
  }

  function values() {
    const v = { site_name: '', incident_name: 'Elevated error rates', status: 'Investigating', impact: 'Minor',
      component_name: 'API', update_body: 'We are investigating reports of errors.', url: location.origin + '/' };
    if (!form) return v;
    form.querySelectorAll('[data-placeholder]').forEach((el) => {
      const name = el.dataset.placeholder;
      let value = el.value;
      if (name === 'status' || name === 'impact') value = human(value);
      if (name === 'update_body') value = plain(value);
      v[name] = value;
    });
    const checked = [...form.querySelectorAll('input[name=affected]:checked')].map((el) => el.parentElement.textContent.replace(/\(.*\)/, '').trim());
    if (checked.length) v.component_name = checked.join(', ');
    return v;
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
  }

  if (form) {
    form.addEventListener('input', render);
    form.addEventListener('change', render);
  }
  render();
})();
