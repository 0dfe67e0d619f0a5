// /ui/models: AI models (sedna.io/v1alpha1 Model), their current version and rollout;
// /ui/models/NS/NAME: versions (history), per-node state, uploading a new version (the same
// resumable upload as `edgectl model push`), rolling back to a version.
import { useMemo, useState } from 'preact/hooks';
import { get, post, put, R, request, resourcePath, withQuery } from '../api.js';
import { useCan, useList, useObject, useTick } from '../hooks.js';
import { html } from '../html.js';
import { Link, navigate, setQueryParam, useLocation } from '../router.js';
import { ActionButton, Age, byNamespaceName, ErrorAlert, namespaceNameColumns, NamespacePicker, Table, VirtualTable } from '../ui.js';
import { useNamespaces } from './apps.js';

const VERSION = 'models.edgeplane.io/version';
const HISTORY = 'models.edgeplane.io/history';
const ROLLOUT = 'models.edgeplane.io/rollout';
const MAX_HISTORY = 20; // common/api/models.h kMaxModelHistory
const CHUNK = 2 * 1024 * 1024;
// The browser hashes the file in memory (WebCrypto has no streaming digest): larger files are
// pushed with `edgectl model push`, which streams.
const MAX_BROWSER_BYTES = 512 * 1024 * 1024;
const UPLOAD_ATTEMPTS = 20;

export function modelHistory(m) {
  try {
    const h = JSON.parse((m.metadata.annotations || {})[HISTORY] || '[]');
    return Array.isArray(h) ? h : [];
  } catch {
    return [];
  }
}

function rolloutOf(m) {
  try {
    return JSON.parse((m.metadata.annotations || {})[ROLLOUT] || 'null');
  } catch {
    return null;
  }
}

function nodeStates(m) {
  return Object.entries((m.status && m.status.nodes) || {}).map(([node, s]) => ({ node, ...s }));
}

export function ModelsPage() {
  useTick(10000);
  const { query } = useLocation();
  const ns = query.get('namespace') || '';
  const models = useList(R.models, { ns });
  const namespaces = useNamespaces(models.items);
  const canCreate = useCan('create', R.models, ns);
  const [pushing, setPushing] = useState(false);
  const rows = useMemo(() => byNamespaceName(models.items), [models.items]);
  const columns = [
    ...namespaceNameColumns('/ui/models'),
    { title: 'Version', render: (m) => `${(m.metadata.annotations || {})[VERSION] || ''}${rolloutOf(m) ? ' (staged)' : ''}` },
    { title: 'Format', width: '6rem', render: (m) => (m.spec && m.spec.format) || '' },
    { title: 'Versions', width: '6rem', render: (m) => String(modelHistory(m).length) },
    {
      title: 'Nodes ready',
      width: '7rem',
      render: (m) => {
        const s = nodeStates(m);
        return `${s.filter((x) => x.state === 'Ready').length}/${s.length}`;
      },
    },
    { title: 'Age', width: '5rem', render: (m) => html`<${Age} ts=${m.metadata.creationTimestamp} />` },
  ];
  return html`<section aria-labelledby="models-title">
    <h1 id="models-title">Models</h1>
    <div class="toolbar">
      <${NamespacePicker} value=${ns} namespaces=${namespaces} onChange=${(v) => setQueryParam('namespace', v)} />
      ${canCreate && !pushing && html`<button type="button" onClick=${() => setPushing(true)}>Push a model</button>`}
    </div>
    ${pushing &&
    html`<${UploadVersion}
      ns=${ns}
      model=${null}
      onDone=${(modelNs, name) => {
        setPushing(false);
        navigate(`/ui/models/${encodeURIComponent(modelNs)}/${encodeURIComponent(name)}`);
      }}
    />`}
    <${ErrorAlert} error=${models.error} />
    <${VirtualTable} label="Models" columns=${columns} rows=${rows} rowKey=${(m) => m.metadata.uid} empty=${models.loaded ? 'No models' : 'Loading…'} />
    <p class="muted">Push a new model with <code>edgectl model push NAME FILE --version V</code>, or open a model to upload a version.</p>
  </section>`;
}

async function sha256Hex(file) {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// The upload subresource, resumable as edgectl's (docs/models.md, "The upload"): asks where the
// upload stands, sends the rest in 2 MiB chunks, the last with complete=true (the server checks
// the digest). After a failed chunk (a network error, a 409 naming another offset, a 5xx) it asks
// again and continues from there, up to 20 attempts with backoff; refusals (4xx but 409) end it.
async function uploadBlob(ns, name, file, digest, onProgress) {
  const path = resourcePath(R.models, ns, name, 'upload');
  for (let attempt = 1; ; attempt++) {
    try {
      const state = await get(withQuery(path, { digest }));
      if (state.complete) return;
      let offset = state.offset || 0;
      if (offset > file.size) {
        throw Object.assign(new Error(`the server holds ${offset} bytes of a ${file.size}-byte file`), { status: 422 });
      }
      for (;;) {
        const end = Math.min(file.size, offset + CHUNK);
        const complete = end === file.size;
        await request('PUT', withQuery(path, { digest, offset, complete: complete ? 'true' : '' }), {
          body: file.slice(offset, end),
          contentType: 'application/octet-stream',
        });
        offset = end;
        onProgress(offset / Math.max(1, file.size));
        if (complete) return;
      }
    } catch (err) {
      // 409: the upload stands elsewhere (another push of the same file): ask again at once.
      if (err.status === 409 && attempt < UPLOAD_ATTEMPTS * 2) continue;
      const retriable = !err.status || err.status === 408 || err.status === 429 || err.status >= 500;
      if (!retriable || attempt >= UPLOAD_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(10000, 250 * 2 ** attempt)));
    }
  }
}

// As common/api/models.cc validateModelFileName: the name the file is delivered under.
function fileNameError(name) {
  if (!name || new TextEncoder().encode(name).length > 255) return 'must be 1 to 255 bytes long';
  if (name.startsWith('.')) return "must not start with '.'";
  if (name === 'model.json') return 'model.json is reserved for the version info';
  if (/[\/\x00-\x1f\x7f]/.test(name)) return "must not contain '/' or control characters";
  return '';
}

// Versions are immutable (docs/models.md): pushing another file under an existing version name is
// refused.
function checkVersionFree(model, version, digest) {
  const clash = (model ? modelHistory(model) : []).find((h) => h.version === version && h.digest !== digest);
  if (clash) throw new Error(`version ${version} already exists with another file (${clash.digest}); push it as a new version`);
}

async function getModelOrNull(ns, name) {
  try {
    return await get(resourcePath(R.models, ns, name));
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

function formatOf(fileName) {
  const dot = fileName.lastIndexOf('.');
  return dot > 0 ? fileName.slice(dot + 1).toLowerCase() : '';
}

// Uploads a version of Model ns/name (creating the Model when `model` is null and the name comes
// from the form) and calls onDone(namespace, name).
function UploadVersion({ ns: fixedNs, name: fixedName, model, onDone = () => {} }) {
  const [error, setError] = useState(null);
  const [progress, setProgress] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const file = f.get('file');
    const version = f.get('version').trim();
    const name = fixedName || (f.get('name') || '').trim();
    const ns = fixedName ? fixedNs : (f.get('namespace') || '').trim() || 'default';
    try {
      if (!name) throw new Error('name: the Model needs a name');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(version)) {
        throw new Error('version: 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit');
      }
      if (!file || !file.name) throw new Error('file: choose a model file');
      const badName = fileNameError(file.name);
      if (badName) throw new Error(`file: the file name "${file.name}" ${badName}`);
      if (file.size > MAX_BROWSER_BYTES) {
        throw new Error(`file: ${file.size} bytes; the browser pushes files up to ${MAX_BROWSER_BYTES} bytes (use edgectl model push)`);
      }
      setProgress(0);
      const hex = await sha256Hex(file);
      const digest = `sha256:${hex}`;
      // Refused before uploading, as edgectl does.
      checkVersionFree(model || (await getModelOrNull(ns, name)), version, digest);
      await uploadBlob(ns, name, file, digest, setProgress);
      const entry = {
        version,
        url: `blob://sha256/${hex}/${file.name}`,
        format: f.get('format').trim() || formatOf(file.name),
        digest,
        size: file.size,
        pushedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      };
      for (let attempt = 0; ; attempt++) {
        let cur = await getModelOrNull(ns, name);
        checkVersionFree(cur, version, digest); // again: someone may have pushed meanwhile
        const create = !cur;
        if (create) cur = { apiVersion: 'sedna.io/v1alpha1', kind: 'Model', metadata: { name, namespace: ns }, spec: {} };
        cur.spec = { ...(cur.spec || {}), url: entry.url, format: entry.format };
        const ann = (cur.metadata.annotations = cur.metadata.annotations || {});
        const history = modelHistory(cur).filter((h) => h.version !== version);
        history.push(entry);
        ann[HISTORY] = JSON.stringify(history.slice(-MAX_HISTORY));
        ann[VERSION] = version;
        delete ann[ROLLOUT];
        try {
          if (create) await post(resourcePath(R.models, ns), cur);
          else await put(resourcePath(R.models, ns, name), cur);
          onDone(ns, name);
          break;
        } catch (err) {
          if (err.status !== 409 || attempt >= 5) throw err;
        }
      }
      setError(null);
      setProgress(null);
      e.target.reset();
    } catch (err) {
      setError(err);
      setProgress(null);
    }
  };
  return html`<form class="grid panel" onSubmit=${submit} aria-labelledby="upload-title">
    <h2 id="upload-title">${fixedName ? 'Upload a new version' : 'Push a new model'}</h2>
    ${!fixedName &&
    html`<label>Name <input name="name" required pattern="[a-z0-9]([a-z0-9.\\-]*[a-z0-9])?" /></label>
      <label>Namespace <input name="namespace" defaultValue=${fixedNs || 'default'} /></label>`}
    <label>Model file <input name="file" type="file" required /></label>
    <label>Version <input name="version" required /></label>
    <label>Format (default: the file's extension) <input name="format" /></label>
    ${progress !== null && html`<progress max="1" value=${progress} aria-label="Upload progress">${Math.round(progress * 100)}%</progress>`}
    <${ErrorAlert} error=${error} />
    <div class="buttons"><button type="submit" disabled=${progress !== null}>Upload</button></div>
  </form>`;
}

export function ModelPage({ ns, name }) {
  useTick(10000);
  const { object: m, loaded, error } = useObject(R.models, ns, name);
  const canUpdate = useCan('update', R.models, ns);
  const canUpload = useCan('update', R.models, ns, 'upload');
  const [actionError, setActionError] = useState(null);
  if (!loaded) return html`<p>Loading…</p>`;
  if (!m) return html`<p><${Link} href="/ui/models">Models<//> /</p><${ErrorAlert} error=${error || new Error(`Model "${ns}/${name}" not found`)} />`;
  const current = (m.metadata.annotations || {})[VERSION] || '';
  const rollout = rolloutOf(m);
  const perVersion = new Map(((m.status && m.status.versions) || []).map((v) => [v.version, v]));
  const rollback = async (h) => {
    const cur = await get(resourcePath(R.models, ns, name));
    cur.spec = { ...(cur.spec || {}), url: h.url, format: h.format };
    cur.metadata.annotations[VERSION] = h.version;
    delete cur.metadata.annotations[ROLLOUT];
    await put(resourcePath(R.models, ns, name), cur);
  };
  const history = modelHistory(m).slice().reverse();
  return html`<section aria-labelledby="model-title">
    <p><${Link} href="/ui/models">Models<//> / ${ns}</p>
    <h1 id="model-title">${name}</h1>
    <p class="summary" aria-live="polite">Current version ${current || '(none)'}${rollout ? ` (staged on ${rollout.nodes.join(', ')}; others keep ${rollout.previous})` : ''} · ${m.spec && m.spec.url}</p>
    <${ErrorAlert} error=${actionError} />
    <h2>Versions</h2>
    <${Table} label="Versions" rows=${history} rowKey=${(h) => h.version} columns=${[
      { title: 'Version', render: (h) => (h.version === current ? html`<strong>${h.version} (current)</strong>` : h.version) },
      { title: 'Size', render: (h) => (h.size ? `${h.size} B` : '') },
      { title: 'Format', render: (h) => h.format || '' },
      { title: 'Digest', render: (h) => html`<code title=${h.digest}>${(h.digest || '').slice(0, 19)}</code>` },
      { title: 'Pushed', render: (h) => html`<${Age} ts=${h.pushedAt} />` },
      { title: 'Nodes', render: (h) => String((perVersion.get(h.version) || {}).nodes || 0) },
      { title: 'Pods', render: (h) => String((perVersion.get(h.version) || {}).pods || 0) },
      {
        title: 'Action',
        render: (h) =>
          h.version !== current && canUpdate
            ? html`<${ActionButton} action=${() => rollback(h)} onError=${setActionError} aria-label=${`Roll back to ${h.version}`}>Roll back<//>`
            : '',
      },
    ]} />
    <h2>Rollout on nodes</h2>
    <${Table} label="Rollout on nodes" rows=${nodeStates(m)} rowKey=${(s) => s.node} empty="No node uses this model" columns=${[
      { title: 'Node', render: (s) => html`<${Link} href=${`/ui/nodes/${encodeURIComponent(s.node)}`}>${s.node}<//>` },
      { title: 'State', render: (s) => html`<span class=${`state ${s.state}`}>${s.state}</span>` },
      { title: 'Version', render: (s) => s.version || '' },
      { title: 'Has', render: (s) => (s.have || []).join(', ') },
      { title: 'Pods', render: (s) => String(s.pods || 0) },
      { title: 'Error', render: (s) => s.error || '' },
    ]} />
    ${canUpdate && canUpload && html`<${UploadVersion} ns=${ns} name=${name} model=${m} />`}
  </section>`;
}
