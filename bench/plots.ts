// The report's figures: Vega-Lite specifications compiled to Vega and rendered headless to
// SVG (view.toSVG(), no browser, no canvas). Each function turns result rows into a spec;
// renderSvg does the rendering. vega and vega-lite belong to bench/'s own package (`npm run
// bench:peers`): without them the report is written with its tables and a line saying the
// plots were skipped and why. A spec is typed here as plain JSON: vega-lite validates it.
//
// Conventions, the same in every figure: one question per figure (its title asks it); the
// series of a figure get distinct colours; a line's style says what it is (solid: the Region
// System, dashed: an atomic peer, dotted: a floor that is not atomic), and the legend
// says so with line samples; goal lines carry their label; ratios point the same way
// ("higher is better"); an axis is logarithmic wherever values span orders of magnitude.

import { importPeer, PEERS_COMMAND } from './peer_modules.js';

/** A Vega-Lite specification (JSON). */
export type Spec = { [key: string]: unknown };

export type Row = Record<string, number | string>;

/** The members of vega and vega-lite that rendering uses. */
interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}
interface VegaLiteModule {
  compile(spec: Spec): { spec: unknown };
}

const WIDTH = 280;
const HEIGHT = 200;
const FONT = 'Helvetica, Arial, sans-serif';
const LEGEND = {
  labelFontSize: 11, titleFontSize: 11, labelLimit: 360, symbolType: 'stroke', symbolStrokeWidth: 2.5, symbolSize: 400,
};
const CONFIG = {
  font: FONT, axis: { labelFontSize: 10, titleFontSize: 11 }, legend: LEGEND,
  header: { labelFontSize: 11, titleFontSize: 11 },
};

/** The line-style legend draws its samples in a neutral colour (they would take no colour otherwise). */
const STYLE_LEGEND = { encode: { symbols: { update: { stroke: { value: '#333333' } } } } };

/** Ten colours far apart (Tableau 10, reordered so the first ones differ most). */
const PALETTE = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f',
];

/** What a line's style means; `kind` rows carry one of these. */
export const KIND = {
  ours: 'Region System (solid)',
  peer: 'atomic peer (dashed)',
  floor: 'not atomic: a floor (dotted)',
} as const;
const DASHES: Record<string, number[]> = { [KIND.ours]: [1, 0], [KIND.peer]: [7, 3], [KIND.floor]: [2, 2] };

let seriesOrder: string[] = [];

/** Fixes the order in which series take colours (ours first, so the Region System is blue in every figure). */
export function setSeriesOrder(labels: string[]): void {
  seriesOrder = labels;
}

/** Distinct colours for the series present in these rows, in the fixed order (or, `asGiven`, in the rows' order). */
function colorScale(rows: Row[], field: string, asGiven = false): { domain: string[]; range: string[] } {
  const present = new Set(rows.map((r) => String(r[field])));
  const order = asGiven ? [] : seriesOrder;
  const unordered = [...present].filter((label) => !order.includes(label));
  const domain = [...order.filter((label) => present.has(label)), ...unordered];
  return { domain, range: domain.map((_, i) => PALETTE[i % PALETTE.length] ?? '#000000') };
}

/** One colour per system. */
function systemColors(rows: Row[]): Spec {
  return { field: 'system', type: 'nominal', title: 'system', scale: colorScale(rows, 'system') };
}

/** Line styles by kind, with a legend of line samples (none when every line has the same style). */
function dashEncoding(rows: Row[]): Spec {
  const domain = Object.keys(DASHES).filter((kind) => rows.some((r) => r['kind'] === kind));
  const scale = { domain, range: domain.map((kind) => DASHES[kind] ?? [1, 0]) };
  const legend = domain.length > 1 ? STYLE_LEGEND : null;
  return { field: 'kind', type: 'nominal', title: 'line style', scale, legend };
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

const K_AXIS = {
  field: 'k', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'pages per commit (k)',
  axis: { values: [1, 16, 256, 4096] },
};

/** y against k (log-log), one line per system (colour) styled by kind, one panel per `panel`. */
export function linesVsK(title: string, rows: Row[], y: { field: string; title: string }, independentY = false): Spec {
  return {
    ...base(title, rows),
    facet: { field: 'panel', type: 'nominal', title: null, sort: null },
    columns: 2,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      mark: { type: 'line', point: true, strokeWidth: 1.6 },
      encoding: {
        x: K_AXIS,
        y: { field: y.field, type: 'quantitative', scale: { type: 'log' }, title: y.title },
        color: systemColors(rows),
        strokeDash: dashEncoding(rows),
      },
    },
    resolve: { scale: { y: independentY ? 'independent' : 'shared' } },
  };
}

const PHASES = ['store loop', 'pmsync'];

/** Grouped bars (one per phase) per tracker, a log axis, one panel per k. */
export function phaseBars(title: string, rows: Row[]): Spec {
  return {
    ...base(title, rows),
    facet: { field: 'panel', type: 'nominal', title: null, sort: null },
    columns: 4,
    spec: {
      width: { step: 22 },
      height: HEIGHT,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'tracker', type: 'nominal', title: null, sort: ['manual', 'scan', 'fault'] },
        xOffset: { field: 'phase', type: 'nominal', sort: PHASES },
        y: { field: 'us', type: 'quantitative', title: 'µs per commit (log)', scale: { type: 'log' }, stack: null },
        color: { field: 'phase', type: 'nominal', title: 'phase', sort: PHASES, scale: { range: PALETTE.slice(0, 2) } },
      },
    },
    config: { ...CONFIG, legend: { ...LEGEND, symbolType: 'square' } },
  };
}

/**
 * Ratios against k, higher is better in every panel (1 = as fast as the other), with a
 * labelled rule per goal. Goal rows are `{ panel, goal, label, place: 'above' | 'below' }`; ratio rows
 * `{ panel, k, ratio, peer }`.
 */
export function ratioVsK(title: string, rows: Row[], goals: Row[], yTitle: string): Spec {
  const ratios = rows.map((r) => ({ ...r, row: 'ratio' }));
  const marks = goals.map((g) => ({ ...g, row: 'goal' }));
  const only = (row: string): { filter: string } => ({ filter: `datum.row === '${row}'` });
  return {
    ...base(title, [...ratios, ...marks]),
    facet: { field: 'panel', type: 'nominal', title: null, sort: null },
    columns: 2,
    spec: {
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          transform: [only('ratio')],
          mark: { type: 'line', point: true, strokeWidth: 1.6 },
          encoding: {
            x: K_AXIS,
            y: { field: 'ratio', type: 'quantitative', scale: { type: 'log' }, title: yTitle },
            color: { field: 'peer', type: 'nominal', title: 'against', scale: colorScale(rows, 'peer', true) },
          },
        },
        {
          transform: [only('goal')],
          mark: { type: 'rule', strokeDash: [4, 3], color: '#555555' },
          encoding: { y: { field: 'goal', type: 'quantitative' } },
        },
        goalLabels('above'),
        goalLabels('below'),
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** The labels of goal rows whose `place` is above or below their line (close goals take one each). */
function goalLabels(place: 'above' | 'below'): Spec {
  return {
    transform: [{ filter: `datum.row === 'goal' && datum.place === '${place}'` }],
    mark: {
      type: 'text', align: 'right', baseline: place === 'above' ? 'bottom' : 'top',
      dx: -2, dy: place === 'above' ? -2 : 2, fontSize: 10, color: '#333333',
    },
    encoding: { x: { value: WIDTH }, y: { field: 'goal', type: 'quantitative' }, text: { field: 'label' } },
  };
}

/** y against a size or count on log axes, one line per series (colour, styled by kind). */
export function linesVsSize(title: string, rows: Row[], x: Axis, y: Axis): Spec {
  return { ...base(title, rows), ...sizePanel(rows, rows, x, y) };
}

/** Side by side, each with its own x axis and title (panels that measure different things). */
export function sideBySide(title: string, panels: { rows: Row[]; x: Axis; y: Axis }[]): Spec {
  const all = panels.flatMap((p) => p.rows);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    config: CONFIG,
    hconcat: panels.map((p) => ({ data: { values: p.rows }, ...sizePanel(p.rows, all, p.x, p.y) })),
  };
}

interface Axis {
  field: string;
  title: string;
}

/** One log-log panel; colours and line styles come from `all` so that panels side by side agree. */
function sizePanel(rows: Row[], all: Row[], x: Axis, y: Axis): Spec {
  return {
    width: WIDTH * 1.3,
    height: HEIGHT * 1.1,
    mark: { type: 'line', point: true, strokeWidth: 1.6 },
    encoding: {
      x: { field: x.field, type: 'quantitative', scale: { type: 'log' }, title: x.title },
      y: { field: y.field, type: 'quantitative', scale: { type: 'log' }, title: y.title },
      color: systemColors(all),
      strokeDash: dashEncoding(all),
    },
  };
}
