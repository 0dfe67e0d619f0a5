// The dashboard end to end in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), against a real cloudcore and edgecore that tests/integration/dashboard_e2e_test.cc
// starts. Each step acts as a user would (clicks, forms, file uploads) and waits for what the user
// would see; the C++ test then checks through the API that the actions took effect.
//
// Environment: EP_UI_URL (https://HOST:PORT), EP_ADMIN_TOKEN, EP_VIEW_TOKEN, EP_NODE (a node that
// joins), EP_IMAGE and EP_IMAGE2 (two images the node can pull), EP_DEVICE (NS/NAME of a device
// with a writable "setpoint" and a reported "temperature"), EP_MODEL_FILE (a file to upload),
// EP_ARTIFACTS (where screenshots go). Exit 0 when every step passed; the failing step otherwise.
import { mkdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const URL = env('EP_UI_URL');
const ARTIFACTS = env('EP_ARTIFACTS');
const NODE = env('EP_NODE');
const [DEVICE_NS, DEVICE] = env('EP_DEVICE').split('/');
const TIMEOUT = 90_000; // pods pulling images, a device reporting: generous, but bounded
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.EP_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const pageErrors = [];
async function newPage() {
  // The cluster CA is the test's own: the browser is told to accept the API's certificate.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // The browser logs every 4xx answer, and requests cut by a network change (containerd's CNI
    // adds interfaces as pods start: net::ERR_NETWORK_CHANGED); the page handles both (a watch
    // resumes), and the steps check what it shows. Anything else is a defect.
    if (m.type() === 'error' && !/status of 4\d\d|Failed to load resource: net::/.test(m.text())) pageErrors.push(m.text());
  });
  return page;
}

let current = '';
async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}
const shot = (page, name) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: false });

// Waits until `locator`'s text matches `re`.
async function waitText(locator, re, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    try {
      last = await locator.innerText({ timeout: 1000 });
      if (re.test(last)) return last;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${re} in ${locator}; last text: ${JSON.stringify(last.slice(0, 400))}`);
}

// Signs in with the mouse, or with the keyboard only (the field has the focus; Enter submits).
async function login(page, token, { keyboard = false } = {}) {
  await page.goto(`${URL}/ui/nodes`);
  await page.waitForURL(/\/ui\/login/);
  if (keyboard) {
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.keyboard.type(token);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('Token', { exact: true }).fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  await page.waitForURL(/\/ui\/nodes/);
}

// An entry of the main navigation (pages also link back to their list by the same name).
const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
const row = (page, table, text) => page.getByRole('table', { name: table }).getByRole('row').filter({ hasText: text });

try {
  const page = await newPage();

  await step('login page: a wrong token is refused', async () => {
    await page.goto(`${URL}/ui/`);
    await page.waitForURL(/\/ui\/login/);
    await shot(page, 'login');
    await page.getByLabel('Token', { exact: true }).fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitText(page.getByRole('alert'), /not valid/);
  });

  await step('admin signs in and sees the node go Ready', async () => {
    await login(page, env('EP_ADMIN_TOKEN'));
    await waitText(page.locator('header'), /admin/);
    await waitText(row(page, 'Nodes', NODE), /Ready/);
    await shot(page, 'nodes');
  });

  await step('on a tablet (768x1024) the page fits and its table scrolls inside it', async () => {
    await page.setViewportSize({ width: 768, height: 1024 });
    await waitText(row(page, 'Nodes', NODE), /Ready/);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) throw new Error(`the page is ${overflow}px wider than the tablet's screen`);
    await nav(page, 'Models').waitFor();
    await shot(page, 'nodes-tablet');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await step('node page: conditions, cordon and uncordon', async () => {
    await page.getByRole('link', { name: NODE, exact: true }).click();
    await page.waitForURL(new RegExp(`/ui/nodes/${NODE}$`));
    await waitText(page.getByRole('table', { name: 'Conditions' }), /Ready\s+True/);
    await page.getByRole('button', { name: 'Cordon' }).click();
    await waitText(page.locator('main'), /SchedulingDisabled/);
    await page.getByRole('button', { name: 'Uncordon' }).click();
    await page.getByRole('button', { name: 'Cordon' }).waitFor();
    await shot(page, 'node');
  });

  await step('a Deployment created from YAML runs its pod', async () => {
    await nav(page, 'Applications').click();
    await page.waitForURL(/\/ui\/apps/);
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('tab', { name: 'YAML' }).click();
    // First something the API refuses: its message is shown.
    await page.getByLabel(/Manifest/).fill('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: Bad_Name}\nspec: {}\n');
    await page.getByRole('button', { name: 'Create', exact: true }).last().click();
    await waitText(page.getByRole('alert'), /Bad_Name|invalid|Invalid/);
    await page.getByLabel(/Manifest/).fill(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ${env('EP_IMAGE')}
        command: [httpd, -f, -p, "8080"]
`);
    await page.getByRole('button', { name: 'Create', exact: true }).last().click();
    await page.waitForURL(/\/ui\/apps\/default\/web$/);
    await waitText(page.getByRole('table', { name: 'Pods' }), /Running/);
  });

  await step('scale to 2', async () => {
    await page.getByLabel('Replicas', { exact: true }).fill('2');
    await page.getByRole('button', { name: 'Scale' }).click();
    await waitText(page.locator('.summary'), /Ready 2\/2/);
    await shot(page, 'app');
  });

  await step('change the image, then roll back to revision 1', async () => {
    await page.getByLabel('Image', { exact: true }).fill(env('EP_IMAGE2'));
    await page.getByRole('button', { name: 'Change image' }).click();
    await waitText(page.locator('.summary'), /revision 2/);
    await page.getByRole('button', { name: 'Roll back to revision 1' }).click();
    // The current revision's row holds the first image again.
    await waitText(row(page, 'Revisions', 'current'), new RegExp(env('EP_IMAGE').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    await waitText(page.locator('.summary'), /Ready 2\/2/);
  });

  await step('pod logs open', async () => {
    await page.getByRole('button', { name: /^Logs of web-/ }).first().click();
    await page.getByRole('heading', { name: /Logs of web-/ }).waitFor();
    await page.getByRole('button', { name: 'Close logs' }).click();
  });

  await step('a Deployment created through the API appears without a reload', async () => {
    await nav(page, 'Applications').click();
    await row(page, 'Deployments', 'web').waitFor();
    const token = env('EP_ADMIN_TOKEN');
    const r = await page.evaluate(
      async ([token, image]) => {
        const res = await fetch('/apis/apps/v1/namespaces/default/deployments', {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'live-check' },
            spec: { replicas: 0, selector: { matchLabels: { app: 'live-check' } }, template: { metadata: { labels: { app: 'live-check' } }, spec: { containers: [{ name: 'c', image }] } } },
          }),
        });
        return res.status;
      },
      [token, env('EP_IMAGE')],
    );
    if (r !== 201) throw new Error(`creating live-check: HTTP ${r}`);
    const t0 = Date.now();
    await row(page, 'Deployments', 'live-check').waitFor({ timeout: 10_000 });
    console.log(`     live-check appeared ${Date.now() - t0} ms after the API answered`);
    await shot(page, 'apps');
  });

  await step('delete a Deployment (confirmed) and see it go', async () => {
    await page.getByRole('link', { name: 'live-check', exact: true }).click();
    await page.getByRole('heading', { name: 'live-check' }).waitFor();
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL(/\/ui\/apps$/);
    await row(page, 'Deployments', 'web').waitFor();
    const deadline = Date.now() + 30_000;
    while (await row(page, 'Deployments', 'live-check').count()) {
      if (Date.now() > deadline) throw new Error('live-check is still listed');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  await step('device: set the desired value and see the reported value arrive', async () => {
    await nav(page, 'Devices').click();
    await waitText(row(page, 'Devices', DEVICE), /online/);
    await page.getByRole('link', { name: DEVICE, exact: true }).click();
    await waitText(page.getByRole('table', { name: 'Twins' }), /temperature/);
    await page.getByLabel('Desired setpoint', { exact: true }).fill('42');
    await page.getByRole('button', { name: 'Set setpoint' }).click();
    await waitText(page.getByLabel('Reported setpoint', { exact: true }), /^42$/);
    await shot(page, 'device');
  });

  await step('routes: create RuleEndpoints and a Rule', async () => {
    await nav(page, 'Routes').click();
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('button', { name: 'Create', exact: true }).last().click();
    await waitText(page.getByRole('table', { name: 'Rules' }), /my-rule/);
    await waitText(page.getByRole('table', { name: 'Rule endpoints' }), /my-rest[\s\S]*my-eventbus|my-eventbus[\s\S]*my-rest/);
    await shot(page, 'routes');
  });

  await step('models: push a model, upload a second version, roll back', async () => {
    await nav(page, 'Models').click();
    await page.getByRole('button', { name: 'Push a model' }).click();
    await page.getByLabel('Name', { exact: true }).fill('digits');
    await page.getByLabel('Model file', { exact: true }).setInputFiles(env('EP_MODEL_FILE'));
    await page.getByLabel('Version', { exact: true }).fill('v1');
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.waitForURL(/\/ui\/models\/default\/digits$/);
    await waitText(page.locator('.summary'), /Current version v1/);
    await page.getByLabel('Model file', { exact: true }).setInputFiles({ name: 'digits.onnx', mimeType: 'application/octet-stream', buffer: Buffer.concat([readFileSync(env('EP_MODEL_FILE')), Buffer.from('v2')]) });
    await page.getByLabel('Version', { exact: true }).fill('v2');
    await page.getByRole('button', { name: 'Upload' }).click();
    await waitText(page.locator('.summary'), /Current version v2/);
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    await waitText(page.locator('.summary'), /Current version v1/);
    await shot(page, 'model');
  });

  await step('data: a chart of the reported temperature and its CSV', async () => {
    await nav(page, 'Data').click();
    await page.getByLabel('Device', { exact: true }).selectOption(`${DEVICE_NS}/${DEVICE}`);
    await page.getByLabel('Property', { exact: true }).selectOption('temperature');
    await page.getByLabel('Time range', { exact: true }).selectOption('5m');
    await waitText(page.locator('figure.chart figcaption'), /[1-9]\d* samples/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    if (!csv.startsWith('timestamp,property,value\n') || !/,temperature,/.test(csv)) throw new Error(`CSV: ${csv.slice(0, 200)}`);
    await shot(page, 'data');
  });

  await step('deep link and reload keep the page', async () => {
    await page.goto(`${URL}/ui/apps/default/web`);
    await page.getByRole('heading', { name: 'web' }).waitFor();
  });

  await step('logout', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/ui\/login/);
    await page.goto(`${URL}/ui/nodes`);
    await page.waitForURL(/\/ui\/login/);
  });

  const viewer = await newPage();
  await step('a view-only user sees everything and can change nothing', async () => {
    await login(viewer, env('EP_VIEW_TOKEN'), { keyboard: true });
    await waitText(row(viewer, 'Nodes', NODE), /Ready/);
    await viewer.goto(`${URL}/ui/apps/default/web`);
    await viewer.getByRole('heading', { name: 'web' }).waitFor();
    await waitText(viewer.locator('main'), /Read-only: your account may not change this Deployment/);
    for (const name of ['Delete', 'Scale', 'Change image', 'Edit YAML']) {
      if (await viewer.getByRole('button', { name, exact: true }).count()) throw new Error(`the view-only user has a "${name}" button`);
    }
    await shot(viewer, 'view-only');
    await viewer.goto(`${URL}/ui/routes`);
    await waitText(viewer.getByRole('table', { name: 'Rules' }), /my-rule/);
    if (await viewer.getByRole('button', { name: /^Delete / }).count()) throw new Error('the view-only user can delete a Rule');
    // The API refuses what the page would not offer, with its own message.
    const status = await viewer.evaluate(async (token) => {
      const r = await fetch('/apis/apps/v1/namespaces/default/deployments/web', { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
      return `${r.status} ${(await r.json()).message}`;
    }, env('EP_VIEW_TOKEN'));
    if (!status.startsWith('403 ')) throw new Error(`a view-only DELETE answered ${status}`);
  });

  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join(' | ')}`);
  console.log('dashboard e2e: all steps passed');
  await browser.close();
} catch (err) {
  console.error(`FAIL ${current}: ${err.stack || err.message}`);
  await browser.close();
  process.exit(1);
}
