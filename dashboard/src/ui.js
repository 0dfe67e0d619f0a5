// Shared components: the virtualized table, alerts, buttons that run API calls, YAML editing.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import yaml from 'js-yaml';
import { html } from './html.js';
import { Link } from './router.js';

// Rows of a list too long to render at once (10,000 nodes): only the rows in view (plus a few)
// are in the DOM. `columns`: [{title, width (CSS grid track), render(item)}]. Keyboard: the body
// scrolls with the arrow keys and Page Up/Down once focused; links in rows are tab stops.
export function VirtualTable({ label, columns, rows, rowKey, rowHeight = 36, empty = 'None' }) {
  const body = useRef(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  useLayoutEffect(() => {
    const el = body.current;
    if (!el) return undefined;
    const measure = () => setViewport(el.clientHeight || 600);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const onScroll = (e) => {
    const top = e.currentTarget.scrollTop;
    requestAnimationFrame(() => setScrollTop(top));
  };
  const overscan = 8;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  const widths = columns.map((c) => c.width || 'minmax(6rem, 1fr)');
  const template = widths.join(' ');
  // Narrower than its columns' minimums (a tablet, a phone): the table scrolls sideways.
  const minRem = widths.reduce((sum, w) => sum + Number((/(\d+(?:\.\d+)?)rem/.exec(w) || [0, 6])[1]), 0);
  const visible = [];
  for (let i = first; i < last; i++) {
    const item = rows[i];
    visible.push(html`<div
      role="row"
      class="vrow"
      aria-rowindex=${i + 2}
      key=${rowKey(item)}
      style=${`top:${i * rowHeight}px;height:${rowHeight}px;grid-template-columns:${template}`}
    >
      ${columns.map((c) => html`<div role="cell" class="vcell">${c.render(item)}</div>`)}
    </div>`);
  }
  return html`<div role="table" aria-label=${label} aria-rowcount=${rows.length + 1} class="vtable">
    <div class="vinner" style=${`min-width:${minRem + 1}rem`}>
    <div role="rowgroup">
      <div role="row" class="vhead" aria-rowindex="1" style=${`grid-template-columns:${template}`}>
        ${columns.map((c) => html`<div role="columnheader" class="vcell">${c.title}</div>`)}
      </div>
    </div>
    <div
      role="rowgroup"
      class="vbody"
      ref=${body}
      tabindex="0"
      aria-label=${`${label}: ${rows.length} rows`}
      onScroll=${onScroll}
    >
      ${rows.length === 0 && html`<p class="muted empty">${empty}</p>`}
      <div class="vspacer" style=${`height:${rows.length * rowHeight}px`}>${visible}</div>
    </div>
    </div>
  </div>`;
}

// A plain table for short lists (conditions, events, versions).
export function Table({ label, columns, rows, rowKey, empty = 'None' }) {
  if (!rows.length) return html`<p class="muted">${empty}</p>`;
  return html`<table aria-label=${label}>
    <thead>
      <tr>
        ${columns.map((c) => html`<th scope="col">${c.title}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map((r) => html`<tr key=${rowKey(r)}>${columns.map((c) => html`<td>${c.render(r)}</td>`)}</tr>`)}
    </tbody>
  </table>`;
}

// Objects sorted by namespace, then name (a new array).
export function byNamespaceName(items) {
  const key = (o) => `${o.metadata.namespace || ''}/${o.metadata.name}`;
  return items.slice().sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

// The first columns of a namespaced list: its namespace, and its name linking to `${base}/NS/NAME`.
export function namespaceNameColumns(base) {
  return [
    { title: 'Namespace', render: (o) => o.metadata.namespace },
    {
      title: 'Name',
      width: 'minmax(10rem, 2fr)',
      render: (o) =>
        html`<${Link} href=${`${base}/${encodeURIComponent(o.metadata.namespace)}/${encodeURIComponent(o.metadata.name)}`}>${o.metadata.name}<//>`,
    },
  ];
}

export function ErrorAlert({ error }) {
  if (!error) return null;
  return html`<div role="alert" class="alert">${error.message || String(error)}</div>`;
}

// A button that runs `action` (async): disabled while it runs; a refusal's message goes to
// `onError` (the page shows it in an alert), success clears it.
export function ActionButton({ action, onError, children, danger = false, ...rest }) {
  const [busy, setBusy] = useState(false);
  const click = async () => {
    setBusy(true);
    try {
      await action();
      if (onError) onError(null);
    } catch (err) {
      if (onError) onError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class=${danger ? 'danger' : ''} disabled=${busy} onClick=${click} ...${rest}>
    ${children}
  </button>`;
}

export function relativeTime(ts) {
  if (!ts) return '';
  const s = Math.round((Date.now() - Date.parse(ts)) / 1000);
  if (Number.isNaN(s)) return '';
  if (s < 0) return 'now';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function Age({ ts }) {
  if (!ts) return null;
  return html`<time datetime=${ts} title=${ts}>${relativeTime(ts)}</time>`;
}

// A YAML (or JSON) editor: a labelled textarea and a submit button. `onSubmit(objects)` gets the
// parsed documents; parse errors are shown with their line.
export function YamlEditor({ label, initial = '', submitLabel = 'Apply', onSubmit, onCancel }) {
  const [text, setText] = useState(initial);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setText(initial), [initial]);
  const submit = async (e) => {
    e.preventDefault();
    let docs;
    try {
      docs = yaml.loadAll(text).filter((d) => d && typeof d === 'object');
    } catch (err) {
      setError(new Error(`YAML: ${err.message}`));
      return;
    }
    if (!docs.length) {
      setError(new Error('YAML: no object'));
      return;
    }
    setBusy(true);
    try {
      await onSubmit(docs);
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="yaml" onSubmit=${submit}>
    <label for="yaml-text">${label}</label>
    <textarea id="yaml-text" name="yaml" rows="16" spellcheck="false" value=${text}
      onInput=${(e) => setText(e.currentTarget.value)}></textarea>
    <${ErrorAlert} error=${error} />
    <div class="buttons">
      <button type="submit" disabled=${busy}>${submitLabel}</button>
      ${onCancel && html`<button type="button" onClick=${onCancel}>Cancel</button>`}
    </div>
  </form>`;
}

export function toYaml(obj) {
  const copy = JSON.parse(JSON.stringify(obj));
  if (copy.metadata) delete copy.metadata.managedFields;
  return yaml.dump(copy, { noRefs: true, lineWidth: 120 });
}

// Quantity for people: "16331876Ki" -> "15.6 GiB"; CPU stays as the API says.
export function memory(q) {
  if (!q) return '';
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?)?$/.exec(q);
  if (!m) return q;
  const mult = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  const bytes = Number(m[1]) * (m[2] ? mult[m[2]] : 1);
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

// A namespace to narrow a page to ("" = all): typed, or picked from those known. Typing works for
// users who may not list namespaces (a namespaced RoleBinding). Inputs here are uncontrolled
// (defaultValue): a re-render from a watch event must not reset what the user is typing.
export function NamespacePicker({ value, onChange, namespaces }) {
  return html`<label class="inline"
    >Namespace
    <input
      aria-label="Namespace"
      list="namespace-options"
      placeholder="all namespaces"
      size="16"
      key=${value}
      defaultValue=${value}
      onChange=${(e) => onChange(e.currentTarget.value.trim())}
    />
    <datalist id="namespace-options">${namespaces.map((n) => html`<option value=${n} />`)}</datalist>
  </label>`;
}
