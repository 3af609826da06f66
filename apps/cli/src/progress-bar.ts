import type { RepublishProgress } from '@eventbus/replay';
import { formatDuration } from './table.js';

/**
 * Progress on stderr (count, rate, ETA). On a terminal: a one-line bar redrawn at most every
 * 100 ms. In a pipe or a log file, where carriage returns would only make noise: a plain
 * `progress: …` line once the first events are sent, then at most one every `lineIntervalMs`
 * (default 5 s), so a log (or a script waiting for the replay to be under way) sees it run.
 */
export class ProgressBar {
  private lastDraw = 0;
  private drawn = false;
  private lastLine = 0;
  private readonly lineIntervalMs: number;
  private readonly label: string | undefined;
  private readonly unit: string;

  /** `label` names what runs when a command has several phases (`event log`); `unit` is what is counted (default `ev`). */
  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    options: { lineIntervalMs?: number; label?: string; unit?: string } = {},
  ) {
    this.lineIntervalMs = options.lineIntervalMs ?? 5000;
    this.label = options.label;
    this.unit = options.unit ?? 'ev';
  }

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  update(p: RepublishProgress, force = false): void {
    const now = Date.now();
    if (!this.enabled) {
      // Not at 0 (nothing happened yet) nor at the end (the summary follows).
      if (p.sent === 0 || p.sent >= p.total || (this.lastLine !== 0 && now - this.lastLine < this.lineIntervalMs)) return;
      this.lastLine = now;
      this.stream.write(`progress${this.label ? ` (${this.label})` : ''}: ${renderStats(p, this.unit)}\n`);
      return;
    }
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.drawn = true;
    const prefix = this.label ? `${this.label} ` : '';
    this.stream.write(`\r${prefix}${renderProgress(p, Math.min(100, (this.stream.columns ?? 80) - 1) - prefix.length, this.unit)}\u001b[K`);
  }

  /** Ends the bar's line so later messages start on their own. */
  finish(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

/** The bar's text, e.g. `[#####·····] 1,000/2,000  50.0%  400 ev/s  ETA 3s`. */
export function renderProgress(p: RepublishProgress, width = 80, unit = 'ev'): string {
  const fraction = p.total > 0 ? Math.min(1, p.sent / p.total) : 1;
  const stats = ` ${renderStats(p, unit)}`;
  const barWidth = Math.max(10, width - stats.length - 2);
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'·'.repeat(barWidth - filled)}]${stats}`;
}

/** `1,000/2,000  50.0%  400 ev/s  ETA 3s` */
function renderStats(p: RepublishProgress, unit: string): string {
  const fraction = p.total > 0 ? Math.min(1, p.sent / p.total) : 1;
  const rate = p.elapsedMs > 0 ? (p.sent * 1000) / p.elapsedMs : 0;
  const eta = rate > 0 ? (p.total - p.sent) / rate : Number.POSITIVE_INFINITY;
  return `${p.sent.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')}  ${(fraction * 100).toFixed(1)}%  ${Math.round(rate).toLocaleString('en-US')} ${unit}/s  ETA ${formatDuration(eta)}`;
}
