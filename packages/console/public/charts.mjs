// Time-series charts on uPlot: one plot per panel, created once, fed new data every poll.
import htm from 'htm';
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

const html = htm.bind(h);

/**
 * `series`: [{ label, color, scale? }]; `data`: [times in seconds, ...one array per series].
 * A series with scale 'right' is drawn against a second axis on the right (ages next to counts).
 */
export function TimeChart({ title, series, data, testId, compact = false }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => `${s.label}:${s.scale ?? 'y'}`).join('|');
  // Rebuilt only when the series change (`shape`); new data goes through setData below.
  useEffect(() => {
    const right = series.some((s) => s.scale === 'right');
    plot.current = new uPlot(
      {
        width: Math.max(320, box.current.clientWidth),
        height: compact ? 150 : 190,
        scales: { x: { time: true } },
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, scale: s.scale ?? 'y', points: { show: false } }))],
        // x: ticks at least 90 px apart, so a wide chart of a few seconds labels whole seconds, not halves.
        axes: [{ space: 90 }, { scale: 'y' }, ...(right ? [{ scale: 'right', side: 1, grid: { show: false } }] : [])],
        legend: { live: false },
      },
      data,
      box.current,
    );
    return () => plot.current.destroy();
  }, [shape]);
  useEffect(() => plot.current?.setData(data), [data]);
  // data-series names the lines drawn (what the legend shows), for tests and for scripts reading the page.
  const names = series.map((s) => s.label).join(' | ');
  return compact
    ? html`<div class="chart-compact" data-testid=${testId} data-series=${names}><h3>${title}</h3><div ref=${box}></div></div>`
    : html`<section class="panel" data-testid=${testId} data-series=${names}><h2>${title}</h2><div ref=${box}></div></section>`;
}
