#!/usr/bin/env node
// A solc-compatible front for solc-js, so py-solc-x can drive it like a native binary.
// The solcjs CLI prints an SMT-solver notice before its JSON and rejects --allow-paths; this does not.
// Supports: --version, --standard-json (input on stdin), --base-path DIR; other flags are ignored.
'use strict';
const fs = require('fs');
const path = require('path');

function loadSolc() {
  const roots = [process.env.AGENTMARKET_NODE_MODULES, path.join(process.cwd(), 'node_modules')]
    .filter(Boolean);
  for (const root of roots) {
    try { return require(require.resolve('solc', { paths: [path.dirname(root), root] })); } catch (e) { /* next */ }
  }
  process.stderr.write('solc-js not found: run `npm ci` in the project root (node_modules/solc)\n');
  process.exit(3);
}

const args = process.argv.slice(2);
const solc = loadSolc();
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
const bi = args.indexOf('--base-path');
const base = bi >= 0 ? args[bi + 1] : process.cwd();
const input = fs.readFileSync(0, 'utf8');

function findImports(unitName) {
  // Remappings were applied by the compiler already; unit names are relative to the base path.
  const file = path.resolve(base, unitName);
  if (!file.startsWith(path.resolve(base) + path.sep)) return { error: 'outside base path: ' + unitName };
  try { return { contents: fs.readFileSync(file, 'utf8') }; } catch (e) { return { error: 'File not found: ' + unitName }; }
}
process.stdout.write(solc.compile(input, { import: findImports }));
