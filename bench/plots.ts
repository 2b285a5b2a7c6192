// The report's figures: Vega-Lite specifications compiled to Vega and rendered headless to
// SVG (view.toSVG(), no browser, no canvas). Each function turns result rows into a spec;
// renderSvg does the rendering. vega and vega-lite belong to bench/'s own package (`npm run
// bench:peers`): without them the report is written with its tables and a line saying the
// plots were skipped and why. A spec is typed here as plain JSON: vega-lite validates it.

import { importPeer, PEERS_COMMAND } from './peer_modules.js';

/** A Vega-Lite specification (JSON). */
export type Spec = { [key: string]: unknown };

/** The members of vega and vega-lite that rendering uses. */
interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}
interface VegaLiteModule {
  compile(spec: Spec): { spec: unknown };
}

export type Row = Record<string, number | string>;

const WIDTH = 260;
const HEIGHT = 190;
const FONT = 'Helvetica, Arial, sans-serif';
const CONFIG = { font: FONT, axis: { labelFontSize: 10, titleFontSize: 11 }, legend: { labelFontSize: 10, titleFontSize: 11, labelLimit: 260 }, header: { labelFontSize: 11, titleFontSize: 11 } };

// One color per system, the same in every figure (Tableau 20, in the order of SYSTEMS).
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#ffbb78', '#8c564b', '#c49c94', '#e377c2', '#f7b6d2', '#17becf', '#9edae5', '#bcbd22', '#dbdb8d', '#7f7f7f', '#c7c7c7', '#aec7e8', '#98df8a', '#ff9896', '#c5b0d5'];
let colorOrder: string[] = [];

/** Fixes the order of system labels, hence their colors, for every figure after this call. */
export function setSystemOrder(labels: string[]): void {
  colorOrder = labels;
}

function colorScale(rows: Row[], field: string): { domain: string[]; range: string[] } {
  const present = new Set(rows.map((r) => String(r[field])));
  const known = colorOrder.filter((label) => present.has(label));
  const extra = [...present].filter((label) => !colorOrder.includes(label));
  const domain = [...known, ...extra];
  return { domain, range: domain.map((label) => PALETTE[(colorOrder.indexOf(label) + PALETTE.length) % PALETTE.length] ?? '#000000') };
}

interface Renderer {
  render(spec: Spec): Promise<string>;
}

let renderer: Renderer | string | undefined;

/** The renderer, or why there is none. */
async function loadRenderer(): Promise<Renderer | string> {
  if (renderer !== undefined) return renderer;
  try {
    const vega = (await importPeer('vega')) as VegaModule;
    const vegaLite = (await importPeer('vega-lite')) as VegaLiteModule;
    renderer = {
      async render(spec) {
        const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
        try {
          return await view.toSVG();
        } finally {
          view.finalize();
        }
      },
    };
  } catch (error) {
    renderer = `vega and vega-lite are not installed (${PEERS_COMMAND}): ${(error as Error).message.split('\n')[0]}`;
  }
  return renderer;
}

/** Renders a spec to SVG text, or returns why it could not. */
export async function renderSvg(spec: Spec): Promise<{ svg: string } | { skipped: string }> {
  const loaded = await loadRenderer();
  if (typeof loaded === 'string') return { skipped: loaded };
  return { svg: await loaded.render(spec) };
}

function base(title: string, rows: Row[]): Spec {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, data: { values: rows }, config: CONFIG };
}

/** y against k (log-log), one line per system, one panel per `facet` value. */
export function linesVsK(title: string, rows: Row[], y: { field: string; title: string; log?: boolean }, independentY = false): Spec {
  const facet = 'panel';
  return {
    ...base(title, rows),
    facet: { field: facet, type: 'nominal', title: null },
    columns: 2,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      mark: { type: 'line', point: true, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'k', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'pages per commit (k)', axis: { values: [1, 16, 256, 4096] } },
        y: { field: y.field, type: 'quantitative', scale: { type: y.log === false ? 'linear' : 'log' }, title: y.title },
        color: { field: 'system', type: 'nominal', title: 'system', scale: colorScale(rows, 'system') },
        strokeDash: { field: 'kind', type: 'nominal', title: 'kind', sort: null },
      },
    },
    resolve: { scale: { y: independentY ? 'independent' : 'shared' } },
  };
}

/** Stacked bars of the store loop and pmsync per tracker, one panel per k. */
export function stackedPhases(title: string, rows: Row[]): Spec {
  return {
    ...base(title, rows),
    facet: { field: 'panel', type: 'nominal', title: null, sort: null },
    columns: 4,
    spec: {
      width: { step: 26 },
      height: HEIGHT,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'tracker', type: 'nominal', title: null, sort: ['manual', 'scan', 'fault'] },
        y: { field: 'us', type: 'quantitative', title: 'µs per commit', stack: 'zero' },
        color: { field: 'phase', type: 'nominal', title: 'phase', sort: ['store loop', 'pmsync'] },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** A ratio against k with a rule at `goal` (and at 1). */
export function ratioVsK(title: string, rows: Row[], yTitle: string, goals: number[]): Spec {
  return {
    ...base(title, rows),
    facet: { field: 'panel', type: 'nominal', title: null },
    columns: 2,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'k', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'pages per commit (k)', axis: { values: [1, 16, 256, 4096] } },
            y: { field: 'ratio', type: 'quantitative', scale: { type: 'log' }, title: yTitle },
            color: { field: 'peer', type: 'nominal', title: 'against', sort: null },
          },
        },
        ...goals.map((goal) => ({ mark: { type: 'rule', strokeDash: [4, 3], color: 'gray' }, encoding: { y: { datum: goal } } })),
      ],
    },
  };
}

/** y against a size or count on a log x axis, one line per series. */
export function linesVsSize(title: string, rows: Row[], x: { field: string; title: string }, y: { field: string; title: string }, facet?: string): Spec {
  const inner = {
    width: WIDTH,
    height: HEIGHT,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: x.field, type: 'quantitative', scale: { type: 'log' }, title: x.title },
      y: { field: y.field, type: 'quantitative', scale: { type: 'log' }, title: y.title },
      color: { field: 'system', type: 'nominal', title: 'system', scale: colorScale(rows, 'system') },
    },
  };
  if (facet === undefined) return { ...base(title, rows), ...inner };
  return { ...base(title, rows), facet: { field: facet, type: 'nominal', title: null }, columns: 2, spec: inner, resolve: { scale: { x: 'independent', y: 'independent' } } };
}
