// A live log: server-sent events append as the log grows; it follows the end until the reader
// scrolls up (and again once they scroll back down). The page keeps the whole text, so search
// covers all of it; the view shows the newest MAX_SHOWN lines.
import { h } from './common.js';

const MAX_SHOWN = 5000;

export class LiveLog {
  constructor({ pre, results, hits, state, search }) {
    Object.assign(this, { pre, results, hits, state, search });
    this.lines = [''];
    this.follow = true;
    this.source = null;
    pre.addEventListener('scroll', () => {
      this.follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      this.showState();
    });
    search.addEventListener('input', () => this.find());
  }

  open(url) {
    this.source?.close();
    this.lines = [''];
    this.pre.textContent = '';
    delete this.pre.dataset.empty;
    this.status = 'connecting';
    this.showState();
    const src = new EventSource(url);
    this.source = src;
    src.addEventListener('chunk', (e) => this.append(JSON.parse(e.data)));
    src.addEventListener('end', () => {
      this.status = 'ended';
      if (this.lines.length === 1 && this.lines[0] === '') this.pre.dataset.empty = '';
      this.showState();
      src.close();
    });
    src.addEventListener('failed', (e) => ((this.status = `failed: ${JSON.parse(e.data)}`), this.showState(), src.close()));
    src.addEventListener('open', () => ((this.status = 'live'), this.showState()));
    src.onerror = () => {
      if (src.readyState === EventSource.CLOSED) (this.status = 'disconnected'), this.showState();
    };
  }

  append(text) {
    const parts = text.split('\n');
    this.lines[this.lines.length - 1] += parts[0];
    for (const p of parts.slice(1)) this.lines.push(p);
    const overflow = this.lines.length > MAX_SHOWN;
    if (overflow || this.pre.childNodes.length > 2000) {
      this.pre.textContent = `${overflow ? `… ${this.lines.length - MAX_SHOWN} earlier lines: search covers them, download has them\n` : ''}${this.lines.slice(-MAX_SHOWN).join('\n')}`;
    } else this.pre.append(text);
    if (this.follow) this.pre.scrollTop = this.pre.scrollHeight;
    if (this.search.value) this.find();
    this.showState();
  }

  showState() {
    this.state.textContent = `${this.lines.length - (this.lines.at(-1) === '' ? 1 : 0)} lines · ${this.status ?? ''}${this.follow ? '' : ' · paused (scroll to the end to follow)'}`;
  }

  find() {
    const needle = this.search.value.toLowerCase();
    if (!needle) {
      this.results.hidden = true;
      this.hits.textContent = '';
      return;
    }
    const found = [];
    this.lines.forEach((l, i) => l.toLowerCase().includes(needle) && found.push(i));
    this.hits.textContent = `${found.length} line${found.length === 1 ? '' : 's'}`;
    this.results.hidden = false;
    this.results.replaceChildren(...found.slice(0, 500).map((i) => h('li', { value: i + 1 }, this.lines[i])));
  }

  close() {
    this.source?.close();
  }
}
