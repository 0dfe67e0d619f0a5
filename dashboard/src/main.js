// The dashboard's shell: login, navigation, and which page each /ui/ path shows.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getToken, setToken, setUnauthorizedHandler } from './api.js';
import { clearPermissionCache, whoAmI } from './hooks.js';
import { html } from './html.js';
import { Link, navigate, useLocation } from './router.js';
import { LoginPage } from './pages/login.js';
import { NodesPage, NodePage } from './pages/nodes.js';
import { AppsPage, AppPage } from './pages/apps.js';
import { DevicesPage, DevicePage } from './pages/devices.js';
import { RoutesPage } from './pages/routes.js';
import { ModelsPage, ModelPage } from './pages/models.js';
import { DataPage } from './pages/data.js';
import './style.css';

const NAV = [
  ['Nodes', '/ui/nodes'],
  ['Applications', '/ui/apps'],
  ['Devices', '/ui/devices'],
  ['Routes', '/ui/routes'],
  ['Models', '/ui/models'],
  ['Data', '/ui/data'],
];

function logout() {
  setToken('');
  clearPermissionCache();
  navigate('/ui/login');
}

setUnauthorizedHandler(() => {
  setToken('');
  clearPermissionCache();
  const next = location.pathname + location.search;
  if (!location.pathname.startsWith('/ui/login')) {
    navigate(`/ui/login?next=${encodeURIComponent(next)}&expired=1`, { replace: true });
  }
});

function decode(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null; // a malformed escape: no such page
  }
}

function page(path) {
  const parts = path.replace(/^\/ui\/?/, '').split('/').filter(Boolean).map(decode);
  if (parts.includes(null)) return null;
  switch (parts[0]) {
    case 'nodes':
      return parts[1] ? html`<${NodePage} name=${parts[1]} />` : html`<${NodesPage} />`;
    case 'apps':
      return parts[2] ? html`<${AppPage} ns=${parts[1]} name=${parts[2]} />` : html`<${AppsPage} />`;
    case 'devices':
      return parts[2] ? html`<${DevicePage} ns=${parts[1]} name=${parts[2]} />` : html`<${DevicesPage} />`;
    case 'routes':
      return html`<${RoutesPage} />`;
    case 'models':
      return parts[2] ? html`<${ModelPage} ns=${parts[1]} name=${parts[2]} />` : html`<${ModelsPage} />`;
    case 'data':
      return html`<${DataPage} />`;
    default:
      return null;
  }
}

function App() {
  const { path } = useLocation();
  const [user, setUser] = useState(null);
  const signedIn = Boolean(getToken());
  useEffect(() => {
    if (!signedIn) return;
    whoAmI().then(setUser, () => {});
  }, [signedIn]);
  useEffect(() => {
    if (path.startsWith('/ui/login')) return;
    if (!signedIn) {
      navigate(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    } else if (!page(path)) {
      navigate('/ui/nodes', { replace: true });
    }
  }, [path, signedIn]);
  if (path.startsWith('/ui/login') || !signedIn) return html`<${LoginPage} />`;
  const current = page(path);
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header>
      <span class="brand">EdgePlane</span>
      <nav aria-label="Main">
        <ul>
          ${NAV.map(
            ([label, href]) => html`<li>
              <${Link} href=${href} aria-current=${path.startsWith(href) ? 'page' : undefined}>${label}<//>
            </li>`,
          )}
        </ul>
      </nav>
      <span class="user" aria-label="Signed in as">${user ? user.username : ''}</span>
      <button type="button" onClick=${logout}>Log out</button>
    </header>
    <main id="main">${current}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
