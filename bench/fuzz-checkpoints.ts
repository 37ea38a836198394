/**
 * The checkpoint fuzz of test/io/fuzz.test.ts, run long by hand: N random mutations (default
 * 10,000) of a valid training checkpoint folder, each loaded in a worker thread watched for hangs,
 * with the counts by outcome, by file and by kind of damage, and the commonest error messages.
 *
 *   node dist/bench/fuzz-checkpoints.js [--runs 10000] [--seed 15] [--legacy] [--json results.json]
 *
 * --legacy removes the manifest first (a checkpoint written before manifests) and damages only
 * the tensor files, which their headers' per-tensor hashes and the shape checks still protect.
 *
 * Acceptable outcomes: `error` (a CheckpointError naming the file) and `identical` (exactly the
 * original data). `wrong`, `crash` and `hang` are failures, printed with the mutation that made
 * them; the exit status is 1 if there is any.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import '../src/index.js';
import {
  LEGACY_PROTECTED_FILES,
  loadSnapshot,
  type Mutation,
  makeTrainingCheckpoint,
  mutationArbitrary,
  type Outcome,
  tryMutation,
} from '../test/helpers/checkpoint-fuzz.js';

interface Job {
  original: string;
  expected: string;
  seed: number;
  runs: number;
  from: number;
  work: string;
  legacy: boolean;
}

/** The mutations of a run: any file, or (--legacy, no manifest) the tensor files. */
const mutationsOf = (job: Pick<Job, 'seed' | 'runs' | 'legacy'>): Mutation[] =>
  fc.sample(mutationArbitrary(job.legacy ? LEGACY_PROTECTED_FILES : undefined), {
    seed: job.seed,
    numRuns: job.runs,
  });

/** No answer from the worker for this long counts the mutation in progress as a hang. */
const HANG_MS = 60_000;

if (!isMainThread) {
  const job = workerData as Job;
  const mutations = mutationsOf(job);
  for (let i = job.from; i < mutations.length; i++) {
    parentPort!.postMessage({ index: i, started: true });
    const { outcome, detail } = await tryMutation(
      job.original,
      join(job.work, `case-${i}`),
      mutations[i]!,
      job.expected,
    );
    parentPort!.postMessage({ index: i, outcome, detail });
  }
} else {
  const flag = (name: string, fallback: string) => {
    const at = process.argv.indexOf(`--${name}`);
    return at >= 0 ? process.argv[at + 1]! : fallback;
  };
  const runs = Number(flag('runs', '10000'));
  const seed = Number(flag('seed', '15'));
  const jsonPath = flag('json', '');
  const legacy = process.argv.includes('--legacy');
  const root = await mkdtemp(join(tmpdir(), 'titans-fuzz-long-'));
  const original = join(root, 'original', 'checkpoint');
  await makeTrainingCheckpoint(original);
  if (legacy) await rm(join(original, 'manifest.json'));
  const expected = await loadSnapshot(original);
  const mutations = mutationsOf({ seed, runs, legacy });

  const outcomes = new Map<number, { outcome: Outcome | 'hang'; detail: string }>();
  const started = performance.now();
  let from = 0;
  while (from < runs) {
    from = await new Promise<number>((resolve) => {
      const worker = new Worker(new URL(import.meta.url), {
        workerData: { original, expected, seed, runs, from, work: join(root, 'work'), legacy } satisfies Job,
      });
      let current = from;
      let last = performance.now();
      const watchdog = setInterval(() => {
        if (performance.now() - last < HANG_MS) return;
        outcomes.set(current, { outcome: 'hang', detail: `no answer in ${HANG_MS / 1000} s` });
        clearInterval(watchdog);
        void worker.terminate().then(() => resolve(current + 1));
      }, 1000);
      worker.on('message', (m: { index: number; started?: boolean; outcome?: Outcome; detail?: string }) => {
        last = performance.now();
        current = m.index;
        if (m.started) return;
        outcomes.set(m.index, { outcome: m.outcome!, detail: m.detail! });
        if (outcomes.size % 1000 === 0) {
          process.stderr.write(
            `${outcomes.size}/${runs} mutations, ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
          );
        }
      });
      worker.on('exit', () => {
        clearInterval(watchdog);
        resolve(Math.max(current + 1, from));
      });
      worker.on('error', (error) => {
        outcomes.set(current, { outcome: 'crash', detail: `worker died: ${error.message}` });
      });
    });
  }

  const count = (key: (m: Mutation, o: Outcome | 'hang') => string) => {
    const table: Record<string, Record<string, number>> = {};
    for (const [i, { outcome }] of outcomes) {
      const name = key(mutations[i]!, outcome);
      table[name] = { ...table[name], [outcome]: (table[name]?.[outcome] ?? 0) + 1 };
    }
    return table;
  };
  const totals: Record<string, number> = {};
  for (const { outcome } of outcomes.values()) totals[outcome] = (totals[outcome] ?? 0) + 1;
  const messages: Record<string, number> = {};
  for (const { outcome, detail } of outcomes.values()) {
    if (outcome !== 'error') continue;
    // The problem without the temp path and the numbers: a category of message.
    const category = detail
      .replace(/^.*?case-\d+\//, '')
      .replace(/\d+(\.\d+)?/g, 'N')
      .replace(/"[^"]*"/g, '"…"')
      .slice(0, 110);
    messages[category] = (messages[category] ?? 0) + 1;
  }
  const failures = [...outcomes].filter(([, o]) => o.outcome !== 'error' && o.outcome !== 'identical');
  console.log(
    `${outcomes.size} mutations (seed ${seed}${legacy ? ', no manifest, tensor files only' : ''}) in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  console.log('by outcome:', JSON.stringify(totals));
  console.log(
    'by file:',
    JSON.stringify(
      count((m) => m.file),
      null,
      1,
    ),
  );
  console.log(
    'by kind of damage:',
    JSON.stringify(
      count((m) => m.kind),
      null,
      1,
    ),
  );
  console.log('commonest errors:');
  for (const [message, n] of Object.entries(messages)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)) {
    console.log(`  ${String(n).padStart(6)}  ${message}`);
  }
  for (const [i, o] of failures)
    console.log(`FAILURE ${o.outcome} #${i} ${JSON.stringify(mutations[i])}: ${o.detail}`);
  if (jsonPath) {
    await writeFile(
      jsonPath,
      `${JSON.stringify({ runs, seed, legacy, totals, byFile: count((m) => m.file), byKind: count((m) => m.kind), messages, failures }, null, 2)}\n`,
    );
  }
  await rm(root, { recursive: true, force: true });
  process.exitCode = failures.length > 0 ? 1 : 0;
}
