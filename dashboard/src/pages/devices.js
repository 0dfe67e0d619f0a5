// /ui/devices: device models and devices (online state, node, twins); /ui/devices/NS/NAME: each
// twin's reported value, desired value and times, and setting a desired value.
import { useMemo, useState } from 'preact/hooks';
import { get, put, R, resourcePath } from '../api.js';
import { useCan, useList, useObject, useTick } from '../hooks.js';
import { html } from '../html.js';
import { Link, setQueryParam, useLocation } from '../router.js';
import { Age, byNamespaceName, ErrorAlert, namespaceNameColumns, NamespacePicker, Table, VirtualTable } from '../ui.js';
import { useNamespaces } from './apps.js';

function msTime(ms) {
  const n = Number(ms);
  return n > 0 ? new Date(n).toISOString() : '';
}

export function deviceState(d) {
  return (d.status && d.status.state) || 'unknown';
}

export function DevicesPage() {
  useTick(5000);
  const { query } = useLocation();
  const ns = query.get('namespace') || '';
  const devices = useList(R.devices, { ns });
  const models = useList(R.devicemodels, { ns });
  const namespaces = useNamespaces(devices.items);
  const rows = useMemo(() => byNamespaceName(devices.items), [devices.items]);
  const columns = [
    ...namespaceNameColumns('/ui/devices'),
    { title: 'Model', render: (d) => (d.spec && d.spec.deviceModelRef && d.spec.deviceModelRef.name) || '' },
    { title: 'Node', render: (d) => (d.spec && d.spec.nodeName) || '' },
    { title: 'State', width: '6rem', render: (d) => html`<span class=${`state ${deviceState(d)}`}>${deviceState(d)}</span>` },
    { title: 'Last online', width: '7rem', render: (d) => html`<${Age} ts=${d.status && d.status.lastOnlineTime} />` },
    {
      title: 'Twins',
      width: 'minmax(10rem, 3fr)',
      render: (d) =>
        ((d.status && d.status.twins) || [])
          .map((t) => `${t.propertyName}=${(t.reported && t.reported.value) ?? ''}`)
          .join(' '),
    },
  ];
  return html`<section aria-labelledby="devices-title">
    <h1 id="devices-title">Devices</h1>
    <div class="toolbar">
      <${NamespacePicker} value=${ns} namespaces=${namespaces} onChange=${(v) => setQueryParam('namespace', v)} />
    </div>
    <${ErrorAlert} error=${devices.error} />
    <${VirtualTable} label="Devices" columns=${columns} rows=${rows} rowKey=${(d) => d.metadata.uid} empty=${devices.loaded ? 'No devices' : 'Loading…'} />
    <h2>Device models</h2>
    <${ErrorAlert} error=${models.error} />
    <${Table} label="Device models" rows=${models.items} rowKey=${(m) => m.metadata.uid} columns=${[
      { title: 'Namespace', render: (m) => m.metadata.namespace },
      { title: 'Name', render: (m) => m.metadata.name },
      { title: 'Protocol', render: (m) => (m.spec && m.spec.protocol) || '' },
      {
        title: 'Properties',
        render: (m) =>
          ((m.spec && m.spec.properties) || [])
            .map((p) => `${p.name} (${p.type || ''}${p.accessMode ? `, ${p.accessMode}` : ''})`)
            .join(', '),
      },
    ]} />
  </section>`;
}

export function DevicePage({ ns, name }) {
  useTick(5000);
  const { object: d, loaded, error } = useObject(R.devices, ns, name);
  const modelName = (d && d.spec && d.spec.deviceModelRef && d.spec.deviceModelRef.name) || '';
  const { object: model } = useObject(R.devicemodels, ns, modelName || '-');
  const canUpdate = useCan('update', R.devices, ns);
  const [actionError, setActionError] = useState(null);
  if (!loaded) return html`<p>Loading…</p>`;
  if (!d) return html`<p><${Link} href="/ui/devices">Devices<//> /</p><${ErrorAlert} error=${error || new Error(`Device "${ns}/${name}" not found`)} />`;
  const path = resourcePath(R.devices, ns, name);
  const twins = new Map(((d.status && d.status.twins) || []).map((t) => [t.propertyName, t]));
  const props = (d.spec && d.spec.properties) || [];
  const names = Array.from(new Set([...props.map((p) => p.name), ...twins.keys()]));
  // A property the model says is ReadOnly has no desired value to set.
  const writable = (n) =>
    props.some((p) => p.name === n) &&
    !((model && model.spec && model.spec.properties) || []).some((p) => p.name === n && p.accessMode === 'ReadOnly');
  const setDesired = async (e, property) => {
    e.preventDefault();
    const value = new FormData(e.currentTarget).get('desired');
    try {
      const cur = await get(path);
      const p = (cur.spec.properties || []).find((x) => x.name === property);
      if (!p) throw new Error(`spec.properties has no "${property}"`);
      p.desired = { ...(p.desired || {}), value: String(value) };
      await put(path, cur);
      setActionError(null);
    } catch (err) {
      setActionError(err);
    }
  };
  return html`<section aria-labelledby="device-title">
    <p><${Link} href="/ui/devices">Devices<//> / ${ns}</p>
    <h1 id="device-title">${name}</h1>
    <p>
      <span class=${`state ${deviceState(d)}`}>${deviceState(d)}</span> · node ${d.spec.nodeName || '(none)'} · model
      ${' '}${d.spec.deviceModelRef && d.spec.deviceModelRef.name} · last online <${Age} ts=${d.status && d.status.lastOnlineTime} />
    </p>
    <${ErrorAlert} error=${actionError} />
    <h2>Twins</h2>
    <${Table} label="Twins" rows=${names} rowKey=${(n) => n} columns=${[
      { title: 'Property', render: (n) => n },
      { title: 'Reported', render: (n) => html`<output aria-label=${`Reported ${n}`}>${(twins.get(n) && twins.get(n).reported && twins.get(n).reported.value) ?? ''}</output>` },
      { title: 'Reported at', render: (n) => html`<${Age} ts=${msTime(twins.get(n) && twins.get(n).reported && twins.get(n).reported.metadata && twins.get(n).reported.metadata.timestamp)} />` },
      { title: 'Desired', render: (n) => (props.find((p) => p.name === n) || {}).desired?.value ?? '' },
      { title: 'Delivered to the edge', render: (n) => (twins.get(n) && twins.get(n).observedDesired && twins.get(n).observedDesired.value) ?? '' },
      {
        title: 'Set desired',
        render: (n) =>
          canUpdate && writable(n)
            ? html`<form class="inline" onSubmit=${(e) => setDesired(e, n)}>
                <label class="inline">Desired ${n} <input name="desired" size="8" required /></label>
                <button type="submit" aria-label=${`Set ${n}`}>Set</button>
              </form>`
            : '',
      },
      { title: 'Data', render: (n) => html`<${Link} href=${`/ui/data?device=${encodeURIComponent(`${ns}/${name}`)}&property=${encodeURIComponent(n)}`}>Chart<//>` },
    ]} />
  </section>`;
}
