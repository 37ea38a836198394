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
import { recoverCheckpoint } from '../io/checkpoint.js';
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from '../io/model-checkpoint.js';
import { resolveConfig, type TitansConfig, type TitansConfigInput } from '../models/config.js';
import { countParameters, initModel } from '../models/model.js';
import { stderrSink } from '../report/node-sink.js';
import { Progress } from '../report/progress.js';
import { byteTokenizer } from '../tokenizer/tokenizer.js';
import { recentLoss } from '../train/history.js';
import {
  initialTrainerState,
  resolveTrainOptions,
  type TrainerState,
  trainLanguageModel,
} from '../train/trainer.js';
import { accuracyPlot, markdownReport } from './report.js';
import {
  type ExperimentReport,
  type ExperimentSpec,
  type ModelResult,
  shallowNeedles,
  taskOfSpec,
} from './spec.js';

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
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
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
  await recoverCheckpoint(ckptDir); // a save interrupted by a crash, completed or undone
  if (existsSync(join(ckptDir, 'config.json'))) {
    ({ config, state } = await loadTrainingCheckpoint(ckptDir));
    process.stderr.write(`${name}: resuming at step ${state.step}\n`);
  } else {
    config = resolveConfig(input);
    state = initialTrainerState(initModel(config, new Rng(spec.seed)), options);
  }
  const source = taskBatchSource(task, byteTokenizer());
  const startStep = state.step;
  const progress = new Progress({
    total: options.steps,
    start: startStep,
    label: `${name} train`,
    sink: stderrSink(),
  });
  const started = performance.now();
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
  const result: ModelResult = {
    name,
    variant: config.variant,
    parameters: countParameters(final.params),
    trainSeconds,
    evalSeconds,
    tokensPerSecond:
      ((final.step - startStep) * options.batchSize * options.seqLen) / Math.max(trainSeconds, 1e-9),
    finalLoss: recentLoss(final.history, 20) ?? 0,
    accuracy: Object.fromEntries(evaluation.results.map((r) => [String(r.length), r.accuracy])),
  };
  dispose([final.params, final.optimizer]);
  return result;
}
