// /ui/nodes: every node, live; /ui/nodes/NAME: its conditions, pods and events; cordon/uncordon.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { get, mergePatch, R, resourcePath } from '../api.js';
import { useCan, useList, useObject, useTick } from '../hooks.js';
import { html } from '../html.js';
import { Link, setQueryParam, useLocation } from '../router.js';
import { ActionButton, Age, ErrorAlert, memory, Table, VirtualTable } from '../ui.js';

function readyCondition(node) {
  return ((node.status && node.status.conditions) || []).find((c) => c.type === 'Ready') || null;
}

export function nodeState(node) {
  const c = readyCondition(node);
  let s = !c ? 'Unknown' : c.status === 'True' ? 'Ready' : c.status === 'False' ? 'NotReady' : 'Unknown';
  if (node.spec && node.spec.unschedulable) s += ',SchedulingDisabled';
  return s;
}

const NODE_METRICS = { group: 'metrics.k8s.io', version: 'v1beta1', plural: 'nodes' };

// CPU as a number of cores from a quantity ("250m", "12345n", "2").
export function cores(q) {
  const m = /^(\d+(?:\.\d+)?)([numk]?)$/.exec(q || '');
  if (!m) return NaN;
  return Number(m[1]) * { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3 }[m[2]];
}

// Each node's usage (metrics.k8s.io, as `kubectl top node`), polled every 15 s when the user may
// read it: Map name -> {cpu, memory}. Empty without metrics (nodes report them: docs/metrics.md).
function useNodeMetrics(enabled) {
  const [usage, setUsage] = useState(new Map());
  useEffect(() => {
    if (!enabled) return undefined;
    let live = true;
    const load = () =>
      get(resourcePath(NODE_METRICS))
        .then((r) => live && setUsage(new Map((r.items || []).map((i) => [i.metadata.name, i.usage || {}]))))
        .catch(() => {});
    load();
    const t = setInterval(load, 15000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [enabled]);
  return usage;
}

function cpuText(node, usage) {
  const cap = node.status && node.status.capacity && node.status.capacity.cpu;
  const used = usage && cores(usage.cpu);
  return Number.isFinite(used) ? `${used.toFixed(2)} / ${cap || '?'}` : cap || '';
}

function memoryText(node, usage) {
  const cap = memory(node.status && node.status.capacity && node.status.capacity.memory);
  return usage && usage.memory ? `${memory(usage.memory).replace(' GiB', '')} / ${cap}` : cap;
}

function countBy(items, keyFn) {
  const m = new Map();
  for (const it of items) {
    const k = keyFn(it);
    if (k) m.set(k, (m.get(k) || 0) + 1);
  }
  return m;
}

export function NodesPage() {
  useTick(5000);
  const { query } = useLocation();
  const labelSelector = query.get('labelSelector') || '';
  const filter = (query.get('filter') || '').toLowerCase();
  const [selectorInput, setSelectorInput] = useState(labelSelector);
  const nodes = useList(R.nodes, { labelSelector });
  // Pods and devices per node need them cluster-wide; without that right the columns stay empty.
  const canListPods = useCan('list', R.pods);
  const canListDevices = useCan('list', R.devices);
  const pods = useList(R.pods, { enabled: canListPods === true });
  const devices = useList(R.devices, { enabled: canListDevices === true });
  const usage = useNodeMetrics(useCan('list', NODE_METRICS) === true);
  const podsPerNode = useMemo(() => countBy(pods.items, (p) => p.spec && p.spec.nodeName), [pods.items]);
  const devicesPerNode = useMemo(() => countBy(devices.items, (d) => d.spec && d.spec.nodeName), [devices.items]);
  const rows = useMemo(() => {
    const list = filter ? nodes.items.filter((n) => n.metadata.name.toLowerCase().includes(filter)) : nodes.items;
    return list.slice().sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }, [nodes.items, filter]);
  const ready = useMemo(() => nodes.items.filter((n) => nodeState(n).startsWith('Ready')).length, [nodes.items]);
  const columns = [
    { title: 'Name', width: 'minmax(10rem, 2fr)', render: (n) => html`<${Link} href=${`/ui/nodes/${encodeURIComponent(n.metadata.name)}`}>${n.metadata.name}<//>` },
    { title: 'Status', width: 'minmax(7rem, 1.2fr)', render: (n) => html`<span class=${`state ${nodeState(n).split(',')[0]}`}>${nodeState(n)}</span>` },
    { title: 'Last heartbeat', render: (n) => html`<${Age} ts=${(readyCondition(n) || {}).lastHeartbeatTime} />` },
    { title: 'Version', width: 'minmax(8rem, 1.5fr)', render: (n) => (n.status && n.status.nodeInfo && n.status.nodeInfo.kubeletVersion) || '' },
    { title: 'Arch', width: '5rem', render: (n) => (n.status && n.status.nodeInfo && n.status.nodeInfo.architecture) || '' },
    { title: 'CPU', width: '6.5rem', render: (n) => cpuText(n, usage.get(n.metadata.name)) },
    { title: 'Memory', width: '8rem', render: (n) => memoryText(n, usage.get(n.metadata.name)) },
    { title: 'Pods', width: '4rem', render: (n) => (canListPods ? String(podsPerNode.get(n.metadata.name) || 0) : '') },
    { title: 'Devices', width: '5.5rem', render: (n) => (canListDevices ? String(devicesPerNode.get(n.metadata.name) || 0) : '') },
  ];
  return html`<section aria-labelledby="nodes-title">
    <h1 id="nodes-title">Nodes</h1>
    <p class="muted">CPU and memory: used (metrics.k8s.io, every 15 s) / capacity.</p>
    <p class="summary" aria-live="polite">
      ${nodes.items.length || nodes.loaded ? `${ready} of ${nodes.items.length} Ready${nodes.loaded ? '' : ' (loading…)'}` : 'Loading…'}
    </p>
    <div class="toolbar">
      <label class="inline">Filter by name
        <input type="search" value=${query.get('filter') || ''} onInput=${(e) => setQueryParam('filter', e.currentTarget.value)} />
      </label>
      <form class="inline" onSubmit=${(e) => { e.preventDefault(); setQueryParam('labelSelector', selectorInput.trim()); }}>
        <label class="inline">Label selector
          <input value=${selectorInput} placeholder="node-role.kubernetes.io/edge" onInput=${(e) => setSelectorInput(e.currentTarget.value)} />
        </label>
        <button type="submit">Apply</button>
      </form>
    </div>
    <${ErrorAlert} error=${nodes.error} />
    <${VirtualTable} label="Nodes" columns=${columns} rows=${rows} rowKey=${(n) => n.metadata.name} empty=${nodes.loaded ? 'No nodes' : 'Loading…'} />
  </section>`;
}

export function NodePage({ name }) {
  useTick(5000);
  const { object: node, loaded, error } = useObject(R.nodes, '', name);
  const pods = useList(R.pods, { fieldSelector: `spec.nodeName=${name}` });
  const events = useList(R.events, { fieldSelector: `involvedObject.kind=Node,involvedObject.name=${name}` });
  const canPatch = useCan('patch', R.nodes);
  const [actionError, setActionError] = useState(null);
  if (!loaded) return html`<p>Loading…</p>`;
  if (!node) return html`<${ErrorAlert} error=${error || new Error(`node "${name}" not found`)} />`;
  const info = (node.status && node.status.nodeInfo) || {};
  const cordon = (value) => mergePatch(resourcePath(R.nodes, '', name), { spec: { unschedulable: value ? true : null } });
  return html`<section aria-labelledby="node-title">
    <p><${Link} href="/ui/nodes">Nodes<//> /</p>
    <h1 id="node-title">${name}</h1>
    <p><span class=${`state ${nodeState(node).split(',')[0]}`}>${nodeState(node)}</span>
      ${' '}${info.kubeletVersion} · ${info.osImage} · ${info.architecture} · ${info.containerRuntimeVersion}</p>
    ${canPatch &&
    html`<div class="buttons">
      ${node.spec && node.spec.unschedulable
        ? html`<${ActionButton} action=${() => cordon(false)} onError=${setActionError}>Uncordon<//>`
        : html`<${ActionButton} action=${() => cordon(true)} onError=${setActionError}>Cordon<//>`}
    </div>`}
    <${ErrorAlert} error=${actionError} />
    <h2>Conditions</h2>
    <${Table} label="Conditions" rows=${(node.status && node.status.conditions) || []} rowKey=${(c) => c.type} columns=${[
      { title: 'Type', render: (c) => c.type },
      { title: 'Status', render: (c) => c.status },
      { title: 'Last heartbeat', render: (c) => html`<${Age} ts=${c.lastHeartbeatTime} />` },
      { title: 'Last transition', render: (c) => html`<${Age} ts=${c.lastTransitionTime} />` },
      { title: 'Reason', render: (c) => c.reason || '' },
      { title: 'Message', render: (c) => c.message || '' },
    ]} />
    <h2>Capacity</h2>
    <p>CPU ${node.status && node.status.capacity && node.status.capacity.cpu}, memory
      ${' '}${memory(node.status && node.status.capacity && node.status.capacity.memory)}, pods
      ${' '}${node.status && node.status.capacity && node.status.capacity.pods}</p>
    <h2>Pods</h2>
    <${PodTable} pods=${pods.items} />
    <h2>Events</h2>
    <${EventTable} events=${events.items} />
  </section>`;
}

export function podPhase(p) {
  const st = p.status || {};
  if (p.metadata.deletionTimestamp) return 'Terminating';
  for (const cs of st.containerStatuses || []) {
    if (cs.state && cs.state.waiting && cs.state.waiting.reason) return cs.state.waiting.reason;
  }
  return st.phase || 'Pending';
}

export function PodTable({ pods, onLogs }) {
  const rows = pods.slice().sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  return html`<${Table} label="Pods" rows=${rows} rowKey=${(p) => `${p.metadata.namespace}/${p.metadata.name}`} columns=${[
    { title: 'Namespace', render: (p) => p.metadata.namespace },
    { title: 'Name', render: (p) => p.metadata.name },
    { title: 'Status', render: (p) => html`<span class=${`state ${podPhase(p)}`}>${podPhase(p)}</span>` },
    { title: 'Restarts', render: (p) => String(((p.status && p.status.containerStatuses) || []).reduce((n, c) => n + (c.restartCount || 0), 0)) },
    { title: 'Node', render: (p) => (p.spec && p.spec.nodeName) || '' },
    { title: 'Age', render: (p) => html`<${Age} ts=${p.metadata.creationTimestamp} />` },
    ...(onLogs ? [{ title: 'Logs', render: (p) => html`<button type="button" onClick=${() => onLogs(p)} aria-label=${`Logs of ${p.metadata.name}`}>Logs</button>` }] : []),
  ]} />`;
}

export function EventTable({ events }) {
  const rows = events
    .slice()
    .sort((a, b) => Date.parse(b.lastTimestamp || b.eventTime || 0) - Date.parse(a.lastTimestamp || a.eventTime || 0))
    .slice(0, 50);
  return html`<${Table} label="Events" rows=${rows} rowKey=${(e) => e.metadata.uid || e.metadata.name} columns=${[
    { title: 'Type', render: (e) => e.type || '' },
    { title: 'Reason', render: (e) => e.reason || '' },
    { title: 'Object', render: (e) => `${(e.involvedObject || {}).kind}/${(e.involvedObject || {}).name}` },
    { title: 'Message', render: (e) => e.message || '' },
    { title: 'Count', render: (e) => String(e.count || 1) },
    { title: 'Last seen', render: (e) => html`<${Age} ts=${e.lastTimestamp || e.eventTime} />` },
  ]} />`;
}
