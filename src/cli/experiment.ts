/**
 * `titans experiment`, `titans eval <task>` and `titans demo`: parse the options, call the
 * experiment runner (src/experiments/), print the table. The experiments themselves are files in
 * presets/experiments/.
 */
import { join } from 'node:path';
import { demoSpec, runDemo } from '../experiments/demo.js';
import { evaluateCheckpoint } from '../experiments/evaluate.js';
import { markdownTable, pendingModels } from '../experiments/report.js';
import { runExperimentJobs } from '../experiments/runner.js';
import { experimentSpec, loadExperimentPreset, type TaskOptions } from '../experiments/spec.js';
import { checkpointDir, loadOptions, useThreads } from './train.js';

/**
 * A `titans …` command line (this process's by default), quoted for a POSIX shell where needed.
 * @example commandLine(['experiment', 'ablation', '--models', 'no conv']); // "titans experiment ablation --models 'no conv'"
 */
export function commandLine(argv: readonly string[] = process.argv.slice(2)): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['titans', ...argv.map(quote)].join(' ');
}

/** `titans experiment <name>`: the models of the paper's Table 2 (or the Table 5 ablations) on one task. */
export async function experimentCommand(
  name: string,
  o: {
    out?: string;
    steps?: number;
    batchSize?: number;
    trainLength?: number;
    examples?: number;
    seed?: number;
    models?: string[];
    digits?: number;
    cue?: 'question' | 'recall';
    noise?: 'filler' | 'text' | 'mixed';
    lr?: number;
    threads?: number;
    jobs?: number;
  },
): Promise<void> {
  const preset = await loadExperimentPreset(name);
  const passkey = preset.task === 'niah1';
  if (!passkey && (o.digits !== undefined || o.cue !== undefined || o.noise !== undefined))
    throw new Error('--digits, --cue and --noise apply to the pass-key experiments (niah, ablation) only');
  useThreads(o.threads);
  const { models: only, ...overrides } = o;
  const spec = experimentSpec(preset, {
    ...overrides,
    taskOptions: {
      ...preset.taskOptions,
      ...(o.digits === undefined ? {} : { digits: o.digits }),
      ...(o.cue === undefined ? {} : { cue: o.cue }),
      // Only a non-default noise is recorded, so folders written before --noise existed resume.
      ...(o.noise === undefined || o.noise === 'filler' ? {} : { noise: o.noise }),
    },
  });
  const out = o.out ?? join('results', `experiment-${name}`);
  const report = await runExperimentJobs(out, spec, o.jobs ?? 1, only, commandLine());
  const pending = pendingModels(report, spec);
  if (pending.length > 0)
    console.log(`\nnot trained yet: ${pending.join(', ')} (run again without --models, or with them)`);
  console.log(`\n${markdownTable(report)}\n\nwrote ${out}/report.md, accuracy.svg, results.json`);
}

/** `titans eval <task> --checkpoint …`: accuracy table by context length, JSON and a plot. */
export async function evalTaskCommand(
  taskName: string,
  o: TaskOptions & {
    checkpoint: string;
    lengths: number[];
    examples: number;
    seed: number;
    out?: string;
    data?: string;
    threads?: number;
    maxDepth?: number;
    allowNonfinite?: boolean;
    maxMemory?: number;
  },
): Promise<void> {
  useThreads(o.threads);
  const out = o.out ?? join('results', `eval-${taskName === 'custom' ? 'custom' : taskName}`);
  const { table, files } = await evaluateCheckpoint(taskName, {
    ...o,
    checkpoint: await checkpointDir(o.checkpoint),
    load: loadOptions(o),
    out,
  });
  console.log(`\n${table}\n`);
  console.log(`wrote ${files.join(' and ')} (results.json lists every example's prediction)`);
}

/** `titans demo` (what `npm start` runs): MAG and SWA side by side on a pass key beyond the window. */
export async function demoCommand(o: {
  out: string;
  steps?: number;
  examples?: number;
  batchSize?: number;
  variant: 'mag' | 'mac';
  cue: 'question' | 'recall';
  lr?: number;
  threads?: number;
  jobs?: number;
}): Promise<void> {
  useThreads(o.threads);
  const spec = await demoSpec(o);
  const { layers, window } = spec.models.swa!;
  console.log(
    `Titans demo: a 1-digit pass key hidden in filler text, always more than ${layers}×${window} tokens before the question — beyond what sliding-window attention can see. Training ${o.variant.toUpperCase()} (attention + neural memory) and SWA (attention only), ${spec.train.steps} steps of ${spec.train.batchSize} sequences each, then testing at ${spec.evalLengths.join(', ')} tokens.`,
  );
  const { report, summary } = await runDemo({ ...o, command: commandLine() });
  console.log(`\n${markdownTable(report)}\n`);
  console.log(
    `accuracy = exact match of the pass key; chance = ${report.chance}. ${summary.seconds.toFixed(0)} s in all.`,
  );
  console.log(`wrote ${o.out}/summary.json, report.md and accuracy.svg`);
}
