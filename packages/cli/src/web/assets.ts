// The files `flowctl ui` serves: the page of @flowctl/ui and the graph libraries from its
// node_modules, found with Node's resolver so that pnpm's layout is not hard-coded.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface Asset {
  file: string;
  type: string;
}

const JS = 'text/javascript; charset=utf-8';

export function uiAssets(): Map<string, Asset> {
  const cli = createRequire(import.meta.url);
  const uiDir = dirname(cli.resolve('@flowctl/ui/package.json'));
  const ui = createRequire(join(uiDir, 'package.json'));
  const fcose = ui.resolve('cytoscape-fcose/cytoscape-fcose.js');
  const coseBase = createRequire(fcose).resolve('cose-base/cose-base.js');
  const layoutBase = createRequire(coseBase).resolve('layout-base/layout-base.js');
  return new Map<string, Asset>([
    ['/', { file: join(uiDir, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/app.js', { file: join(uiDir, 'app.js'), type: JS }],
    ['/style.css', { file: join(uiDir, 'style.css'), type: 'text/css; charset=utf-8' }],
    ['/lib/cytoscape.min.js', { file: ui.resolve('cytoscape/dist/cytoscape.min.js'), type: JS }],
    ['/lib/layout-base.js', { file: layoutBase, type: JS }],
    ['/lib/cose-base.js', { file: coseBase, type: JS }],
    ['/lib/cytoscape-fcose.js', { file: fcose, type: JS }],
  ]);
}
