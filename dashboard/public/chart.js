// Metric curves with uPlot: per run, the raw line faded and its EMA (debiased, as TensorBoard
// draws it) on top; log scale; step or wall-clock x axis; several runs overlaid. Runs with
// different steps share one x axis (the union) and each line spans its own gaps.
import uPlot from '/vendor/uplot/uPlot.esm.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

export function ema(values, weight) {
  const out = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = weight > 0 ? last / (1 - weight ** n) : v;
  }
  return out;
}

/** uPlot data for one metric over several runs: [x, raw0, ema0, raw1, ema1, ...]. */
export function alignRuns(runs, metric, xKind, weight) {
  const xsOf = (m) => (xKind === 'time' ? m.time : m.steps);
  const usable = runs.filter((r) => r.metrics.series[metric] && xsOf(r.metrics));
  const xs = [...new Set(usable.flatMap((r) => xsOf(r.metrics).filter((x) => x !== null)))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const data = [xs];
  for (const r of usable) {
    const raw = new Array(xs.length).fill(null);
    const own = xsOf(r.metrics);
    r.metrics.series[metric].forEach((v, i) => own[i] !== null && (raw[at.get(own[i])] = v));
    data.push(raw, ema(raw, weight));
  }
  return { data, runs: usable };
}

export class MetricChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.key = '';
  }

  /** Draws (or redraws in place when only the data grew). */
  draw({ runs, metric, xKind, weight, log }) {
    const { data, runs: shown } = alignRuns(runs, metric, xKind, weight);
    const key = JSON.stringify([shown.map((r) => r.id), metric, xKind, log]);
    const width = Math.max(280, this.el.clientWidth);
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return data[0].length;
    }
    this.plot?.destroy();
    this.key = key;
    const series = [{ label: xKind === 'time' ? 'time' : 'step' }];
    shown.forEach((r, i) => {
      const color = COLORS[i % COLORS.length];
      series.push({ label: `${r.label} raw`, stroke: `${color}40`, width: 1, spanGaps: true, points: { show: false } });
      series.push({ label: `${r.label} ${metric}`, stroke: color, width: 2, spanGaps: true, points: { show: false } });
    });
    this.plot = new uPlot(
      {
        width,
        height: 300,
        series,
        scales: { x: { time: xKind === 'time' }, y: log ? { distr: 3 } : {} },
        axes: [{}, { size: 60 }],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
      },
      data,
      this.el,
    );
    return data[0].length;
  }

  resize() {
    this.plot?.setSize({ width: Math.max(280, this.el.clientWidth), height: 300 });
  }
}
