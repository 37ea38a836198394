/**
 * The memorisation table: recall versus N for depth 1 vs 2, with and without momentum and
 * forgetting. θ for each row is chosen on a separate validation seed (at the middle N) from a
 * small grid, so every configuration is shown at its best step size.
 */
import { type MemorizeOptions, memorizeRecall } from './memorize.js';

export interface MemorizeTableOptions {
  pairs?: number[];
  dim?: number;
  passes?: number;
  thetaGrid?: number[];
  seed?: number;
  /** Called after each row (progress). */
  onRow?: (row: MemorizeRow) => void;
}

export interface MemorizeRow {
  depth: number;
  momentum: boolean;
  forgetting: boolean;
  theta: number;
  /** recall[i] is the fraction recalled at pairs[i]. */
  recall: number[];
}

/**
 * Runs the table (each configuration's θ chosen on a validation seed first).
 * @example const table = await memorizeTable({ pairs: [16, 64] }); console.log(formatMemorizeTable(table));
 */
export async function memorizeTable(
  options: MemorizeTableOptions = {},
): Promise<{ pairs: number[]; rows: MemorizeRow[] }> {
  const pairs = options.pairs ?? [16, 32, 64, 128];
  const grid = options.thetaGrid ?? [0.02, 0.05, 0.1];
  const base: Partial<MemorizeOptions> = { dim: options.dim ?? 32, passes: options.passes ?? 16 };
  const seed = options.seed ?? 1;
  const validationN = pairs[Math.floor(pairs.length / 2)]!;
  const rows: MemorizeRow[] = [];
  for (const depth of [1, 2]) {
    for (const momentum of [false, true]) {
      for (const forgetting of [false, true]) {
        const settings = { ...base, depth, eta: momentum ? 0.5 : 0, alpha: forgetting ? 0.001 : 0 };
        let theta = grid[0]!;
        let best = -1;
        for (const candidate of grid) {
          const r = await memorizeRecall({
            ...settings,
            pairs: validationN,
            theta: candidate,
            seed: seed + 1000,
          });
          if (r > best) [best, theta] = [r, candidate];
        }
        const recall: number[] = [];
        for (const N of pairs) recall.push(await memorizeRecall({ ...settings, pairs: N, theta, seed }));
        const row = { depth, momentum, forgetting, theta, recall };
        rows.push(row);
        options.onRow?.(row);
      }
    }
  }
  return { pairs, rows };
}

/** The table as markdown. */
export function formatMemorizeTable(table: { pairs: number[]; rows: MemorizeRow[] }): string {
  const head = `| depth | momentum | forgetting | θ | ${table.pairs.map((n) => `N=${n}`).join(' | ')} |`;
  const rule = `|---|---|---|---|${table.pairs.map(() => '---').join('|')}|`;
  const lines = table.rows.map(
    (r) =>
      `| ${r.depth} | ${r.momentum ? 'η=0.5' : 'off'} | ${r.forgetting ? 'α=0.001' : 'off'} | ${r.theta} | ${r.recall.map((v) => v.toFixed(2)).join(' | ')} |`,
  );
  return [head, rule, ...lines].join('\n');
}
