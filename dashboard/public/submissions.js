// Submissions per competition: run, file hash, message, time, local score and the leaderboard's.
import { age, getJSON, h, header, num } from './common.js';

const url = new URL(location.href);
const select = document.getElementById('competition');

function scoreText(score) {
  if (!score) return '-';
  return typeof score.score === 'number' ? num(score.score) : JSON.stringify(score);
}

async function refresh() {
  const comp = select.value;
  const data = await getJSON(`/api/submissions${comp ? `?competition=${encodeURIComponent(comp)}` : ''}`);
  const by = new Map();
  for (const s of data.submissions) by.set(s.competition, [...(by.get(s.competition) ?? []), s]);
  const list = document.getElementById('list');
  if (!by.size) return void list.replaceChildren(h('p', { class: 'muted' }, 'no submissions yet: make submit experiment=<slug> dry=1 records one'));
  list.replaceChildren(
    ...[...by].map(([c, rows]) =>
      h(
        'section',
        { 'data-competition': c },
        h('h2', {}, c),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h('thead', {}, h('tr', {}, ['when', 'run', 'file', 'sha256', 'message', 'local score', 'public', 'private', 'status'].map((t) => h('th', {}, t)))),
            h(
              'tbody',
              {},
              rows.map((s) =>
                h(
                  'tr',
                  {},
                  h('td', { title: s.at }, `${age(s.at)} ago`),
                  h('td', { class: 'id' }, h('a', { href: `/runs/${encodeURIComponent(s.run_id)}` }, s.run_id)),
                  h('td', {}, s.file),
                  h('td', { class: 'hash', title: s.sha256 }, s.sha256.slice(0, 12)),
                  h('td', {}, s.message ?? '-'),
                  h('td', { class: 'num' }, scoreText(s.score)),
                  h('td', { class: 'num' }, num(s.public_score)),
                  h('td', { class: 'num' }, num(s.private_score)),
                  h('td', {}, s.dry ? h('span', { class: 'muted', title: s.reason ?? '' }, 'dry') : (s.kaggle_status ?? 'uploaded')),
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

await header('submissions');
const { competitions } = await getJSON('/api/competitions');
select.append(...competitions.map((c) => h('option', { value: c }, c)));
select.value = url.searchParams.get('competition') ?? '';
select.addEventListener('change', () => {
  if (select.value) url.searchParams.set('competition', select.value);
  else url.searchParams.delete('competition');
  history.replaceState(null, '', url);
  refresh();
});
await refresh();
setInterval(() => document.visibilityState === 'visible' && refresh(), 10_000);
