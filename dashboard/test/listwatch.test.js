// ListWatch without a server: list pages, watch events, 410 -> relist, resume after a watch ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ListWatch } from '../src/listwatch.js';

const obj = (name, rv, extra = {}) => ({ metadata: { name, namespace: 'default', resourceVersion: String(rv) }, ...extra });

// Resolves when `pred(items, state)` holds after some onChange.
function changes(pred) {
  let resolve;
  const done = new Promise((r) => (resolve = r));
  return {
    done,
    onChange: (items, state) => {
      if (pred(items, state)) resolve({ items, state });
    },
  };
}

test('lists every page, then applies watch events in order', async () => {
  const pages = [
    { metadata: { continue: 'c1', resourceVersion: '5' }, items: [obj('a', 1), obj('b', 2)] },
    { metadata: { resourceVersion: '5' }, items: [obj('c', 3)] },
  ];
  const listQueries = [];
  let watchFrom = null;
  const c = changes((items) => items.size === 3 && items.get('default/a').spec === 'x' && !items.has('default/b'));
  const lw = new ListWatch({
    pageSize: 2,
    batchMs: 1,
    list: async (q) => {
      listQueries.push(q);
      return pages[q.continue ? 1 : 0];
    },
    watch: async (q, onEvent) => {
      watchFrom = q.resourceVersion;
      onEvent({ type: 'MODIFIED', object: obj('a', 6, { spec: 'x' }) });
      onEvent({ type: 'DELETED', object: obj('b', 7) });
      onEvent({ type: 'ADDED', object: obj('d', 8) });
      await new Promise(() => {}); // stays open
    },
    onChange: c.onChange,
  }).start();
  const { items } = await c.done;
  lw.stop();
  assert.deepEqual(listQueries, [{ limit: 2 }, { limit: 2, continue: 'c1' }]);
  assert.equal(watchFrom, '5');
  assert.deepEqual([...items.keys()].sort(), ['default/a', 'default/c', 'default/d']);
});

test('a 410 Gone ERROR event relists from scratch', async () => {
  let lists = 0;
  let watches = 0;
  const c = changes((items) => items.has('default/fresh'));
  const lw = new ListWatch({
    batchMs: 1,
    backoffMs: 1,
    list: async () => {
      lists++;
      return lists === 1
        ? { metadata: { resourceVersion: '10' }, items: [obj('stale', 1)] }
        : { metadata: { resourceVersion: '20' }, items: [obj('fresh', 2)] };
    },
    watch: async (q, onEvent) => {
      watches++;
      if (watches === 1) {
        assert.equal(q.resourceVersion, '10');
        onEvent({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } });
      }
      assert.equal(q.resourceVersion, '20');
      await new Promise(() => {});
    },
    onChange: c.onChange,
  }).start();
  const { items } = await c.done;
  lw.stop();
  assert.equal(lists, 2);
  assert.equal(lw.relists, 2);
  assert.ok(!items.has('default/stale'), 'the relist replaces what the first list had');
});

test('an HTTP 410 on the watch relists too', async () => {
  let lists = 0;
  const c = changes(() => lists === 2);
  const lw = new ListWatch({
    batchMs: 1,
    list: async () => {
      lists++;
      return { metadata: { resourceVersion: String(lists) }, items: [] };
    },
    watch: async (q) => {
      if (q.resourceVersion === '1') throw Object.assign(new Error('Gone'), { status: 410 });
      await new Promise(() => {});
    },
    onChange: c.onChange,
  }).start();
  await c.done;
  lw.stop();
  assert.equal(lists, 2);
});

test('a watch the server ends resumes from the last resourceVersion without a relist', async () => {
  const from = [];
  const c = changes(() => from.length === 3);
  const lw = new ListWatch({
    batchMs: 1,
    list: async () => ({ metadata: { resourceVersion: '1' }, items: [] }),
    watch: async (q, onEvent) => {
      from.push(q.resourceVersion);
      if (from.length === 1) onEvent({ type: 'ADDED', object: obj('a', 2) });
      if (from.length === 2) onEvent({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } });
      if (from.length === 3) onEvent({ type: 'ADDED', object: obj('b', 10) });
      else return; // the server's timeout
      await new Promise(() => {});
    },
    onChange: c.onChange,
  }).start();
  await c.done;
  lw.stop();
  assert.deepEqual(from, ['1', '2', '9']);
  assert.equal(lw.relists, 1);
});

test('a failed list is reported and retried', async () => {
  let lists = 0;
  const errors = [];
  const c = changes((items, state) => {
    if (state.error) errors.push(state.error.message);
    return state.loaded;
  });
  const lw = new ListWatch({
    batchMs: 1,
    backoffMs: 1,
    list: async () => {
      if (++lists === 1) throw Object.assign(new Error('forbidden'), { status: 403 });
      return { metadata: { resourceVersion: '1' }, items: [] };
    },
    watch: () => new Promise(() => {}),
    onChange: c.onChange,
  }).start();
  const { state } = await c.done;
  lw.stop();
  assert.deepEqual(errors, ['forbidden']);
  assert.equal(state.error, null);
});

test('nothing is reported after stop()', async () => {
  let calls = 0;
  let release;
  const lw = new ListWatch({
    batchMs: 1,
    list: () => new Promise((r) => (release = () => r({ metadata: { resourceVersion: '1' }, items: [obj('a', 1)] }))),
    watch: () => new Promise(() => {}),
    onChange: () => calls++,
  }).start();
  lw.stop();
  release();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(calls, 0);
});
