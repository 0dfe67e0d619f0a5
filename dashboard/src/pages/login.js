// /ui/login: a bearer token (a static token from --token-auth-file or a ServiceAccount token),
// checked with a SelfSubjectReview and kept in this tab's session storage only.
import { useEffect, useRef, useState } from 'preact/hooks';
import { setToken } from '../api.js';
import { clearPermissionCache, whoAmI } from '../hooks.js';
import { html } from '../html.js';
import { navigate, useLocation } from '../router.js';

export function LoginPage() {
  const { query } = useLocation();
  const [error, setError] = useState(query.get('expired') ? 'Your session ended: sign in again.' : '');
  const [busy, setBusy] = useState(false);
  // The token field has the focus whenever the page shows (autofocus only acts on a page load).
  const field = useRef(null);
  useEffect(() => field.current && field.current.focus(), []);
  const submit = async (e) => {
    e.preventDefault();
    const token = new FormData(e.currentTarget).get('token').trim();
    if (!token) {
      setError('Enter a token.');
      return;
    }
    setBusy(true);
    setToken(token);
    clearPermissionCache();
    try {
      await whoAmI();
      const next = query.get('next');
      navigate(next && next.startsWith('/ui/') && !next.startsWith('/ui/login') ? next : '/ui/nodes', {
        replace: true,
      });
    } catch (err) {
      setToken('');
      setError(err.status === 401 ? 'This token is not valid.' : err.message);
      setBusy(false);
    }
  };
  return html`<main class="login" id="main">
    <h1>EdgePlane</h1>
    <form onSubmit=${submit} aria-describedby="login-help">
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="off" required ref=${field} />
      <p id="login-help" class="muted">
        A bearer token: a static token (cloudcore --token-auth-file) or a ServiceAccount token
        (kubectl create token NAME). It is kept in this browser tab only.
      </p>
      ${error && html`<div role="alert" class="alert">${error}</div>`}
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
  </main>`;
}
