// Preact hooks over the API: live collections and objects (ListWatch), permissions
// (SelfSubjectAccessReview) and the signed-in user (SelfSubjectReview).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { get, post, resourcePath, watch, withQuery } from './api.js';
import { ListWatch } from './listwatch.js';

// Whether this tab is visible. Each watch holds one of the browser's six HTTP/1.1 connections to
// the API, shared by all its tabs: hidden tabs give theirs back (useList stops) and relist when
// shown again.
function useVisible() {
  const [visible, setVisible] = useState(!document.hidden);
  useEffect(() => {
    const f = () => setVisible(!document.hidden);
    document.addEventListener('visibilitychange', f);
    return () => document.removeEventListener('visibilitychange', f);
  }, []);
  return visible;
}

// A live collection: {items (array), loaded, error, version}. Restarts when the resource,
// namespace or selectors change. `enabled: false` keeps it idle (returns no items); so does a
// hidden tab, keeping the items it had.
const EMPTY = { key: '', map: new Map(), version: 0, loaded: false, error: null };

export function useList(res, { ns = '', labelSelector = '', fieldSelector = '', enabled = true } = {}) {
  const visible = useVisible();
  const key = [res.group || '', res.plural, ns, labelSelector, fieldSelector, enabled].join('|');
  // Snapshots carry the key of the collection they are of: one that arrives from the previous
  // collection's ListWatch (stopped a frame later, in the effect's cleanup) is never shown.
  const [stored, setSnap] = useState(EMPTY);
  const snap = stored.key === key ? stored : EMPTY;
  const shownLoaded = useRef(false);
  shownLoaded.current = snap.loaded;
  useEffect(() => {
    if (!enabled || !visible) return undefined;
    const path = resourcePath(res, ns);
    const sel = { labelSelector, fieldSelector };
    const lw = new ListWatch({
      list: (q, signal) => get(withQuery(path, { ...sel, ...q }), { signal }),
      watch: (q, onEvent, signal, onOpen) => watch(path, { ...sel, ...q }, onEvent, signal, onOpen),
      onChange: (map, state) => setSnap({ key, map, ...state }),
      // Shown again after a hidden spell: keep the rows it has until the whole list is back.
      progressive: !shownLoaded.current,
    }).start();
    return () => lw.stop();
  }, [key, visible]);
  const items = useMemo(() => Array.from(snap.map.values()), [snap.map, snap.version]);
  return { items, loaded: snap.loaded, error: snap.error, version: snap.version };
}

// One live object (a watch of its collection narrowed by metadata.name): {object, loaded, error}.
// `object` is null until loaded and when it does not exist.
export function useObject(res, ns, name) {
  const { items, loaded, error } = useList(res, { ns, fieldSelector: `metadata.name=${name}` });
  return { object: items[0] || null, loaded, error };
}

const reviews = new Map();
export function clearPermissionCache() {
  reviews.clear();
}

// Whether the user may `verb` the resource (in `ns`, '' for every namespace or a cluster-scoped
// kind), as the API's authorizer says. undefined while asking. The answer hides controls only:
// the API still decides every request.
export function useCan(verb, res, ns = '', subresource = '') {
  const key = [verb, res.group || '', res.plural, ns, subresource].join('|');
  // The answer for `key` only: another key's answer is not shown while this one is asked.
  const [answer, setAnswer] = useState({ key: '', value: undefined });
  const setAllowed = (value) => setAnswer({ key, value });
  useEffect(() => {
    let live = true;
    if (!reviews.has(key)) {
      const entry = { value: undefined };
      entry.promise = post('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            verb,
            group: res.group || '',
            resource: res.plural,
            namespace: ns || undefined,
            subresource: subresource || undefined,
          },
        },
      })
        .then((r) => (entry.value = Boolean(r.status && r.status.allowed)))
        .catch(() => {
          // Not known (a network error, a 5xx): no for now, asked again by the next page.
          entry.value = false;
          reviews.delete(key);
        });
      reviews.set(key, entry);
    }
    const entry = reviews.get(key);
    if (entry.value !== undefined) setAllowed(entry.value);
    else entry.promise.then(() => live && setAllowed(entry.value));
    return () => {
      live = false;
    };
  }, [key]);
  if (answer.key === key) return answer.value;
  return reviews.has(key) ? reviews.get(key).value : undefined;
}

// The signed-in user's name and groups (SelfSubjectReview), or null while asking.
export async function whoAmI() {
  const r = await post('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'SelfSubjectReview',
  });
  return (r.status && r.status.userInfo) || { username: '?' };
}

// Re-renders every `ms` (for relative times).
export function useTick(ms) {
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => tick((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}
