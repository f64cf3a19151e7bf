import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// The dashboard's static files, served by Herald itself (no CDN, works offline): htmx and uPlot from
// node_modules, the dashboard's own CSS and JS from src/web/static. Each URL holds a hash of the
// content, so a browser may cache it for a year and still gets a new file after an upgrade.

export interface Asset {
  url: string;
  body: Buffer;
  contentType: string;
}

const require = createRequire(import.meta.url);

function packageFile(packageName: string, file: string): string {
  // Neither package exports its package.json or dist files: locate the package by its main entry.
  let directory = dirname(require.resolve(packageName));
  while (!directory.endsWith(join('node_modules', packageName)) && directory !== dirname(directory))
    directory = dirname(directory);
  return join(directory, file);
}

const sources: Array<{ name: string; path: () => string; contentType: string }> = [
  {
    name: 'htmx.min.js',
    path: () => packageFile('htmx.org', 'dist/htmx.min.js'),
    contentType: 'text/javascript; charset=utf-8',
  },
  {
    name: 'uPlot.iife.min.js',
    path: () => packageFile('uplot', 'dist/uPlot.iife.min.js'),
    contentType: 'text/javascript; charset=utf-8',
  },
  {
    name: 'uPlot.min.css',
    path: () => packageFile('uplot', 'dist/uPlot.min.css'),
    contentType: 'text/css; charset=utf-8',
  },
  {
    name: 'dashboard.css',
    path: () => join(import.meta.dirname, 'static', 'dashboard.css'),
    contentType: 'text/css; charset=utf-8',
  },
  {
    name: 'dashboard.js',
    path: () => join(import.meta.dirname, 'static', 'dashboard.js'),
    contentType: 'text/javascript; charset=utf-8',
  },
];

export const assetsPrefix = '/ui/assets';

/** Reads every asset once; `urls` maps a name (`htmx.min.js`) to its hashed URL. */
export function loadAssets(): { byUrl: Map<string, Asset>; urls: Record<string, string> } {
  const byUrl = new Map<string, Asset>();
  const urls: Record<string, string> = {};
  for (const source of sources) {
    const body = readFileSync(source.path());
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
    const url = `${assetsPrefix}/${hash}/${source.name}`;
    byUrl.set(url, { url, body, contentType: source.contentType });
    urls[source.name.replace(/\W/g, '_')] = url;
  }
  return { byUrl, urls };
}
