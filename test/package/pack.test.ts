/**
 * The package as a user gets it: `npm pack`, install the tarball into an empty folder, run the
 * CLI from there (train, generate, a shipped model), import it from a script, and typecheck a
 * TypeScript consumer against the shipped declarations with `skipLibCheck: false` — once with the
 * DOM lib (a browser project), once with Node's types.
 *
 * Offline: the install must not reach the registry, on a developer's machine or in CI. The
 * tarball's only dependency (commander) is installed from this project's own node_modules, as a
 * linked folder given on the same command line (`npm install --offline <tarball> <node_modules/commander>`):
 * npm then finds every dependency satisfied locally and asks no registry. The built-in corpus
 * comes from the tarball's compact copy (dist/corpus), which `scripts/build-corpus.mjs` writes
 * first if the build has not yet.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
let work: string;
let app: string;
let tarball: string;

function run(command: string, args: string[], cwd: string, timeout = 240_000) {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, CI: '1', npm_config_update_notifier: 'false' },
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  assert.equal(
    r.status,
    0,
    `${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${out.slice(-4000)}`,
  );
  return { stdout: r.stdout, stderr: r.stderr };
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'titans-pack-'));
  app = join(work, 'app');
  await mkdir(app);
  run(process.execPath, [join(root, 'scripts/build-corpus.mjs')], root);
  // The build ran before the tests (npm test), so pack without its scripts.
  const packed = run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info!.filename);
  await writeFile(join(work, 'files.json'), JSON.stringify(info!.files.map((f) => f.path)));
  await writeFile(join(app, 'package.json'), '{ "name": "consumer", "private": true, "type": "module" }\n');
  run(
    npm,
    [
      'install',
      '--offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      tarball,
      join(root, 'node_modules', 'commander'),
    ],
    app,
  );
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds presets, models, the license, the wasm, declarations and the corpus; no maps or tests', async () => {
    const files = JSON.parse(await readFile(join(work, 'files.json'), 'utf8')) as string[];
    for (const f of [
      'LICENSE',
      'README.md',
      'package.json',
      'presets/tiny.json',
      'presets/small.json',
      'presets/experiments/niah.json',
      'models/passkey-mag/model.safetensors',
      'models/passkey-mag/README.md',
      'models/sotu-mag/tokenizer.json',
      'dist/wasm/kernels.wasm',
      'dist/corpus/sotu.txt.br',
      'dist/src/index.d.ts',
      'dist/src/api/index.js',
      'dist/src/cli/bin.js',
    ])
      assert.ok(files.includes(f), `${f} is not in the package`);
    assert.deepEqual(
      files.filter((f) => f.endsWith('.map') || f.startsWith('dist/test') || f.startsWith('src/')),
      [],
    );
    const pkg = JSON.parse(await readFile(join(app, 'node_modules/titans-ts/package.json'), 'utf8'));
    assert.deepEqual(Object.keys(pkg.dependencies), ['commander'], 'the corpus is no dependency');
  });

  it('runs its CLI: --version, train --preset tiny on the built-in corpus, generate, a shipped model', async (t) => {
    const titans = join(app, 'node_modules', '.bin', 'titans');
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
    assert.equal(run(titans, ['--version'], app).stdout.trim(), pkg.version);
    const trained = run(
      titans,
      ['train', '--preset', 'tiny', '--steps', '2', '--out', 'run', '--threads', '1'],
      app,
    );
    assert.match(trained.stderr, /builtin:sotu, byte tokenizer/);
    assert.match(trained.stdout, /mag: 2 steps in/);
    t.diagnostic(`titans train --preset tiny --steps 2 → ${trained.stdout.trim()}`);
    const generated = run(
      titans,
      ['generate', '--checkpoint', 'run', '--prompt', 'The ', '--max-tokens', '16'],
      app,
    );
    assert.ok(generated.stdout.startsWith('The '));
    assert.match(generated.stderr, /16 tokens in/);
    const recalled = run(
      titans,
      [
        'generate',
        '--checkpoint',
        'passkey-mag',
        '--prompt',
        `${'The grass is green. '.repeat(4)}The pass key is 7. Remember it. 7 is the pass key. ${'The sky is blue. '.repeat(16)}\nThe pass key is `,
        '--max-tokens',
        '1',
        '--temperature',
        '0',
      ],
      app,
    );
    assert.match(recalled.stdout, /The pass key is 7\n$/);
    t.diagnostic(`titans generate --checkpoint passkey-mag … → '${recalled.stdout.trim().slice(-18)}'`);
  });

  it('imports from a script and typechecks a TypeScript consumer (DOM lib and Node types, skipLibCheck false)', async (t) => {
    await writeFile(
      join(app, 'use.mjs'),
      `import { loadModel, tensor } from 'titans-ts';
const model = await loadModel('passkey-mag');
const answer = await model.generate('The pass key is 3. Remember it. 3 is the pass key. Here we go. There and back again. The grass is green. The sky is blue. The sun is yellow.\\nThe pass key is ', { maxNewTokens: 1, temperature: 0 });
console.log(String(tensor([[1, 2], [3, 4]])).split('\\n')[0], JSON.stringify(answer), String(model));
`,
    );
    const used = run(process.execPath, ['use.mjs'], app);
    assert.match(used.stdout, /Tensor\(float32 \[2, 2\] on wasm\) "3" TitansModel\(mag/);
    t.diagnostic(used.stdout.trim());
    const consumer = `import { loadModel, tensor, train, type TitansModel, type Inspection } from 'titans-ts';
export async function use(): Promise<number> {
  const model: TitansModel = await loadModel('passkey-mag');
  const text: string = await model.generate('The pass key is', { maxNewTokens: 4, topP: 0.9, stop: ['.'] });
  const inspection: Inspection = await model.inspect(text);
  const trained = await train({ preset: 'tiny', data: text, steps: 1 });
  return inspection.memory.length + tensor([[1, 2]]).size + trained.parameters;
}
`;
    const nodeConsumer = `${consumer}import { loadText, main } from 'titans-ts/node';
export const both = [loadText, main];
`;
    await writeFile(join(app, 'browser.ts'), consumer);
    await writeFile(join(app, 'server.ts'), nodeConsumer);
    const tsconfig = (files: string[], lib: string[], types: string[]) =>
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib,
          types,
          typeRoots: [join(root, 'node_modules', '@types')],
          strict: true,
          skipLibCheck: false,
          noEmit: true,
        },
        files,
      });
    await writeFile(join(app, 'tsconfig.dom.json'), tsconfig(['browser.ts'], ['ES2022', 'DOM'], []));
    await writeFile(join(app, 'tsconfig.node.json'), tsconfig(['server.ts'], ['ES2022'], ['node']));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const project of ['tsconfig.dom.json', 'tsconfig.node.json']) {
      run(process.execPath, [tsc, '-p', project], app);
      t.diagnostic(`tsc -p ${project} (skipLibCheck false): no errors`);
    }
  });
});
