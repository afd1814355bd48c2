#!/usr/bin/env node
// Fails when source files import each other in a circle (type imports included), or when a package imports a
// workspace package that depends on it. Run by `pnpm test`; `node scripts/check-imports.mjs` alone prints the cycles.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const packagesDir = path.join(root, 'packages');
const SOURCE = /\.(ts|js|mjs)$/;
// import/export ... from '...', import '...', import('...'): static and dynamic, type-only included.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function resolveRelative(from, specifier) {
  const base = path.resolve(path.dirname(from), specifier);
  const stem = base.replace(/\.(js|mjs)$/, '');
  return [base, `${stem}.ts`, `${stem}.js`, `${stem}.mjs`, path.join(base, 'index.ts')].find(
    (file) => existsSync(file) && SOURCE.test(file),
  );
}

/** Strongly connected components with more than one member (Tarjan). */
function cycles(graph) {
  let index = 0;
  const stack = [];
  const info = new Map();
  const found = [];
  const visit = (node) => {
    info.set(node, { index, low: index, onStack: true });
    index++;
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!info.has(next)) {
        visit(next);
        info.get(node).low = Math.min(info.get(node).low, info.get(next).low);
      } else if (info.get(next).onStack) {
        info.get(node).low = Math.min(info.get(node).low, info.get(next).index);
      }
    }
    if (info.get(node).low === info.get(node).index) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        info.get(member).onStack = false;
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? new Set()).has(node)) found.push(component);
    }
  };
  for (const node of graph.keys()) if (!info.has(node)) visit(node);
  return found;
}

const packages = readdirSync(packagesDir).filter((name) =>
  existsSync(path.join(packagesDir, name, 'package.json')),
);
const manifest = Object.fromEntries(
  packages.map((name) => [
    name,
    JSON.parse(readFileSync(path.join(packagesDir, name, 'package.json'), 'utf8')),
  ]),
);
const byPackageName = new Map(packages.map((name) => [manifest[name].name, name]));

const files = new Map();
const packageGraph = new Map(packages.map((name) => [name, new Set()]));
for (const name of packages) {
  const { dependencies = {}, peerDependencies = {} } = manifest[name];
  for (const dependency of Object.keys({ ...dependencies, ...peerDependencies })) {
    if (byPackageName.has(dependency)) packageGraph.get(name).add(byPackageName.get(dependency));
  }
  for (const file of sourceFiles(path.join(packagesDir, name, 'src'))) {
    const imports = new Set();
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      if (specifier.startsWith('.')) {
        const target = resolveRelative(file, specifier);
        if (target) imports.add(target);
      } else {
        const workspace = byPackageName.get(specifier.split('/').slice(0, 2).join('/'));
        if (workspace && workspace !== name) packageGraph.get(name).add(workspace);
      }
    }
    files.set(file, imports);
  }
}

const problems = [
  ...cycles(files).map(
    (c) => `files import each other: ${c.map((f) => path.relative(root, f)).join(' <-> ')}`,
  ),
  ...cycles(packageGraph).map((c) => `packages depend on each other: ${c.join(' <-> ')}`),
];
if (problems.length > 0) {
  console.error(`check-imports: ${problems.length} import cycle(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-imports: no import cycles among ${files.size} files of ${packages.length} packages`);
