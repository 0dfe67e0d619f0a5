// Measurements behind bench/dashboard.sh (which starts the cloudcore): timings in a real headless
// Chromium against the real API. Prints medians; asserts nothing.
import { chromium } from 'playwright-core';

const URL = process.env.EP_UI_URL;
const TOKEN = process.env.EP_TOKEN;
const NODES = Number(process.env.EP_NODES || 10000);
const RUNS = Number(process.env.EP_RUNS || 5);
const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function api(method, path, body, contentType) {
  const r = await fetch(URL + path, { method, headers: { ...auth, ...(contentType ? { 'Content-Type': contentType } : {}) }, body: body && JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}
const node = (name) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels: { 'node-role.kubernetes.io/edge': '', bench: 'dashboard' } },
});
const readyStatus = (status) => ({
  status: {
    capacity: { cpu: '4', memory: '8029264Ki', pods: '110' },
    nodeInfo: { kubeletVersion: 'v1.32.0-sim', architecture: 'arm64', osImage: 'sim' },
    conditions: [{ type: 'Ready', status, lastHeartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), reason: 'Sim', message: 'simulated' }],
  },
});

const browser = await chromium.launch({
  executablePath: process.env.EP_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
async function signedInPage() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  await context.addInitScript((t) => sessionStorage.setItem('edgeplane.token', t), TOKEN);
  const page = await context.newPage();
  page.setDefaultTimeout(120_000);
  return page;
}

// 1. First load: a new browser context (empty cache) opens /ui/nodes, signed in; until the page
// shows the node count from the API.
await api('POST', '/api/v1/nodes', node('first-node'));
const loads = [];
for (let i = 0; i < RUNS; i++) {
  const page = await signedInPage();
  const t0 = Date.now();
  await page.goto(`${URL}/ui/nodes`);
  await page.getByText(/of 1 Ready/).waitFor();
  loads.push(Date.now() - t0);
  await page.context().close();
}
console.log(`first load of /ui/nodes (cold cache, until the API's data is shown): median ${median(loads)} ms (${loads.join(', ')})`);

// 2. A change made through the API, until it is on screen.
{
  const page = await signedInPage();
  await page.goto(`${URL}/ui/apps`);
  await page.getByRole('table', { name: 'Deployments' }).waitFor();
  const lat = [];
  for (let i = 0; i < RUNS * 2; i++) {
    const name = `change-${i}`;
    const t0 = Date.now();
    await api('POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
    });
    await page.getByRole('link', { name, exact: true }).waitFor();
    lat.push(Date.now() - t0);
  }
  console.log(`a Deployment created through the API, until its row shows: median ${median(lat)} ms (max ${Math.max(...lat)})`);
  await page.context().close();
}

// 3. N nodes.
{
  const t0 = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < NODES) {
      const name = `sim-${String(next++).padStart(5, '0')}`;
      await api('POST', '/api/v1/nodes', node(name));
      await api('PATCH', `/api/v1/nodes/${name}/status`, readyStatus('True'), 'application/merge-patch+json');
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  console.log(`created ${NODES} Node objects with status in ${Date.now() - t0} ms`);
  const total = NODES + 1;
  const page = await signedInPage();
  const t1 = Date.now();
  await page.goto(`${URL}/ui/nodes`);
  await page.getByRole('link', { name: 'first-node', exact: true }).waitFor();
  const firstRows = Date.now() - t1;
  await page.getByText(new RegExp(`of ${total} Ready$`)).waitFor();
  const firstRender = Date.now() - t1;
  const rows = await page.locator('.vrow').count();
  const t2 = Date.now();
  await page.locator('.vbody').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.getByRole('link', { name: `sim-${String(NODES - 1).padStart(5, '0')}`, exact: true }).waitFor();
  const scroll = Date.now() - t2;
  // A node goes NotReady while the page lists them all: until the summary says so.
  const t3 = Date.now();
  await api('PATCH', '/api/v1/nodes/sim-00000/status', readyStatus('False'), 'application/merge-patch+json');
  await page.getByText(new RegExp(`^${total - 2} of ${total} Ready`)).waitFor();
  const change = Date.now() - t3;
  const heap = await page.evaluate(() => (performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : -1));
  console.log(`Nodes page with ${total} nodes: first rows ${firstRows} ms, all listed ${firstRender} ms; ${rows} rows in the DOM; scroll to the last ${scroll} ms; a node going NotReady shown after ${change} ms; JS heap ${heap} MiB`);
  await page.context().close();
}
await browser.close();
