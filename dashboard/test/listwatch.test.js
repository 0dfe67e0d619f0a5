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
    firstPageSize: 2,
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
      if (++lists === 1) throw Object.assign(new Error('unavailable'), { status: 503 });
      return { metadata: { resourceVersion: '1' }, items: [] };
    },
    watch: () => new Promise(() => {}),
    onChange: c.onChange,
  }).start();
  const { state } = await c.done;
  lw.stop();
  assert.deepEqual(errors, ['unavailable']);
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

test('stop() while listing: the list is aborted and no watch starts', async () => {
  let watches = 0;
  let listSignal = null;
  let release;
  const lw = new ListWatch({
    batchMs: 1,
    list: (q, signal) => {
      listSignal = signal;
      return new Promise((r) => (release = () => r({ metadata: { resourceVersion: '1' }, items: [] })));
    },
    watch: () => {
      watches++;
      return new Promise(() => {});
    },
    onChange: () => {},
  }).start();
  await new Promise((r) => setTimeout(r, 5));
  lw.stop();
  assert.ok(listSignal.aborted, 'the list in flight is aborted');
  release();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(watches, 0);
});

test('an expired continue token (410 while paging) relists from the first page', async () => {
  const queries = [];
  const c = changes((items) => items.size === 2);
  const lw = new ListWatch({
    firstPageSize: 1,
    pageSize: 1,
    batchMs: 1,
    list: async (q) => {
      queries.push(q.continue || '');
      if (q.continue === 'expired') throw Object.assign(new Error('continue expired'), { status: 410 });
      if (!q.continue && queries.length === 1) return { metadata: { continue: 'expired', resourceVersion: '3' }, items: [obj('a', 1)] };
      if (!q.continue) return { metadata: { continue: 'fresh', resourceVersion: '4' }, items: [obj('a', 1)] };
      return { metadata: { resourceVersion: '4' }, items: [obj('b', 2)] };
    },
    watch: () => new Promise(() => {}),
    onChange: c.onChange,
  }).start();
  await c.done;
  lw.stop();
  assert.deepEqual(queries, ['', 'expired', '', 'fresh']);
});

test('401 and 403 are reported and not retried', async () => {
  for (const status of [401, 403]) {
    let lists = 0;
    const c = changes((items, state) => Boolean(state.error));
    const lw = new ListWatch({
      batchMs: 1,
      backoffMs: 1,
      list: async () => {
        lists++;
        throw Object.assign(new Error('forbidden'), { status });
      },
      watch: () => new Promise(() => {}),
      onChange: c.onChange,
    }).start();
    const { state } = await c.done;
    await new Promise((r) => setTimeout(r, 30));
    lw.stop();
    assert.equal(state.error.status, status);
    assert.equal(lists, 1, `a ${status} is not retried`);
  }
});

test('repeated failures back off exponentially', async () => {
  const at = [];
  const lw = new ListWatch({
    batchMs: 1,
    backoffMs: 8,
    maxBackoffMs: 64,
    list: async () => {
      at.push(Date.now());
      throw Object.assign(new Error('unavailable'), { status: 503 });
    },
    watch: () => new Promise(() => {}),
    onChange: () => {},
  }).start();
  while (at.length < 6) await new Promise((r) => setTimeout(r, 5));
  lw.stop();
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  // Jittered to half..full of 8, 16, 32, 64, 64 ms: the later gaps are longer than the first.
  assert.ok(gaps[3] >= 30 && gaps[4] >= 30, `gaps ${gaps}`);
});

test('the first list shows each page as it arrives; a relist shows the old items until done', async () => {
  const seen = [];
  let lists = 0;
  let relistStarted;
  const relisting = new Promise((r) => (relistStarted = r));
  let finishRelist;
  const c = changes((items, state) => {
    seen.push([items.size, state.loaded]);
    return lists === 2 && state.loaded && items.has('default/new');
  });
  const lw = new ListWatch({
    firstPageSize: 1,
    pageSize: 1,
    batchMs: 1,
    list: async (q) => {
      if (!q.continue) lists++;
      if (lists === 1) {
        const n = q.continue ? Number(q.continue) : 0;
        return { metadata: { continue: n < 2 ? String(n + 1) : '', resourceVersion: '5' }, items: [obj(`o${n}`, n + 1)] };
      }
      relistStarted();
      await new Promise((r) => (finishRelist = r));
      return { metadata: { resourceVersion: '9' }, items: [obj('new', 9)] };
    },
    watch: async (q, onEvent) => {
      if (q.resourceVersion === '5') onEvent({ type: 'ERROR', object: { code: 410, message: 'gone' } });
      await new Promise(() => {});
    },
    onChange: c.onChange,
  }).start();
  await relisting;
  const during = seen.length;
  finishRelist();
  await c.done;
  lw.stop();
  // The first page at once; the others when all are in.
  assert.deepEqual(seen[0], [1, false], 'the first page is shown before the others arrive');
  const firstLoaded = seen.findIndex(([, loaded]) => loaded);
  assert.deepEqual(seen[firstLoaded], [3, true]);
  assert.equal(during, firstLoaded + 1, 'nothing emitted while the relist runs: the old items stay');
  assert.deepEqual(seen[seen.length - 1], [1, true]);
});

test('a watch that opens again clears the error its failure showed', async () => {
  let watches = 0;
  const states = [];
  const c = changes((items, state) => {
    states.push(state.error ? state.error.message : null);
    return watches === 2 && state.error === null && states.includes('reset');
  });
  const lw = new ListWatch({
    batchMs: 1,
    backoffMs: 1,
    list: async () => ({ metadata: { resourceVersion: '1' }, items: [] }),
    watch: async (q, onEvent, signal, onOpen) => {
      watches++;
      if (watches === 1) throw Object.assign(new Error('reset'), { status: 0 });
      onOpen();
      await new Promise(() => {}); // quiet: no event would clear it
    },
    onChange: c.onChange,
  }).start();
  await c.done;
  lw.stop();
  assert.deepEqual(states, [null, 'reset', null]);
});

test('a watch that ends at once with nothing backs off instead of spinning', async () => {
  let watches = 0;
  const lw = new ListWatch({
    batchMs: 1,
    backoffMs: 40,
    minWatchMs: 1000,
    list: async () => ({ metadata: { resourceVersion: '1' }, items: [] }),
    watch: async (q, onEvent, signal, onOpen) => {
      watches++;
      onOpen();
    },
    onChange: () => {},
  }).start();
  await new Promise((r) => setTimeout(r, 150));
  lw.stop();
  // Without backoff this would be thousands; with 20-40, 40-80, 80-160 ms waits, at most 4.
  assert.ok(watches >= 1 && watches <= 4, `${watches} watches in 150 ms`);
});
