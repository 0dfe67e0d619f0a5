// /ui/apps: Deployments across namespaces, created from a form or YAML; /ui/apps/NS/NAME: scale,
// change image, roll back to a revision, delete, pods with their logs (followed), events.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { del, get, getToken, post, put, R, readLines, resourceOfObject, resourcePath, withQuery } from '../api.js';
import { useCan, useList, useObject, useTick } from '../hooks.js';
import { html } from '../html.js';
import { Link, navigate, setQueryParam, useLocation } from '../router.js';
import { ActionButton, Age, byNamespaceName, ErrorAlert, namespaceNameColumns, NamespacePicker, Table, toYaml, VirtualTable, YamlEditor } from '../ui.js';
import { EventTable, PodTable } from './nodes.js';

const REVISION = 'deployment.kubernetes.io/revision';
const CHANGE_CAUSE = 'kubernetes.io/change-cause';

// The namespaces to pick from: the Namespace objects when the user may list them, plus those of
// the items shown.
export function useNamespaces(fallbackItems) {
  const canList = useCan('list', R.namespaces);
  const ns = useList(R.namespaces, { enabled: canList === true });
  return useMemo(() => {
    const names = new Set(ns.items.map((n) => n.metadata.name));
    for (const it of fallbackItems || []) names.add(it.metadata.namespace);
    return Array.from(names).sort();
  }, [ns.items, fallbackItems]);
}

// Creates (POST) each object, in order, like `kubectl create -f`: one that exists already is the
// API's 409 AlreadyExists, shown to the user (editing is the object's own Edit).
export async function createObjects(docs, defaultNs) {
  for (const obj of docs) {
    const res = resourceOfObject(obj);
    if (!res) throw new Error(`${obj.apiVersion}/${obj.kind}: not a kind this page creates`);
    if (!obj.metadata || typeof obj.metadata !== 'object') obj.metadata = {};
    const ns = res.namespaced ? obj.metadata.namespace || defaultNs || 'default' : '';
    if (res.namespaced) obj.metadata.namespace = ns;
    await post(resourcePath(res, ns), obj);
  }
}

function deploymentTemplate(name, ns, image, replicas, port) {
  const container = { name, image };
  if (port) container.ports = [{ containerPort: Number(port) }];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: Number(replicas),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [container] } },
    },
  };
}

function CreateDeployment({ ns, onDone }) {
  const [mode, setMode] = useState('form');
  const [error, setError] = useState(null);
  const submitForm = async (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      const d = deploymentTemplate(f.get('name').trim(), f.get('namespace').trim() || 'default', f.get('image').trim(), f.get('replicas'), f.get('port'));
      await post(resourcePath(R.deployments, d.metadata.namespace), d);
      onDone(d.metadata.namespace, d.metadata.name);
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="panel" aria-labelledby="create-title">
    <h2 id="create-title">Create a Deployment</h2>
    <div role="tablist" class="buttons">
      <button type="button" role="tab" aria-selected=${mode === 'form'} onClick=${() => setMode('form')}>Form</button>
      <button type="button" role="tab" aria-selected=${mode === 'yaml'} onClick=${() => setMode('yaml')}>YAML</button>
    </div>
    ${mode === 'form'
      ? html`<form class="grid" onSubmit=${submitForm}>
          <label>Name <input name="name" required pattern="[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" /></label>
          <label>Namespace <input name="namespace" defaultValue=${ns || 'default'} /></label>
          <label>Image <input name="image" required /></label>
          <label>Replicas <input name="replicas" type="number" min="0" defaultValue="1" /></label>
          <label>Container port <input name="port" type="number" min="1" max="65535" /></label>
          <${ErrorAlert} error=${error} />
          <div class="buttons"><button type="submit">Create</button><button type="button" onClick=${() => onDone()}>Cancel</button></div>
        </form>`
      : html`<${YamlEditor}
          label="Manifest (YAML or JSON; several documents allowed)"
          initial=${''}
          submitLabel="Create"
          onSubmit=${async (docs) => {
            await createObjects(docs, ns);
            const d = docs.find((x) => x.kind === 'Deployment');
            onDone(d && d.metadata.namespace, d && d.metadata.name);
          }}
          onCancel=${() => onDone()}
        />`}
  </section>`;
}

function ready(d) {
  return `${(d.status && d.status.readyReplicas) || 0}/${(d.spec && d.spec.replicas) ?? 1}`;
}
function images(d) {
  return (((d.spec || {}).template || {}).spec || { containers: [] }).containers.map((c) => c.image).join(', ');
}

export function AppsPage() {
  useTick(10000);
  const { query } = useLocation();
  const ns = query.get('namespace') || '';
  const deployments = useList(R.deployments, { ns });
  const namespaces = useNamespaces(deployments.items);
  const canCreate = useCan('create', R.deployments, ns);
  const [creating, setCreating] = useState(false);
  const rows = useMemo(() => byNamespaceName(deployments.items), [deployments.items]);
  const columns = [
    ...namespaceNameColumns('/ui/apps'),
    { title: 'Ready', width: '5rem', render: ready },
    { title: 'Up-to-date', width: '6rem', render: (d) => String((d.status && d.status.updatedReplicas) || 0) },
    { title: 'Available', width: '6rem', render: (d) => String((d.status && d.status.availableReplicas) || 0) },
    { title: 'Images', width: 'minmax(10rem, 3fr)', render: images },
    { title: 'Age', width: '5rem', render: (d) => html`<${Age} ts=${d.metadata.creationTimestamp} />` },
  ];
  return html`<section aria-labelledby="apps-title">
    <h1 id="apps-title">Applications</h1>
    <div class="toolbar">
      <${NamespacePicker} value=${ns} namespaces=${namespaces} onChange=${(v) => setQueryParam('namespace', v)} />
      ${canCreate && !creating && html`<button type="button" onClick=${() => setCreating(true)}>Create</button>`}
    </div>
    ${creating &&
    html`<${CreateDeployment}
      ns=${ns}
      onDone=${(n, name) => {
        setCreating(false);
        if (name) navigate(`/ui/apps/${encodeURIComponent(n)}/${encodeURIComponent(name)}`);
      }}
    />`}
    <${ErrorAlert} error=${deployments.error} />
    <${VirtualTable} label="Deployments" columns=${columns} rows=${rows} rowKey=${(d) => d.metadata.uid} empty=${deployments.loaded ? 'No Deployments' : 'Loading…'} />
  </section>`;
}

function selectorOf(d) {
  const m = (d.spec && d.spec.selector && d.spec.selector.matchLabels) || {};
  return Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

// JSON with sorted keys: equal objects give equal text whatever the order their keys came in.
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function withoutHashLabel(template) {
  const t = JSON.parse(JSON.stringify(template || {}));
  if (t.metadata && t.metadata.labels) delete t.metadata.labels['pod-template-hash'];
  return t;
}

function PodLogs({ pod, onClose }) {
  const [lines, setLines] = useState([]);
  const [error, setError] = useState(null);
  const pre = useRef(null);
  useEffect(() => {
    const abort = new AbortController();
    const path = withQuery(resourcePath(R.pods, pod.metadata.namespace, pod.metadata.name, 'log'), { follow: true, tailLines: 500 });
    fetch(path, { headers: { Authorization: `Bearer ${getToken()}` }, signal: abort.signal })
      .then(async (r) => {
        if (!r.ok) {
          const t = await r.text();
          let msg = t;
          try {
            msg = JSON.parse(t).message;
          } catch {
            // plain text
          }
          throw new Error(msg);
        }
        await readLines(r, (line) => setLines((l) => (l.length >= 2000 ? [...l.slice(-1999), line] : [...l, line])));
      })
      .catch((err) => {
        if (!abort.signal.aborted) setError(err);
      });
    return () => abort.abort();
  }, [pod.metadata.uid]);
  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines]);
  return html`<section class="panel" aria-labelledby="logs-title">
    <h2 id="logs-title">Logs of ${pod.metadata.name} (following)</h2>
    <${ErrorAlert} error=${error} />
    <pre class="logs" ref=${pre} tabindex="0" aria-label="Log lines">${lines.join('\n')}</pre>
    <button type="button" onClick=${onClose}>Close logs</button>
  </section>`;
}

export function AppPage({ ns, name }) {
  useTick(10000);
  const { object: d, loaded, error } = useObject(R.deployments, ns, name);
  const selector = d ? selectorOf(d) : '';
  const pods = useList(R.pods, { ns, labelSelector: selector, enabled: Boolean(selector) });
  const sets = useList(R.replicasets, { ns, labelSelector: selector, enabled: Boolean(selector) });
  const events = useList(R.events, { ns, fieldSelector: `involvedObject.name=${name}` });
  const canUpdate = useCan('update', R.deployments, ns);
  const canScale = useCan('update', R.deployments, ns, 'scale');
  const canDelete = useCan('delete', R.deployments, ns);
  const [actionError, setActionError] = useState(null);
  const [logsOf, setLogsOf] = useState(null);
  const [editing, setEditing] = useState(null); // the YAML when Edit was clicked
  if (!loaded) return html`<p>Loading…</p>`;
  if (!d) return html`<p><${Link} href="/ui/apps">Applications<//> /</p><${ErrorAlert} error=${error || new Error(`Deployment "${ns}/${name}" not found`)} />`;
  const path = resourcePath(R.deployments, ns, name);
  const containers = d.spec.template.spec.containers || [];
  const history = sets.items
    .filter((rs) => (rs.metadata.ownerReferences || []).some((o) => o.uid === d.metadata.uid))
    .sort((a, b) => Number(b.metadata.annotations?.[REVISION] || 0) - Number(a.metadata.annotations?.[REVISION] || 0));
  const current = d.metadata.annotations?.[REVISION];
  const scale = async (e) => {
    e.preventDefault();
    const replicas = Number(new FormData(e.currentTarget).get('replicas'));
    try {
      const s = await get(`${path}/scale`);
      s.spec.replicas = replicas;
      await put(`${path}/scale`, s);
      setActionError(null);
    } catch (err) {
      setActionError(err);
    }
  };
  const setImage = async (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    try {
      const cur = await get(path);
      const c = cur.spec.template.spec.containers.find((x) => x.name === f.get('container'));
      c.image = f.get('image').trim();
      await put(path, cur);
      setActionError(null);
    } catch (err) {
      setActionError(err);
    }
  };
  // As `kubectl rollout undo --to-revision` (edgectl/rollout.cc): the revision's pod template, and
  // its change-cause, replace the Deployment's; nothing happens when they already match.
  const rollback = async (rs) => {
    const cur = await get(path);
    const wanted = withoutHashLabel(rs.spec.template);
    // As kubectl's "skipped rollback": nothing to do, and nothing wrong.
    if (canonical(wanted) === canonical(cur.spec.template)) return;
    cur.spec.template = wanted;
    const cause = rs.metadata.annotations?.[CHANGE_CAUSE];
    cur.metadata.annotations = cur.metadata.annotations || {};
    if (cause) cur.metadata.annotations[CHANGE_CAUSE] = cause;
    else delete cur.metadata.annotations[CHANGE_CAUSE];
    await put(path, cur);
  };
  const remove = async () => {
    if (!confirm(`Delete Deployment ${ns}/${name} and its pods?`)) return;
    await del(withQuery(path, { propagationPolicy: 'Background' }));
    navigate('/ui/apps');
  };
  return html`<section aria-labelledby="app-title">
    <p><${Link} href="/ui/apps">Applications<//> / ${ns}</p>
    <h1 id="app-title">${name}</h1>
    <p class="summary" aria-live="polite">Ready ${ready(d)} · up-to-date ${(d.status && d.status.updatedReplicas) || 0} · revision ${current || '?'}</p>
    <${ErrorAlert} error=${actionError} />
    <div class="forms">
      ${canScale &&
      html`<form class="inline" onSubmit=${scale}>
        <label class="inline">Replicas <input name="replicas" type="number" min="0" defaultValue=${d.spec.replicas ?? 1} key=${d.spec.replicas} /></label>
        <button type="submit">Scale</button>
      </form>`}
      ${canUpdate &&
      html`<form class="inline" onSubmit=${setImage}>
        <label class="inline">Container
          <select name="container" aria-label="Container">${containers.map((c) => html`<option value=${c.name}>${c.name}</option>`)}</select>
        </label>
        <label class="inline">Image <input name="image" defaultValue=${containers[0] && containers[0].image} key=${containers[0] && containers[0].image} required /></label>
        <button type="submit">Change image</button>
      </form>`}
      ${canUpdate && html`<button type="button" onClick=${() => setEditing(editing === null ? toYaml(d) : null)}>Edit YAML</button>`}
      ${canDelete && html`<${ActionButton} danger action=${remove} onError=${setActionError}>Delete<//>`}
    </div>
    ${canUpdate === false && canScale === false && canDelete === false &&
    html`<p class="muted">Read-only: your account may not change this Deployment.</p>`}
    ${editing !== null &&
    html`<${YamlEditor}
      label="Deployment YAML"
      initial=${editing}
      submitLabel="Save"
      onSubmit=${async ([obj]) => {
        // With the resourceVersion it was read at: a change made meanwhile is a 409, shown.
        await put(path, obj);
        setEditing(null);
      }}
      onCancel=${() => setEditing(null)}
    />`}
    <h2>Pods</h2>
    <${PodTable} pods=${pods.items} onLogs=${setLogsOf} />
    ${logsOf && html`<${PodLogs} pod=${logsOf} onClose=${() => setLogsOf(null)} />`}
    <h2>Revisions</h2>
    <${Table} label="Revisions" rows=${history} rowKey=${(rs) => rs.metadata.uid} columns=${[
      { title: 'Revision', render: (rs) => rs.metadata.annotations?.[REVISION] || '' },
      { title: 'Images', render: (rs) => rs.spec.template.spec.containers.map((c) => c.image).join(', ') },
      { title: 'Pods', render: (rs) => `${(rs.status && rs.status.readyReplicas) || 0}/${rs.spec.replicas ?? 0}` },
      { title: 'Created', render: (rs) => html`<${Age} ts=${rs.metadata.creationTimestamp} />` },
      {
        title: 'Action',
        render: (rs) =>
          rs.metadata.annotations?.[REVISION] === current
            ? 'current'
            : canUpdate
              ? html`<${ActionButton} action=${() => rollback(rs)} onError=${setActionError} aria-label=${`Roll back to revision ${rs.metadata.annotations?.[REVISION]}`}>Roll back<//>`
              : '',
      },
    ]} />
    <h2>Events</h2>
    <${EventTable} events=${events.items} />
  </section>`;
}
