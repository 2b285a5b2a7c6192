// The layers of src/ as folders, checked: no folder imports a folder that imports it back
// (directly or through others), no file is in a runtime import cycle, the format and the
// kernel load no native code and own their types (nothing from src/api.ts). Type-only imports
// count for folders (they still tie the layers together) but not for files (they vanish at
// run time). A failure names the cycle.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
const SRC = path.resolve(here, '..', '..', 'src');
const IMPORT = /^\s*(?:import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;

interface Edge {
  to: string;
  typeOnly: boolean;
}

/** Every .ts file under src/, relative to it, with the files it imports. */
function importGraph(): Map<string, Edge[]> {
  const graph = new Map<string, Edge[]>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) graph.set(path.relative(SRC, full), edgesOf(full));
    }
  };
  walk(SRC);
  return graph;
}

function edgesOf(file: string): Edge[] {
  const text = fs.readFileSync(file, 'utf8');
  const edges: Edge[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const target = path.relative(SRC, path.resolve(path.dirname(file), (match[2] ?? '').replace(/\.js$/, '.ts')));
    edges.push({ to: target, typeOnly: match[1] !== undefined });
  }
  return edges;
}

/** A cycle in the graph (as a list of nodes, first = last), or null. */
function findCycle(nodes: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of nodes.get(node) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of [...nodes.keys()].sort()) {
    if (state.get(node) !== undefined) continue;
    const found = visit(node);
    if (found) return found;
  }
  return null;
}

/** The folder of a file under src/; files at the top are their own layer (index, api, ...). */
function folderOf(file: string): string {
  const parts = file.split(path.sep);
  return parts.length > 1 ? (parts[0] ?? file) : file;
}

test('no folder of src/ imports one that imports it back', () => {
  const folders = new Map<string, Set<string>>();
  for (const [file, edges] of importGraph()) {
    const from = folderOf(file);
    const targets = folders.get(from) ?? new Set<string>();
    for (const { to } of edges) if (folderOf(to) !== from) targets.add(folderOf(to));
    folders.set(from, targets);
  }
  assert.deepEqual(findCycle(folders), null);
});

test('no file of src/ is in a runtime import cycle', () => {
  const files = new Map<string, Set<string>>();
  for (const [file, edges] of importGraph()) files.set(file, new Set(edges.filter((e) => !e.typeOnly).map((e) => e.to)));
  assert.deepEqual(findCycle(files), null);
});

test('the format codecs and the kernel load no native code', () => {
  const native: string[] = [];
  for (const [file, edges] of importGraph()) {
    if (!['format', 'kernel'].includes(folderOf(file))) continue;
    for (const { to, typeOnly } of edges) if (!typeOnly && folderOf(to) === 'arch') native.push(`${file} -> ${to}`);
  }
  assert.deepEqual(native, []);
});

test('the kernel and the format import nothing from the public API file', () => {
  const api: string[] = [];
  for (const [file, edges] of importGraph()) {
    if (!['format', 'kernel'].includes(folderOf(file))) continue;
    for (const { to } of edges) if (to === 'api.ts') api.push(file);
  }
  assert.deepEqual(api, []);
});

test('the cycle finder finds a cycle', () => {
  const graph = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]]);
  assert.deepEqual(findCycle(graph), ['a', 'b', 'c', 'a']);
  assert.equal(findCycle(new Map([['a', new Set(['b'])], ['b', new Set<string>()]])), null);
});
