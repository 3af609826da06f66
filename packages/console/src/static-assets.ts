import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file the page loads, read once at start (the set is fixed: no path from a request reaches the file system). */
export interface Asset {
  body: string;
  type: string;
}

const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'public');
const require = createRequire(import.meta.url);

/**
 * The page's files: its own (public/) and the browser builds of the libraries it imports,
 * straight from their installed packages (pinned in package.json; nothing copied by hand).
 * The page's import map names them under /vendor/.
 */
export async function loadAssets(): Promise<{ index: string; login: string; files: Map<string, Asset> }> {
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  const preact = require.resolve('preact');
  const sources: Array<[string, string, string]> = [
    ['/static/app.mjs', join(PUBLIC_DIR, 'app.mjs'), js],
    ['/static/charts.mjs', join(PUBLIC_DIR, 'charts.mjs'), js],
    ['/static/chart-series.mjs', join(PUBLIC_DIR, 'chart-series.mjs'), js],
    ['/static/style.css', join(PUBLIC_DIR, 'style.css'), css],
    ['/vendor/preact.mjs', preact, js],
    ['/vendor/preact-hooks.mjs', require.resolve('preact/hooks'), js],
    ['/vendor/htm.mjs', join(dirname(require.resolve('htm')), 'htm.mjs'), js],
    ['/vendor/uPlot.esm.js', require.resolve('uplot/dist/uPlot.esm.js'), js],
    ['/vendor/uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css'), css],
  ];
  const files = new Map<string, Asset>();
  for (const [path, file, type] of sources) files.set(path, { body: await readFile(file, 'utf8'), type });
  return {
    index: await readFile(join(PUBLIC_DIR, 'index.html'), 'utf8'),
    login: await readFile(join(PUBLIC_DIR, 'login.html'), 'utf8'),
    files,
  };
}

/** The page with its per-process values filled in (HTML-escaped). */
export function renderPage(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => escapeHtml(values[name] ?? ''));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}
