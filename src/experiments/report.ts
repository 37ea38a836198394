/**
 * An experiment's report (browser-safe text): the markdown table (a row per model, a column per
 * context length), report.md around it, and the accuracy-vs-length chart.
 */
import type { Task } from '../eval/tasks/types.js';
import { lineChartSvg } from '../report/plot.js';
import type { ExperimentReport, ExperimentSpec } from './spec.js';

/** 1024 → '1k', 1000 → '1000'. */
export function formatLength(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}k` : String(n);
}

/**
 * The results as a markdown table: a row per model, a column per context length, and a chance
 * row when the task has a known chance.
 * @example markdownTable(report); // '| model | params | 256 | 512 | 1k |\n|---|---|…'
 */
export function markdownTable(report: ExperimentReport): string {
  const head = `| model | params | ${report.lengths.map((l) => formatLength(l)).join(' | ')} |`;
  const rule = `|---|---|${report.lengths.map(() => '---').join('|')}|`;
  const rows = report.models.map(
    (m) =>
      `| ${m.name} | ${(m.parameters / 1000).toFixed(0)}k | ${report.lengths.map((l) => (m.accuracy[String(l)] ?? Number.NaN).toFixed(2)).join(' | ')} |`,
  );
  const chance = Number.isFinite(report.chance)
    ? [`| chance | | ${report.lengths.map(() => report.chance.toFixed(2)).join(' | ')} |`]
    : [];
  return [head, rule, ...rows, ...chance].join('\n');
}

/** Where the report says the needles are: beyond the window, or placed by the task itself. */
function placementSentence(task: Task, spec: ExperimentSpec): string {
  if (task.placement === 'own')
    return 'The task places its facts itself, not by depth, so some may lie within the attention window.';
  return `Needles sit at depths 0–${spec.maxNeedleDepth.toFixed(2)} of the context: at length L at least ${(1 - spec.maxNeedleDepth).toFixed(2)}·L tokens before the question (${Math.floor((1 - spec.maxNeedleDepth) * spec.trainLength)} at the training length), beyond what the sliding-window layers can reach (layers × window).`;
}

/** report.md: the task, the table, what is still pending, timings, the chart and the command. */
export function markdownReport(
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
export function pendingModels(report: ExperimentReport, spec: ExperimentSpec): string[] {
  return Object.keys(spec.models).filter((m) => !report.models.some((r) => r.name === m));
}

function pendingLine(report: ExperimentReport, spec: ExperimentSpec): string {
  const pending = pendingModels(report, spec);
  return pending.length > 0 ? `\nNot trained yet: ${pending.join(', ')}.\n` : '';
}

/**
 * accuracy.svg: a line per model over the context lengths (log x), chance as a dashed line.
 * @example await writeFile('accuracy.svg', accuracyPlot(report));
 */
export function accuracyPlot(report: ExperimentReport, xLabel = 'context length (tokens)'): string {
  return lineChartSvg(
    report.models.map((m) => ({
      name: m.name,
      points: report.lengths.map((l) => [l, m.accuracy[String(l)] ?? Number.NaN] as const),
    })),
    {
      title: `${report.task}: accuracy vs context length`,
      xLabel,
      yLabel: 'accuracy',
      logX: true,
      yMin: 0,
      yMax: 1,
      horizontalLines: Number.isFinite(report.chance) ? [{ y: report.chance, label: 'chance' }] : [],
    },
  );
}
