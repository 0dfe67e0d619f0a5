// The dashboard's only way to the cluster: cloudcore's public API (REST + watch) with the user's
// own bearer token, so RBAC applies to every request. The token lives in sessionStorage (this tab
// only, gone when the browser session ends); nothing else is stored.

const TOKEN_KEY = 'edgeplane.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// An API refusal: `status` is the HTTP status, `message` the Status object's message (what the
// user is shown), `reason` its reason (NotFound, Forbidden, Conflict...).
export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason || '';
  }
}

let onUnauthorized = () => {};
// Called when the API answers 401: the token is wrong or expired.
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = getToken();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

export function withQuery(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  if (!s) return path;
  return path + (path.includes('?') ? '&' : '?') + s;
}

async function errorOf(r) {
  const text = await r.text();
  let status = null;
  try {
    status = JSON.parse(text);
  } catch {
    // not JSON: the text itself is the message
  }
  const message = (status && status.message) || text || `${r.status} ${r.statusText}`;
  return new ApiError(r.status, message, status && status.reason);
}

// One request. `body`: an object (sent as JSON unless `contentType` says otherwise) or a string
// or Blob sent as is. Resolves to the parsed JSON answer (or text when it is not JSON).
export async function request(method, path, { body, contentType, signal, accept } = {}) {
  const extra = {};
  if (accept) extra.Accept = accept;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== 'string') {
    payload = JSON.stringify(body);
  }
  if (body !== undefined) extra['Content-Type'] = contentType || 'application/json';
  const r = await fetch(path, { method, headers: headers(extra), body: payload, signal });
  if (r.status === 401) {
    onUnauthorized();
    throw await errorOf(r);
  }
  if (!r.ok) throw await errorOf(r);
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, { ...opts, body });
export const put = (path, body, opts) => request('PUT', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);
export const mergePatch = (path, body) =>
  request('PATCH', path, { body, contentType: 'application/merge-patch+json' });

// Reads a chunked body line by line: onLine(text) for each complete line. Resolves at the end of
// the body; rejects on a network error or an abort.
export async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  }
  if (buf) onLine(buf);
}

// A watch of `path` from `query.resourceVersion`: onOpen() once the server accepted it, then
// onEvent({type, object}) per event. Resolves when the server ends the watch; rejects with
// ApiError (410: too old) or on an abort.
export async function watch(path, query, onEvent, signal, onOpen = () => {}) {
  const url = withQuery(path, { ...query, watch: 1, allowWatchBookmarks: true });
  const r = await fetch(url, { headers: headers(), signal });
  if (r.status === 401) onUnauthorized();
  if (!r.ok) throw await errorOf(r);
  onOpen();
  await readLines(r, (line) => {
    if (line.trim()) onEvent(JSON.parse(line));
  });
}

// Path of a collection or object. `res` is {group, version, plural, namespaced}; `ns` empty means
// every namespace.
export function resourcePath(res, ns, name, sub) {
  let p = res.group ? `/apis/${res.group}/${res.version}` : `/api/${res.version}`;
  if (res.namespaced && ns) p += `/namespaces/${encodeURIComponent(ns)}`;
  p += `/${res.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (sub) p += `/${sub}`;
  return p;
}

// The kinds the dashboard shows.
export const R = {
  nodes: { version: 'v1', plural: 'nodes', kind: 'Node' },
  pods: { version: 'v1', plural: 'pods', namespaced: true, kind: 'Pod' },
  events: { version: 'v1', plural: 'events', namespaced: true, kind: 'Event' },
  namespaces: { version: 'v1', plural: 'namespaces', kind: 'Namespace' },
  deployments: { group: 'apps', version: 'v1', plural: 'deployments', namespaced: true, kind: 'Deployment' },
  replicasets: { group: 'apps', version: 'v1', plural: 'replicasets', namespaced: true, kind: 'ReplicaSet' },
  devices: { group: 'devices.kubeedge.io', version: 'v1beta1', plural: 'devices', namespaced: true, kind: 'Device' },
  devicemodels: {
    group: 'devices.kubeedge.io',
    version: 'v1beta1',
    plural: 'devicemodels',
    namespaced: true,
    kind: 'DeviceModel',
  },
  rules: { group: 'rules.kubeedge.io', version: 'v1', plural: 'rules', namespaced: true, kind: 'Rule' },
  ruleendpoints: {
    group: 'rules.kubeedge.io',
    version: 'v1',
    plural: 'ruleendpoints',
    namespaced: true,
    kind: 'RuleEndpoint',
  },
  models: { group: 'sedna.io', version: 'v1alpha1', plural: 'models', namespaced: true, kind: 'Model' },
};

// The resource of an object from its apiVersion and kind (for YAML the user pastes).
export function resourceOfObject(obj) {
  for (const res of Object.values(R)) {
    const gv = res.group ? `${res.group}/${res.version}` : res.version;
    if (obj.apiVersion === gv && obj.kind === res.kind) return res;
  }
  return null;
}
