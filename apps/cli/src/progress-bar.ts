import type { RepublishProgress } from '@eventbus/replay';
import { formatDuration } from './table.js';

/**
 * A one-line progress bar on stderr (count, rate, ETA), drawn only when stderr is a
 * terminal: in a pipe or a log file, carriage returns would only make noise. Redraws at
 * most every 100 ms.
 */
export class ProgressBar {
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  update(p: RepublishProgress, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.drawn = true;
    this.stream.write(`\r${renderProgress(p, Math.min(100, (this.stream.columns ?? 80) - 1))}\u001b[K`);
  }

  /** Ends the bar's line so later messages start on their own. */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

/** The bar's text, e.g. `[#####·····] 1,000/2,000  50.0%  400 ev/s  ETA 3s`. */
export function renderProgress(p: RepublishProgress, width = 80): string {
  const fraction = p.total > 0 ? Math.min(1, p.sent / p.total) : 1;
  const rate = p.elapsedMs > 0 ? (p.sent * 1000) / p.elapsedMs : 0;
  const eta = rate > 0 ? (p.total - p.sent) / rate : Number.POSITIVE_INFINITY;
  const stats = ` ${p.sent.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')}  ${(fraction * 100).toFixed(1)}%  ${Math.round(rate).toLocaleString('en-US')} ev/s  ETA ${formatDuration(eta)}`;
  const barWidth = Math.max(10, width - stats.length - 2);
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'·'.repeat(barWidth - filled)}]${stats}`;
}
