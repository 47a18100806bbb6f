// The sign-in form: where to go back to, and why a previous try failed.
import { getJSON } from './common.js';

const params = new URLSearchParams(location.search);
const next = params.get('next');
// A path of this server only: `//host` and `/\host` are other sites to a browser (auth.ts NEXT_PATH).
if (next && /^\/(?![/\\])[a-z0-9/_-]*$/i.test(next)) document.querySelector('input[name=next]').value = next;
const why = document.getElementById('why');
if (params.get('failed')) why.textContent = 'That token is not the one in .env.';
const session = await getJSON('/api/session');
if (session.readOnly) {
  why.textContent = 'This dashboard is read-only: SWITCHYARD_DASHBOARD_TOKEN is not set in .env.';
  document.querySelector('form').hidden = true;
}
