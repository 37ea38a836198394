/**
 * A checkpoint evaluated on a task (Node; what `titans eval <task>` runs): accuracy by context
 * length for the generated tasks, by prompt length for your own JSON Lines; results.json with
 * every example's prediction, and accuracy.svg.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_TEXT_BYTES } from '../data/corpus.js';
import { dispose, Rng } from '../engine/index.js';
import { type ExampleRecord, evaluateTask } from '../eval/longcontext.js';
import type { Task, TaskExample } from '../eval/tasks/types.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readRegularFile } from '../io/fs.js';
import { checkpointTokenizer, type LoadModelOptions, loadModelCheckpoint } from '../io/model-checkpoint.js';
import { countParameters } from '../models/model.js';
import { stderrSink } from '../report/node-sink.js';
import { Progress } from '../report/progress.js';
import { accuracyPlot, formatLength, markdownTable } from './report.js';
import { type ExperimentReport, loadTask, shallowNeedles, type TaskOptions } from './spec.js';

export interface EvaluateCheckpointOptions extends TaskOptions {
  /** A checkpoint directory (config.json, model.safetensors, tokenizer.json). */
  checkpoint: string;
  lengths: number[];
  examples: number;
  seed: number;
  /** Where results.json and accuracy.svg go. */
  out: string;
  /** JSON Lines of {context, question, answer} (the custom task). */
  data?: string;
  /** Needles only at depths 0..maxDepth of the context. */
  maxDepth?: number;
  /** How the checkpoint is loaded (non-finite weights allowed, memory limit). */
  load?: LoadModelOptions;
}

/**
 * Evaluates a checkpoint on `taskName` (niah1 … babilong-qa2, or custom with `data`) and writes
 * results.json (the accuracies, the options and every example's prediction) and accuracy.svg to
 * `out`. Returns the table to print.
 *
 * @example
 * const { table } = await evaluateCheckpoint('niah1', { checkpoint: 'models/passkey-mag', lengths: [1024], examples: 50, seed: 0, out: 'results/eval' });
 */
export async function evaluateCheckpoint(
  taskName: string,
  o: EvaluateCheckpointOptions,
): Promise<{ table: string; files: string[] }> {
  const custom = taskName === 'custom';
  let task: Task;
  let lengths = o.lengths;
  let examples = o.examples;
  if (custom) {
    if (!o.data) throw new Error('eval custom needs --data file.jsonl');
    const { parseCustomJsonl } = await import('../eval/tasks/custom.js');
    const own = parseCustomJsonl(await readRegularFile(o.data, { maxBytes: MAX_TEXT_BYTES }), o.data);
    task = fileTask(o.data, own);
    // Each example is as long as the file makes it: one pass over the file, "length" unused.
    lengths = [0];
    examples = own.length;
  } else {
    task = await loadTask(taskName, {
      ...(o.digits === undefined ? {} : { digits: o.digits }),
      ...(o.cue === undefined ? {} : { cue: o.cue }),
      ...(o.noise === undefined ? {} : { noise: o.noise }),
      ...(o.layout === undefined ? {} : { layout: o.layout }),
    });
  }
  if (o.maxDepth !== undefined) {
    if (task.placement === 'own')
      throw new Error(`--max-depth does not apply to ${taskName} (it places its facts itself, not by depth)`);
    task = shallowNeedles(task, o.maxDepth);
  }
  const checkpoint = await loadModelCheckpoint(o.checkpoint, o.load);
  const { config, params } = checkpoint;
  const tok = checkpointTokenizer(checkpoint, o.checkpoint);
  const model = { name: config.variant, variant: config.variant, parameters: countParameters(params) };
  const progress = new Progress({ total: lengths.length * examples, label: 'eval', sink: stderrSink() });
  let done = 0;
  const predictions: ExampleRecord[] = [];
  const evaluation = await evaluateTask(params, config, tok, task, {
    lengths,
    examples,
    rng: new Rng(o.seed),
    onProgress: () => progress.update(++done),
    onExample: (record) => predictions.push(record),
  }).finally(() => {
    progress.finish();
    dispose(params);
  });
  const report: ExperimentReport = custom
    ? byPromptLength(task, model, predictions)
    : oneModelReport(
        task.name,
        task.chance,
        model,
        lengths,
        evaluation.results.map((r) => r.accuracy),
      );
  await mkdir(o.out, { recursive: true });
  const results = join(o.out, 'results.json');
  const plot = join(o.out, 'accuracy.svg');
  await writeFileAtomic(
    results,
    `${JSON.stringify(
      {
        ...evaluation,
        chance: Number.isFinite(evaluation.chance) ? evaluation.chance : null,
        ...(custom ? { byPromptLength: report.models[0]!.accuracy } : {}),
        checkpoint: o.checkpoint,
        seed: o.seed,
        digits: o.digits ?? null,
        cue: o.cue ?? null,
        noise: o.noise ?? null,
        layout: o.layout ?? null,
        maxDepth: o.maxDepth ?? null,
        predictions,
      },
      null,
      2,
    )}\n`,
  );
  await writeFileAtomic(plot, accuracyPlot(report, custom ? 'prompt length (tokens, up to)' : undefined));
  const table = custom ? customTable(report, predictions) : markdownTable(report);
  return { table, files: [results, plot] };
}

/** The examples of a JSON Lines file as a task: one pass over them, in order; chance unknown. */
function fileTask(source: string, examples: readonly TaskExample[]): Task {
  let next = 0;
  return {
    name: 'custom',
    description: `examples from ${source}`,
    chance: Number.NaN,
    placement: 'own',
    example: () => examples[next++ % examples.length]!,
  };
}

/** The smallest power of two ≥ n (at least 16): the prompt-length bucket of an example. */
function bucketOf(n: number): number {
  return Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
}

/** Custom examples grouped by prompt length (buckets up to a power of two), as a one-model report. */
function byPromptLength(
  task: Task,
  model: ModelSummary,
  records: readonly ExampleRecord[],
): ExperimentReport {
  const buckets = new Map<number, number[]>();
  for (const r of records) {
    const b = bucketOf(r.promptTokens);
    buckets.set(b, [...(buckets.get(b) ?? []), r.score]);
  }
  const lengths = [...buckets.keys()].sort((a, b) => a - b);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return oneModelReport(
    task.name,
    Number.NaN,
    model,
    lengths,
    lengths.map((l) => mean(buckets.get(l)!)),
  );
}

type ModelSummary = Pick<ExperimentReport['models'][number], 'name' | 'variant' | 'parameters'>;

/** A report of one evaluated (not trained) model: accuracy[i] at lengths[i]. */
function oneModelReport(
  task: string,
  chance: number,
  model: ModelSummary,
  lengths: number[],
  accuracy: number[],
): ExperimentReport {
  return {
    task,
    chance,
    lengths,
    models: [
      {
        ...model,
        trainSeconds: 0,
        tokensPerSecond: 0,
        finalLoss: Number.NaN,
        accuracy: Object.fromEntries(lengths.map((l, i) => [String(l), accuracy[i]!])),
      },
    ],
  };
}

/** The custom table: overall accuracy and, per prompt-length bucket, accuracy (examples). */
function customTable(report: ExperimentReport, records: readonly ExampleRecord[]): string {
  const m = report.models[0]!;
  const overall = records.reduce((a, r) => a + r.score, 0) / Math.max(1, records.length);
  const counts = new Map<number, number>();
  for (const r of records)
    counts.set(bucketOf(r.promptTokens), (counts.get(bucketOf(r.promptTokens)) ?? 0) + 1);
  const parts = report.lengths.map(
    (l) => `≤ ${formatLength(l)}: ${m.accuracy[String(l)]!.toFixed(2)} (${counts.get(l)})`,
  );
  return [
    '| model | params | examples | accuracy | by prompt length (tokens): accuracy (examples) |',
    '|---|---|---|---|---|',
    `| ${m.name} | ${(m.parameters / 1000).toFixed(0)}k | ${records.length} | ${overall.toFixed(2)} | ${parts.join(' · ')} |`,
  ].join('\n');
}
