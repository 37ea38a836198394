/**
 * Task experiments (Node): train several models on a long-context task at one length, evaluate
 * them at that length and beyond, and write a report — the shape of the paper's Table 2.
 *
 * An experiment folder holds experiment.json (everything needed to repeat it: task, models,
 * sizes, steps, seed), one folder per model (checkpoint/, result.json), results.json, report.md
 * and accuracy.svg. Re-running the same command resumes: finished models are skipped, a model
 * whose training was interrupted continues from its last checkpoint. `only` trains a subset now, so
 * that several processes can share one experiment folder (each writes the report of the models
 * finished so far; the last one to finish writes the whole table).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { dispose, Rng } from '../engine/index.js';
import { evaluateTask, taskBatchSource } from '../eval/longcontext.js';
import type { Task } from '../eval/tasks/types.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  loadModelCheckpoint,
  loadTrainingCheckpoint,
  saveTrainingCheckpoint,
} from '../io/model-checkpoint.js';
import {
  type ModelVariant,
  resolveConfig,
  type TitansConfig,
  type TitansConfigInput,
} from '../models/config.js';
import { countParameters, initModel } from '../models/model.js';
import { stderrSink } from '../report/node-sink.js';
import { lineChartSvg } from '../report/plot.js';
import { Progress } from '../report/progress.js';
import { byteTokenizer } from '../tokenizer/tokenizer.js';
import {
  initialTrainerState,
  resolveTrainOptions,
  type TrainerState,
  type TrainOptions,
  trainLanguageModel,
} from '../train/trainer.js';

/** Everything that defines an experiment; saved as experiment.json. */
export interface ExperimentSpec {
  /** Task name (see taskByName) and its options, for the record. */
  task: string;
  taskOptions: Record<string, unknown>;
  /** Model name → config (without vocabSize; the byte tokenizer's 256 is used). */
  models: Record<string, Omit<TitansConfigInput, 'vocabSize'>>;
  /** Training sequence length (the task's prompt + answer fill it). */
  trainLength: number;
  /** Context lengths to evaluate at. */
  evalLengths: number[];
  /** Examples per evaluation length. */
  examples: number;
  train: Partial<TrainOptions>;
  seed: number;
  /** Needles are placed at depths in [0, maxNeedleDepth] of the context (keeps them out of the window). */
  maxNeedleDepth: number;
}

export interface ModelResult {
  name: string;
  variant: ModelVariant;
  parameters: number;
  /** Wall-clock seconds of training (of the last session, if it was resumed). */
  trainSeconds: number;
  /** Wall-clock seconds of the evaluation at every length. */
  evalSeconds?: number;
  tokensPerSecond: number;
  finalLoss: number;
  accuracy: Record<string, number>;
}

export interface ExperimentReport {
  task: string;
  chance: number;
  lengths: number[];
  models: ModelResult[];
}

/** A task whose needles sit at uniform depths in [0, maxDepth] (so that they lie beyond the window). */
export function shallowNeedles(task: Task, maxDepth: number): Task {
  return {
    ...task,
    example: (rng, length, options) =>
      task.example(rng, length, { needleDepth: options?.needleDepth ?? rng.next() * maxDepth }),
  };
}

/**
 * Runs (or resumes) an experiment in `dir`. `task` must be the generator `spec.task` names.
 * @example await runExperiment('results/niah', spec, passkeyTask({ digits: 1 }));
 */
export async function runExperiment(
  dir: string,
  spec: ExperimentSpec,
  task: Task,
  only?: readonly string[],
  options: { quietReport?: boolean; command?: string } = {},
): Promise<ExperimentReport> {
  await openExperimentDir(dir, spec, only);
  const placed = shallowNeedles(task, spec.maxNeedleDepth);
  const results: ModelResult[] = [];
  for (const [name, modelInput] of Object.entries(spec.models)) {
    const modelDir = join(dir, name);
    const resultPath = join(modelDir, 'result.json');
    if (existsSync(resultPath)) {
      results.push(JSON.parse(await readFile(resultPath, 'utf8')) as ModelResult);
      if (!options.quietReport) process.stderr.write(`${name}: done before (${resultPath})\n`);
      continue;
    }
    if (only && !only.includes(name)) continue; // another process's, or a later run's
    results.push(
      await trainAndEvaluate(
        name,
        modelDir,
        { ...modelInput, vocabSize: 256 } as TitansConfigInput,
        spec,
        placed,
      ),
    );
    await writeFileAtomic(resultPath, `${JSON.stringify(results[results.length - 1], null, 2)}\n`);
  }
  const report: ExperimentReport = {
    task: task.name,
    chance: task.chance,
    lengths: spec.evalLengths,
    models: results,
  };
  await writeFileAtomic(join(dir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(join(dir, 'report.md'), markdownReport(report, spec, task, options.command));
  await writeFileAtomic(join(dir, 'accuracy.svg'), accuracyPlot(report));
  return report;
}

/** Checks `only` against the spec, and creates `dir` with experiment.json (or checks it matches). */
async function openExperimentDir(
  dir: string,
  spec: ExperimentSpec,
  only: readonly string[] | undefined,
): Promise<void> {
  for (const m of only ?? [])
    if (!(m in spec.models))
      throw new Error(`unknown model '${m}' (models: ${Object.keys(spec.models).join(', ')})`);
  await mkdir(dir, { recursive: true });
  const specPath = join(dir, 'experiment.json');
  if (existsSync(specPath)) {
    const saved = await readFile(specPath, 'utf8');
    if (saved.trim() !== JSON.stringify(spec, null, 2).trim()) {
      throw new Error(`${specPath} describes a different experiment; choose another --out or delete it`);
    }
  } else await writeFileAtomic(specPath, `${JSON.stringify(spec, null, 2)}\n`);
}

/**
 * Runs (or resumes) an experiment with `jobs` models training at once. With more than one job each
 * model trains in a worker thread with a single-threaded wasm backend (one model per core), and
 * the report is written once every model is done; with one, everything runs in this thread.
 * @example await runExperimentJobs('results/demo', spec, 2);
 */
export async function runExperimentJobs(
  dir: string,
  spec: ExperimentSpec,
  jobs: number,
  only?: readonly string[],
  command?: string,
): Promise<ExperimentReport> {
  const options = command ? { command } : {};
  if (jobs <= 1) return runExperiment(dir, spec, await taskOfSpec(spec), only, options);
  await openExperimentDir(dir, spec, only);
  const queue = (only ?? Object.keys(spec.models)).filter(
    (name) => !existsSync(join(dir, name, 'result.json')),
  );
  const runOne = (name: string) =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(new URL('./experiment-worker.js', import.meta.url), {
        workerData: { dir, spec, name },
      });
      worker.once('error', (e) => reject(new Error(`${name}: ${e instanceof Error ? e.message : e}`)));
      worker.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`${name}: training worker exited with code ${code}`)),
      );
    });
  const lanes = Array.from({ length: Math.max(1, Math.min(jobs, queue.length)) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await runOne(name);
  });
  await Promise.all(lanes);
  return runExperiment(dir, spec, await taskOfSpec(spec), only ?? [], { quietReport: true, ...options });
}

/** The task an experiment names (`spec.task` with `spec.taskOptions`). */
export function taskOfSpec(spec: ExperimentSpec): Promise<Task> {
  return loadTask(spec.task, spec.taskOptions as Parameters<typeof loadTask>[1]);
}

/**
 * A `titans …` command line (this process's by default), quoted for a POSIX shell where needed.
 * @example commandLine(['experiment', 'ablation', '--models', 'no conv']); // "titans experiment ablation --models 'no conv'"
 */
export function commandLine(argv: readonly string[] = process.argv.slice(2)): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['titans', ...argv.map(quote)].join(' ');
}

/** The default number of models to train at once: one per core, at most `models`. */
export function defaultJobs(models: number): number {
  return Math.max(1, Math.min(models, availableParallelism()));
}

async function trainAndEvaluate(
  name: string,
  dir: string,
  input: TitansConfigInput,
  spec: ExperimentSpec,
  task: Task,
): Promise<ModelResult> {
  const ckptDir = join(dir, 'checkpoint');
  const options = resolveTrainOptions({
    evalEvery: 0,
    ...spec.train,
    seqLen: spec.trainLength,
    seed: spec.seed,
  });
  let config: TitansConfig;
  let state: TrainerState;
  if (existsSync(join(ckptDir, 'config.json'))) {
    ({ config, state } = await loadTrainingCheckpoint(ckptDir));
    process.stderr.write(`${name}: resuming at step ${state.step}\n`);
  } else {
    config = resolveConfig(input);
    state = initialTrainerState(initModel(config, new Rng(spec.seed)), options);
  }
  const source = taskBatchSource(task, byteTokenizer());
  const progress = new Progress({ total: options.steps, label: `${name} train`, sink: stderrSink() });
  const started = performance.now();
  const startStep = state.step;
  const save = async (s: TrainerState) => {
    await saveTrainingCheckpoint(ckptDir, { config, state: s, tokenizer: byteTokenizer() });
  };
  const final = await trainLanguageModel(config, source, options, state, {
    onStep: (r) => progress.update(r.step, { loss: r.loss, 'tok/s': Math.round(r.tokensPerSecond) }),
    onBadStep: (step, reason) =>
      progress.log(`warning: ${name} step ${step}: non-finite ${reason}; not applied`),
    checkpoint: save,
  });
  progress.finish();
  const trainSeconds = (performance.now() - started) / 1000;
  const evalProgress = new Progress({
    total: spec.evalLengths.length * spec.examples,
    label: `${name} eval`,
    sink: stderrSink(),
  });
  let done = 0;
  const evaluation = await evaluateTask(final.params, config, byteTokenizer(), task, {
    lengths: spec.evalLengths,
    examples: spec.examples,
    rng: new Rng(spec.seed + 1000),
    onProgress: () => evalProgress.update(++done),
  });
  evalProgress.finish();
  const evalSeconds = (performance.now() - started) / 1000 - trainSeconds;
  const recent = final.history.slice(-20);
  const result: ModelResult = {
    name,
    variant: config.variant,
    parameters: countParameters(final.params),
    trainSeconds,
    evalSeconds,
    tokensPerSecond:
      ((final.step - startStep) * options.batchSize * options.seqLen) / Math.max(trainSeconds, 1e-9),
    finalLoss: recent.reduce((a, r) => a + r.loss, 0) / Math.max(1, recent.length),
    accuracy: Object.fromEntries(evaluation.results.map((r) => [String(r.length), r.accuracy])),
  };
  dispose([final.params, final.optimizer]);
  return result;
}

/** The results as a markdown table: a row per model, a column per context length. */
export function markdownTable(report: ExperimentReport): string {
  const head = `| model | params | ${report.lengths.map((l) => formatLength(l)).join(' | ')} |`;
  const rule = `|---|---|${report.lengths.map(() => '---').join('|')}|`;
  const rows = report.models.map(
    (m) =>
      `| ${m.name} | ${(m.parameters / 1000).toFixed(0)}k | ${report.lengths.map((l) => (m.accuracy[String(l)] ?? Number.NaN).toFixed(2)).join(' | ')} |`,
  );
  return [
    head,
    rule,
    ...rows,
    `| chance | | ${report.lengths.map(() => report.chance.toFixed(2)).join(' | ')} |`,
  ].join('\n');
}

function formatLength(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}k` : String(n);
}

/** Where the report says the needles are: beyond the window, or placed by the task itself. */
function placementSentence(task: Task, spec: ExperimentSpec): string {
  if (task.placement === 'own')
    return 'The task places its facts itself, not by depth, so some may lie within the attention window.';
  return `Needles sit at depths 0–${spec.maxNeedleDepth.toFixed(2)} of the context: at length L at least ${(1 - spec.maxNeedleDepth).toFixed(2)}·L tokens before the question (${Math.floor((1 - spec.maxNeedleDepth) * spec.trainLength)} at the training length), beyond what the sliding-window layers can reach (layers × window).`;
}

function markdownReport(
  report: ExperimentReport,
  spec: ExperimentSpec,
  task: Task,
  command: string | undefined,
): string {
  const timing = report.models
    .map(
      (m) =>
        `| ${m.name} | ${m.variant} | ${m.trainSeconds.toFixed(0)} s | ${m.evalSeconds === undefined ? '–' : `${m.evalSeconds.toFixed(0)} s`} | ${m.tokensPerSecond.toFixed(0)} | ${m.finalLoss.toFixed(3)} |`,
    )
    .join('\n');
  return `# ${task.name}: accuracy by context length

${task.description}. Trained at length ${spec.trainLength} (${spec.train.steps ?? '?'} steps of ${spec.train.batchSize ?? '?'} sequences, peak learning rate ${spec.train.lr ?? '?'}, seed ${spec.seed}); evaluated on ${spec.examples} examples per length. ${placementSentence(task, spec)} Chance: ${report.chance}.

${markdownTable(report)}
${pendingLine(report, spec)}
| model | variant | training time | evaluation time | training tokens/s | final loss (answer tokens) |
|---|---|---|---|---|---|
${timing}

![accuracy](accuracy.svg)

Repeat: ${command ? `\`${command}\`` : 'the command that wrote this folder'} (experiment.json holds every setting; the same command resumes an unfinished run).
`;
}

/** The models of `spec` that `report` has no result for yet. */
function pendingModels(report: ExperimentReport, spec: ExperimentSpec): string[] {
  return Object.keys(spec.models).filter((m) => !report.models.some((r) => r.name === m));
}

function pendingLine(report: ExperimentReport, spec: ExperimentSpec): string {
  const pending = pendingModels(report, spec);
  return pending.length > 0 ? `\nNot trained yet: ${pending.join(', ')}.\n` : '';
}

function accuracyPlot(report: ExperimentReport): string {
  return lineChartSvg(
    report.models.map((m) => ({
      name: m.name,
      points: report.lengths.map((l) => [l, m.accuracy[String(l)] ?? Number.NaN] as const),
    })),
    {
      title: `${report.task}: accuracy vs context length`,
      xLabel: 'context length (tokens)',
      yLabel: 'accuracy',
      logX: true,
      yMin: 0,
      yMax: 1,
      horizontalLines: [{ y: report.chance, label: 'chance' }],
    },
  );
}

// ---- commands ------------------------------------------------------------------------------

/** The small model every experiment trains (only the variant differs): d = 64, 2 layers, window 32. */
export const EXPERIMENT_MODEL: Omit<TitansConfigInput, 'vocabSize' | 'variant'> = {
  dModel: 64,
  layers: 2,
  heads: 4,
  window: 32,
  segmentSize: 32,
  persistentTokens: 4,
  memory: { heads: 2, headDim: 32, expansion: 2, chunkSize: 16 },
};

/** Loads the haystack corpus and builds a task by name. */
export async function loadTask(
  name: string,
  options: { digits?: number; cue?: 'question' | 'recall'; layout?: 'power-law' | 'block' } = {},
): Promise<Task> {
  const { loadText } = await import('../data/corpus.js');
  const tasks = await import('../eval/tasks/index.js');
  const { layout, ...passkey } = options;
  if (name === 'niah1' && (passkey.digits !== undefined || passkey.cue !== undefined))
    return tasks.passkeyTask(passkey);
  if (name === 'mqar' && layout !== undefined) return tasks.mqarTask({ layout });
  const needsText = name !== 'niah1' && name !== 'mqar';
  const haystack = tasks.Haystack.fromText(
    needsText ? (await loadText('builtin:sotu')).text : 'unused haystack text',
  );
  return tasks.taskByName(name, haystack);
}

/** `titans experiment <name>`: the models of the paper's Table 2 (or the Table 5 ablations) on one task. */
export async function experimentCommand(
  name: string,
  o: {
    out?: string;
    steps: number;
    batchSize: number;
    trainLength?: number;
    examples: number;
    seed: number;
    models?: string[];
    digits?: number;
    cue?: 'question' | 'recall';
    lr: number;
    jobs?: number;
  },
): Promise<void> {
  const taskName = { niah: 'niah1', mqar: 'mqar', babilong: 'babilong-qa1', ablation: 'niah1' }[name];
  if (!taskName)
    throw new Error(`unknown experiment '${name}' (experiments: niah, mqar, babilong, ablation)`);
  const variants: Record<string, Omit<TitansConfigInput, 'vocabSize'>> = name === 'ablation'
    ? {
        lmm: { ...EXPERIMENT_MODEL, variant: 'lmm' },
        'linear memory': {
          ...EXPERIMENT_MODEL,
          variant: 'lmm',
          memory: { ...EXPERIMENT_MODEL.memory, depth: 1 },
        },
        'no momentum': {
          ...EXPERIMENT_MODEL,
          variant: 'lmm',
          memory: { ...EXPERIMENT_MODEL.memory, momentum: false },
        },
        'no forgetting': {
          ...EXPERIMENT_MODEL,
          variant: 'lmm',
          memory: { ...EXPERIMENT_MODEL.memory, forgetting: false },
        },
        'no conv': {
          ...EXPERIMENT_MODEL,
          variant: 'lmm',
          memory: { ...EXPERIMENT_MODEL.memory, convKernel: 0 },
        },
        'no persistent memory': { ...EXPERIMENT_MODEL, variant: 'lmm', persistentTokens: 0 },
      }
    : Object.fromEntries(
        (['mac', 'mag', 'mal', 'lmm', 'swa', 'transformer', 'deltanet'] as const).map((v) => [
          v,
          { ...EXPERIMENT_MODEL, variant: v },
        ]),
      );
  // The pass key is sized to the budget (see the README): 1 digit, recalled from its own words.
  const passkey = taskName === 'niah1';
  if (!passkey && (o.digits !== undefined || o.cue !== undefined))
    throw new Error('--digits and --cue apply to the pass-key experiments (niah, ablation) only');
  const taskOptions = passkey ? { digits: o.digits ?? 1, cue: o.cue ?? 'recall' } : {};
  // A bAbI story of up to 10 facts takes ≈ 370 chars, so BABILong trains at 512 by default.
  const trainLength = o.trainLength ?? (name === 'babilong' ? 512 : 256);
  const spec: ExperimentSpec = {
    task: taskName,
    taskOptions,
    models: variants,
    trainLength,
    evalLengths: [trainLength, 2 * trainLength, 4 * trainLength],
    examples: o.examples,
    train: {
      steps: o.steps,
      batchSize: o.batchSize,
      lr: o.lr,
      warmupSteps: Math.min(50, o.steps),
      checkpointEvery: Math.max(1, Math.floor(o.steps / 4)),
    },
    seed: o.seed,
    maxNeedleDepth: maxDepthBeyondWindow(trainLength, EXPERIMENT_MODEL),
  };
  const out = o.out ?? join('results', `experiment-${name}`);
  const report = await runExperimentJobs(out, spec, o.jobs ?? 1, o.models, commandLine());
  const pending = pendingModels(report, spec);
  if (pending.length > 0)
    console.log(`\nnot trained yet: ${pending.join(', ')} (run again without --models, or with them)`);
  console.log(`\n${markdownTable(report)}\n\nwrote ${out}/report.md, accuracy.svg, results.json`);
}

/**
 * The deepest needle position (as a fraction of a context of `length`) that keeps every needle
 * outside what the attention layers can see from the answer: layers · window tokens back, plus the
 * question (≈ 40 tokens) — so only a memory can carry it.
 */
export function maxDepthBeyondWindow(length: number, model: { layers?: number; window?: number }): number {
  const reach = (model.layers ?? 2) * (model.window ?? 64) + 48;
  return Math.max(0, Math.min(0.9, (length - reach) / length - 0.05));
}

/** `titans eval <task> --checkpoint …`: accuracy table by context length, JSON and a plot. */
export async function evalTaskCommand(
  taskName: string,
  o: {
    checkpoint: string;
    lengths: number[];
    examples: number;
    seed: number;
    out?: string;
    data?: string;
    threads?: number;
    digits?: number;
    cue?: 'question' | 'recall';
    layout?: 'power-law' | 'block';
    maxDepth?: number;
  },
): Promise<void> {
  const { checkpointDir, useThreads } = await import('./train.js');
  useThreads(o.threads);
  const { config, params, tokenizer } = await loadModelCheckpoint(checkpointDir(o.checkpoint));
  const tok = tokenizer ?? byteTokenizer();
  let task: Task;
  if (taskName === 'custom') {
    if (!o.data) throw new Error('eval custom needs --data file.jsonl');
    const { parseCustomJsonl } = await import('../eval/tasks/custom.js');
    const examples = parseCustomJsonl(await readFile(o.data, 'utf8'), o.data);
    if (examples.length === 0) throw new Error(`${o.data}: no examples`);
    let next = 0;
    task = {
      name: 'custom',
      description: `examples from ${o.data}`,
      chance: 0,
      placement: 'own',
      example: () => examples[next++ % examples.length]!,
    };
    o = { ...o, lengths: [0], examples: examples.length };
  } else
    task = await loadTask(taskName, {
      ...(o.digits === undefined ? {} : { digits: o.digits }),
      ...(o.cue === undefined ? {} : { cue: o.cue }),
      ...(o.layout === undefined ? {} : { layout: o.layout }),
    });
  if (o.maxDepth !== undefined) {
    if (task.placement === 'own')
      throw new Error(`--max-depth does not apply to ${taskName} (it places its facts itself, not by depth)`);
    task = shallowNeedles(task, o.maxDepth);
  }
  const progress = new Progress({ total: o.lengths.length * o.examples, label: 'eval', sink: stderrSink() });
  let done = 0;
  const evaluation = await evaluateTask(params, config, tok, task, {
    lengths: o.lengths,
    examples: o.examples,
    rng: new Rng(o.seed),
    onProgress: () => progress.update(++done),
  });
  progress.finish();
  const report: ExperimentReport = {
    task: task.name,
    chance: task.chance,
    lengths: o.lengths,
    models: [
      {
        name: config.variant,
        variant: config.variant,
        parameters: countParameters(params),
        trainSeconds: 0,
        tokensPerSecond: 0,
        finalLoss: Number.NaN,
        accuracy: Object.fromEntries(evaluation.results.map((r) => [String(r.length), r.accuracy])),
      },
    ],
  };
  console.log(`\n${markdownTable(report)}\n`);
  const out = o.out ?? join('results', `eval-${task.name}`);
  await mkdir(out, { recursive: true });
  await writeFileAtomic(
    join(out, 'results.json'),
    `${JSON.stringify(
      {
        ...evaluation,
        checkpoint: o.checkpoint,
        seed: o.seed,
        digits: o.digits ?? null,
        cue: o.cue ?? null,
        layout: o.layout ?? null,
        maxDepth: o.maxDepth ?? null,
      },
      null,
      2,
    )}\n`,
  );
  await writeFileAtomic(join(out, 'accuracy.svg'), accuracyPlot(report));
  console.log(`wrote ${out}/results.json and accuracy.svg`);
  dispose(params);
}

/**
 * The main demo (`npm start`): a Titans model (MAG) and the SWA baseline trained on a 1-digit
 * pass key whose needle lies beyond the attention window, then evaluated at 1×, 2× and 4× the
 * training length. Writes results/demo/ (report.md, accuracy.svg, results.json, summary.json).
 */
export async function demoCommand(o: {
  out: string;
  steps: number;
  examples: number;
  batchSize: number;
  variant: 'mag' | 'mac';
  cue: 'question' | 'recall';
  lr: number;
  threads?: number;
  jobs?: number;
}): Promise<void> {
  const { useThreads } = await import('./train.js');
  useThreads(o.threads);
  const started = performance.now();
  const trainLength = 256;
  const spec: ExperimentSpec = {
    task: 'niah1',
    taskOptions: { digits: 1, cue: o.cue },
    models: {
      [o.variant]: { ...EXPERIMENT_MODEL, variant: o.variant },
      swa: { ...EXPERIMENT_MODEL, variant: 'swa' },
    },
    trainLength,
    evalLengths: [trainLength, 2 * trainLength, 4 * trainLength],
    examples: o.examples,
    train: {
      steps: o.steps,
      batchSize: o.batchSize,
      lr: o.lr,
      warmupSteps: 50,
      checkpointEvery: Math.max(1, Math.floor(o.steps / 4)),
    },
    seed: 0,
    maxNeedleDepth: maxDepthBeyondWindow(trainLength, EXPERIMENT_MODEL),
  };
  console.log(
    `Titans demo: a 1-digit pass key hidden in filler text, always more than ${EXPERIMENT_MODEL.layers}×${EXPERIMENT_MODEL.window} tokens before the question — beyond what sliding-window attention can see. Training ${o.variant.toUpperCase()} (attention + neural memory) and SWA (attention only), ${o.steps} steps of ${o.batchSize} sequences each, then testing at ${spec.evalLengths.join(', ')} tokens.`,
  );
  const report = await runExperimentJobs(o.out, spec, o.jobs ?? defaultJobs(2), undefined, commandLine());
  const summary = {
    task: `niah1 (1-digit pass key, ${o.cue === 'recall' ? 'cue "The pass key is"' : "RULER's question"})`,
    chance: report.chance,
    lengths: report.lengths,
    accuracy: Object.fromEntries(report.models.map((m) => [m.name, m.accuracy])),
    seconds: (performance.now() - started) / 1000,
  };
  await writeFileAtomic(join(o.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`\n${markdownTable(report)}\n`);
  console.log(
    `accuracy = exact match of the pass key; chance = ${report.chance}. ${summary.seconds.toFixed(0)} s in all.`,
  );
  console.log(`wrote ${o.out}/summary.json, report.md and accuracy.svg`);
}
