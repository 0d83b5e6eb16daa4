// No module of static/js imports in a cycle, static or dynamic: a dynamic import() used to
// dodge a cycle is a cycle too (docs/architecture.md, "static/js/app").
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../static/js/", import.meta.url));

/** @param {string} dir @returns {string[]} */
function modules(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? modules(join(dir, e.name)) : e.name.endsWith(".js") ? [join(dir, e.name)] : [],
  );
}

const IMPORT = [
  /^\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/gm, // import … from / export … from
  /^\s*import\s*["']([^"']+)["']/gm, // import "x" (side effects only)
  /\bimport\(\s*["']([^"']+)["']\s*\)/g, // import("x")
];

/** The relative modules one file imports. Comments go first: JSDoc's import("…") types are no imports. @param {string} file */
export function importsOf(file) {
  const source = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found = new Set();
  for (const pattern of IMPORT) {
    for (const [, spec] of source.matchAll(pattern)) {
      if (spec.startsWith(".")) found.add(resolve(dirname(file), spec));
    }
  }
  return [...found];
}

/** The first cycle found, as a path that ends where it starts, or null. @param {Map<string, string[]>} graph */
export function findCycle(graph) {
  const done = new Set();
  /** @param {string} node @param {string[]} path @returns {string[] | null} */
  const visit = (node, path) => {
    const at = path.indexOf(node);
    if (at >= 0) return [...path.slice(at), node];
    if (done.has(node)) return null;
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next, [...path, node]);
      if (cycle) return cycle;
    }
    done.add(node);
    return null;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node, []);
    if (cycle) return cycle;
  }
  return null;
}

test("the cycle finder finds a cycle through a dynamic import and none in a tree", () => {
  assert.deepEqual(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])), ["a", "b", "c", "a"]);
  assert.equal(findCycle(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), null);
});

test("no module of static/js imports in a cycle", () => {
  const graph = new Map(modules(ROOT).map((file) => [file, importsOf(file)]));
  assert.ok(graph.size > 30, `read ${graph.size} modules`);
  const shell = graph.get(join(ROOT, "app", "shell.js")) ?? [];
  assert.ok(shell.includes(join(ROOT, "app", "messenger.js")), "dynamic imports are read");
  const cycle = findCycle(graph);
  assert.equal(cycle && cycle.map((f) => relative(ROOT, f)).join(" → "), null);
});
