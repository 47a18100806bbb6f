// Progress for long byte-counting work (hashing, transfers): a bar with rate and ETA on a
// TTY, one summary line elsewhere. Small jobs show nothing: the bar appears only once the
// work is big enough to be worth watching.
import { formatBytes } from './format.js';

const SHOW_FROM_BYTES = 64 * 1024 * 1024;

export interface ByteProgress {
  update(done: number, total: number): void;
  stop(): void;
}

export function byteProgress(label: string, out: NodeJS.WriteStream = process.stderr): ByteProgress {
  const started = Date.now();
  let total = 0;
  let done = 0;
  let bar: { update(v: number, p?: object): void; setTotal(t: number): void; stop(): void } | null = null;
  let loading = false;

  const startBar = async () => {
    loading = true;
    const { default: cliProgress } = await import('cli-progress');
    bar = new cliProgress.SingleBar(
      {
        stream: out,
        format: `${label} [{bar}] {percentage}% | {doneText}/{totalText} | {rate}/s | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
    (bar as unknown as { start(t: number, v: number, p: object): void }).start(total, done, payload());
  };
  const payload = () => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    return { doneText: formatBytes(done), totalText: formatBytes(total), rate: formatBytes(done / secs) };
  };

  return {
    update(d, t) {
      done = d;
      total = t;
      if (total < SHOW_FROM_BYTES) return;
      if (out.isTTY && !bar && !loading) void startBar();
      if (bar) {
        bar.setTotal(total);
        bar.update(done, payload());
      }
    },
    stop() {
      bar?.stop();
      if (total >= SHOW_FROM_BYTES) {
        const secs = (Date.now() - started) / 1000;
        out.write(`${label}: ${formatBytes(done)} in ${secs.toFixed(1)} s (${formatBytes(done / Math.max(secs, 0.001))}/s)\n`);
      }
    },
  };
}
