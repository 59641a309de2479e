// Builds the React 19 and Vue 3 test apps with Vite (npm registry packages, no plugins: React's
// JSX goes through Vite's built-in transform with the automatic runtime, Vue uses render
// functions) into a temporary directory, as development builds so React's StrictMode runs
// its double effects. Usage: `node e2e/frameworks/build.mjs OUT_DIR` or `buildApps(outDir)`.

import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export async function buildApps(outDir) {
  const { build } = await import('vite');
  const out = {};
  for (const name of ['react', 'vue']) {
    const dir = join(outDir, name);
    await build({
      configFile: false,
      root: join(HERE, name),
      publicDir: join(HERE, 'public'),
      mode: 'development',
      logLevel: 'warn',
      define: {
        'process.env.NODE_ENV': JSON.stringify('development'),
        __VUE_OPTIONS_API__: 'true',
        __VUE_PROD_DEVTOOLS__: 'false',
        __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
      },
      oxc: { jsx: { runtime: 'automatic' } },
      build: { outDir: dir, emptyOutDir: true, target: 'esnext', minify: false },
    });
    out[name] = dir;
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2];
  if (!outDir) throw new Error('usage: node e2e/frameworks/build.mjs OUT_DIR');
  console.log(await buildApps(outDir));
}
