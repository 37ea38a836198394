/**
 * The main demo (`npm start`, Node): a Titans model (MAG) and the SWA baseline trained on a 1-digit
 * pass key whose needle lies beyond the attention window, then evaluated at 1×, 2× and 4× the
 * training length. Writes report.md, accuracy.svg, results.json and summary.json.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { defaultJobs, runExperimentJobs } from './runner.js';
import { type ExperimentReport, type ExperimentSpec, experimentSpec, loadExperimentPreset } from './spec.js';

export interface DemoOptions {
  out: string;
  steps?: number;
  examples?: number;
  batchSize?: number;
  /** The Titans model trained beside SWA (default mag). */
  variant?: 'mag' | 'mac';
  cue?: 'question' | 'recall';
  lr?: number;
  /** Models trained at once, one core each (default: one per core, at most 2). */
  jobs?: number;
  /** The command line, for the report. */
  command?: string;
}

/** What summary.json holds. */
export interface DemoSummary {
  task: string;
  chance: number;
  lengths: number[];
  accuracy: Record<string, Record<string, number>>;
  seconds: number;
}

/** The demo's spec: presets/experiments/demo.json with the options over it. */
export async function demoSpec(o: DemoOptions): Promise<ExperimentSpec> {
  const preset = await loadExperimentPreset('demo');
  const variant = o.variant ?? 'mag';
  const { mag, swa } = preset.models;
  if (!mag || !swa) throw new Error('presets/experiments/demo.json: needs models "mag" and "swa"');
  return experimentSpec(preset, {
    ...(o.steps === undefined ? {} : { steps: o.steps }),
    ...(o.examples === undefined ? {} : { examples: o.examples }),
    ...(o.batchSize === undefined ? {} : { batchSize: o.batchSize }),
    ...(o.lr === undefined ? {} : { lr: o.lr }),
    taskOptions: { ...preset.taskOptions, ...(o.cue === undefined ? {} : { cue: o.cue }) },
    models: { [variant]: { ...mag, variant }, swa },
    warmupSteps: 50,
  });
}

/**
 * Runs (or resumes) the demo in `o.out` and writes summary.json beside the report.
 * @example const { report, summary } = await runDemo({ out: 'results/demo' });
 */
export async function runDemo(o: DemoOptions): Promise<{ report: ExperimentReport; summary: DemoSummary }> {
  const started = performance.now();
  const spec = await demoSpec(o);
  const report = await runExperimentJobs(o.out, spec, o.jobs ?? defaultJobs(2), undefined, o.command);
  const cue = (spec.taskOptions as { cue?: string }).cue;
  const summary: DemoSummary = {
    task: `niah1 (1-digit pass key, ${cue === 'recall' ? 'cue "The pass key is"' : "RULER's question"})`,
    chance: report.chance,
    lengths: report.lengths,
    accuracy: Object.fromEntries(report.models.map((m) => [m.name, m.accuracy])),
    seconds: (performance.now() - started) / 1000,
  };
  await writeFileAtomic(join(o.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return { report, summary };
}
