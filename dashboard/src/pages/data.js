// /ui/data?device=NS/NAME&property=P&range=1h: a device property's time series (the devices/data
// subresource) as a chart over a time range, refreshed every 5 s, and its CSV.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { get, R, resourcePath, withQuery } from '../api.js';
import { useList } from '../hooks.js';
import { html } from '../html.js';
import { setQueryParam, useLocation } from '../router.js';
import { byNamespaceName, ErrorAlert, NamespacePicker, Table } from '../ui.js';
import { useNamespaces } from './apps.js';

const LIMIT = 10000; // the most the data subresource answers
export const RANGES = { '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800 };

// RFC 4180 CSV. A value a spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a
// leading ' (device values are untrusted input).
export function toCsv(items) {
  const esc = (v) => {
    let t = String(v);
    if (/^[=+\-@\t\r]/.test(t) && !/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t)) t = `'${t}`;
    return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  return ['timestamp,property,value', ...items.map((s) => [s.timestamp, s.property, s.value].map(esc).join(','))].join('\n') + '\n';
}

// An SVG line chart of the numeric samples (non-numeric values are listed in the table only).
function Chart({ samples, from, to, label }) {
  const W = 800;
  const H = 260;
  const pad = { l: 56, r: 12, t: 12, b: 28 };
  const points = samples.map((s) => [Date.parse(s.timestamp), Number(s.value)]).filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
  if (!points.length) return html`<p class="muted" role="status">No numeric samples in this range.</p>`;
  let lo = Math.min(...points.map((p) => p[1]));
  let hi = Math.max(...points.map((p) => p[1]));
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const x = (t) => pad.l + ((t - from) / Math.max(1, to - from)) * (W - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (H - pad.t - pad.b);
  const d = points.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const ticks = [lo, (lo + hi) / 2, hi];
  const fmt = (t) => new Date(t).toLocaleTimeString();
  return html`<figure class="chart">
    <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`${label}: ${points.length} samples from ${lo} to ${hi}`}>
      <rect x=${pad.l} y=${pad.t} width=${W - pad.l - pad.r} height=${H - pad.t - pad.b} class="plot" />
      ${ticks.map((v) => html`<g><line x1=${pad.l} x2=${W - pad.r} y1=${y(v)} y2=${y(v)} class="grid" /><text x=${pad.l - 6} y=${y(v) + 4} text-anchor="end">${+v.toFixed(3)}</text></g>`)}
      <text x=${pad.l} y=${H - 8}>${fmt(from)}</text>
      <text x=${W - pad.r} y=${H - 8} text-anchor="end">${fmt(to)}</text>
      <path d=${d} class="line" />
      ${points.length <= 200 && points.map(([t, v]) => html`<circle cx=${x(t)} cy=${y(v)} r="2.5" class="dot" />`)}
    </svg>
    <figcaption>${label}: ${points.length} samples</figcaption>
  </figure>`;
}

export function DataPage() {
  const { query } = useLocation();
  const device = query.get('device') || '';
  const property = query.get('property') || '';
  const range = RANGES[query.get('range')] ? query.get('range') : '15m';
  const slash = device.indexOf('/');
  const ns = slash > 0 ? device.slice(0, slash) : '';
  const name = slash > 0 ? device.slice(slash + 1) : '';
  // The devices of one namespace (the picker's, else the chosen device's) or of all: a user with
  // rights in one namespace picks it.
  const listNs = query.get('namespace') ?? ns;
  const devices = useList(R.devices, { ns: listNs });
  const namespaces = useNamespaces(devices.items);
  const dev = devices.items.find((d) => d.metadata.namespace === ns && d.metadata.name === name);
  const properties = useMemo(() => ((dev && dev.spec.properties) || []).map((p) => p.name), [dev]);
  const [samples, setSamples] = useState([]);
  const [error, setError] = useState(null);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!name || !property) {
      setSamples([]);
      return undefined;
    }
    let live = true;
    const load = () =>
      get(withQuery(resourcePath(R.devices, ns, name, 'data'), { property, sinceSeconds: RANGES[range], limit: LIMIT }))
        .then((r) => {
          if (!live) return;
          setSamples(r.items || []);
          setNow(Date.now());
          setError(null);
        })
        .catch((err) => live && setError(err));
    load();
    const t = setInterval(load, 5000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [ns, name, property, range]);
  const download = () => {
    const url = URL.createObjectURL(new Blob([toCsv(samples)], { type: 'text/csv' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${ns}_${name}_${property}_${range}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  const sorted = byNamespaceName(devices.items);
  return html`<section aria-labelledby="data-title">
    <h1 id="data-title">Data</h1>
    <div class="toolbar">
      <${NamespacePicker} value=${listNs} namespaces=${namespaces} onChange=${(v) => setQueryParam('namespace', v)} />
      <label class="inline">Device
        <select aria-label="Device" value=${device} onChange=${(e) => setQueryParam('device', e.currentTarget.value)}>
          <option value="">Choose a device</option>
          ${sorted.map((d) => html`<option value=${`${d.metadata.namespace}/${d.metadata.name}`}>${d.metadata.namespace}/${d.metadata.name}</option>`)}
        </select>
      </label>
      <label class="inline">Property
        <select aria-label="Property" value=${property} onChange=${(e) => setQueryParam('property', e.currentTarget.value)}>
          <option value="">Choose a property</option>
          ${properties.map((p) => html`<option value=${p}>${p}</option>`)}
        </select>
      </label>
      <label class="inline">Time range
        <select aria-label="Time range" value=${range} onChange=${(e) => setQueryParam('range', e.currentTarget.value)}>
          ${Object.keys(RANGES).map((r) => html`<option value=${r}>last ${r}</option>`)}
        </select>
      </label>
      <button type="button" onClick=${download} disabled=${!samples.length}>Download CSV</button>
    </div>
    <${ErrorAlert} error=${error || devices.error} />
    ${name && property
      ? html`${samples.length >= LIMIT && html`<p role="status" class="muted">Showing the newest ${LIMIT} samples of this range.</p>`}
          <${Chart} samples=${samples} from=${now - RANGES[range] * 1000} to=${now} label=${`${device} ${property}`} />
          <h2>Latest samples</h2>
          <${Table} label="Samples" rows=${samples.slice(-20).reverse()} rowKey=${(s) => `${s.timestamp}|${s.value}`} columns=${[
            { title: 'Time', render: (s) => s.timestamp },
            { title: 'Value', render: (s) => s.value },
          ]} />`
      : html`<p class="muted">Choose a device and one of its properties. Only properties with <code>reportToCloud: true</code> have data, kept for cloudcore's <code>--device-data-retention</code> (24 h by default).</p>`}
  </section>`;
}
