// Admin pages: small helpers that make the forms harder to get wrong. Everything here is a
// convenience: the server applies the same rules without JavaScript.
(function () {
  // The composer: picking a status for a component ticks that component (the server counts a
  // picked status as selecting it too, so nothing is silently dropped). Going back to "Keep
  // status" unticks it again if this script ticked it (not if the admin ticked it by hand).
  document.querySelectorAll('select[data-selects]').forEach((select) => {
    const box = select.form && select.form.querySelector(`input[name=affected][value="${select.dataset.selects}"]`);
    if (!box) return;
    box.addEventListener('change', (event) => {
      if (event.isTrusted) delete box.dataset.tickedByStatus; // the admin's own choice now
    });
    select.addEventListener('change', () => {
      if (select.value && !box.checked) {
        box.checked = true;
        box.dataset.tickedByStatus = '1';
        box.dispatchEvent(new Event('change', { bubbles: true }));
      } else if (!select.value && box.checked && box.dataset.tickedByStatus) {
        box.checked = false;
        delete box.dataset.tickedByStatus;
        box.dispatchEvent(new Event('change', { bubbles: true }));
      }
    });
  });
})();

// Ordering on the components page: the ↑/↓ buttons post in the background and move the row in
// place (focus stays on the button pressed); rows can be dragged within their list, and the new
// order is saved at once. Without JavaScript the buttons post the form and the page reloads.
(function () {
  const root = document.getElementById('order');
  if (!root) return;
  const status = document.getElementById('order-status');
  const say = (text) => { status.textContent = text; };
  const itemName = (li) => li.querySelector(':scope > .order-row .order-name').textContent.replace(/\s*\(group\)\s*$/, '').trim();

  function refreshButtons(list) {
    const items = [...list.children].filter((el) => el.classList.contains('order-item'));
    items.forEach((li, i) => {
      li.querySelector(':scope > .order-row button[value=up]').disabled = i === 0;
      li.querySelector(':scope > .order-row button[value=down]').disabled = i === items.length - 1;
    });
    return items;
  }

  root.addEventListener('click', async (event) => {
    const button = event.target.closest('.order-move button');
    if (!button) return;
    event.preventDefault();
    const form = button.form;
    const li = form.closest('.order-item');
    const list = li.parentElement;
    const body = new FormData(form);
    body.set('direction', button.value);
    const response = await fetch(form.action, { method: 'POST', body, headers: { 'X-Requested-With': 'fetch' }, credentials: 'same-origin' });
    if (!response.ok) { say('Not moved: reload the page and try again.'); return; }
    if (button.value === 'up' && li.previousElementSibling) list.insertBefore(li, li.previousElementSibling);
    else if (button.value === 'down' && li.nextElementSibling) list.insertBefore(li.nextElementSibling, li);
    const items = refreshButtons(list);
    (button.disabled ? li.querySelector(`:scope > .order-row button[value=${button.value === 'up' ? 'down' : 'up'}]`) : button).focus();
    say(`${itemName(li)} moved ${button.value}: now ${items.indexOf(li) + 1} of ${items.length}.`);
  });

  let dragged = null;
  const clearMarks = () => root.querySelectorAll('.drop-before, .drop-after').forEach((el) => el.classList.remove('drop-before', 'drop-after'));
  root.addEventListener('dragstart', (event) => {
    const li = event.target.closest && event.target.closest('.order-item');
    if (!li) return;
    dragged = li;
    li.classList.add('dragging');
    event.dataTransfer.effectAllowed = 'move';
    event.dataTransfer.setData('text/plain', li.dataset.token);
  });
  root.addEventListener('dragend', () => {
    if (dragged) dragged.classList.remove('dragging');
    dragged = null;
    clearMarks();
  });
  function target(event) {
    const li = event.target.closest && event.target.closest('.order-item');
    // Only among siblings: a component moves within its group, a group among the top level.
    let over = li;
    while (over && dragged && over.parentElement !== dragged.parentElement) over = over.parentElement.closest('.order-item');
    return over && over !== dragged ? over : null;
  }
  root.addEventListener('dragover', (event) => {
    const over = target(event);
    if (!over) return;
    event.preventDefault();
    clearMarks();
    const box = over.querySelector(':scope > .order-row').getBoundingClientRect();
    over.classList.add(event.clientY < box.top + box.height / 2 ? 'drop-before' : 'drop-after');
  });
  root.addEventListener('drop', async (event) => {
    const over = target(event);
    if (!over || !dragged) return;
    event.preventDefault();
    const list = over.parentElement;
    list.insertBefore(dragged, over.classList.contains('drop-before') ? over : over.nextElementSibling);
    clearMarks();
    const items = refreshButtons(list);
    const body = new FormData();
    body.set('csrf_token', root.dataset.csrf);
    body.set('scope', list.dataset.scope);
    body.set('order', items.map((el) => el.dataset.token).join(','));
    const moved = dragged;
    const response = await fetch(root.dataset.save, { method: 'POST', body, headers: { 'X-Requested-With': 'fetch' }, credentials: 'same-origin' });
    say(response.ok ? `${itemName(moved)} is now ${items.indexOf(moved) + 1} of ${items.length}.`
      : 'Not saved: the list changed meanwhile. Reload the page and try again.');
  });
})();
