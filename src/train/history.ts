/**
 * The training log, bounded: however long a run, its stored history holds at most
 * `MAX_HISTORY_RECORDS` records, so trainer.json, loss.svg and the heap stay flat (the soak,
 * bench/soak.ts). `hooks.onStep` still sees every step's `StepRecord`; only what is kept is
 * summarised.
 *
 * Shape (state as data, saved as trainer.json's `history`):
 *   history: HistoryRecord[]   length ≤ MAX_HISTORY_RECORDS, ordered by step
 *   record i summarises `steps` consecutive applied updates, `firstStep`..`step`; a non-finite
 *   step is not applied (trainer.ts) and so not counted: step − firstStep + 1 ≥ steps.
 *   Σ steps = the updates applied so far (= the optimizer's step).
 *
 * Resolution is uniform over the run: every record but the newest holds W = history[0].steps
 * updates (W a power of two), the newest holds 1..W. Until the log first fills, W = 1 and every
 * update is its own record, exactly as `onStep` saw it. When it is full and its newest record
 * is complete, adjacent pairs merge (0+1, 2+3, …) and W doubles, so a run of N updates keeps
 * between N / W and MAX_HISTORY_RECORDS records, with W the least power of two ≥ N / 2048.
 *
 * Deterministic: `appendRecord` depends only on the log and the record, so a run resumed from
 * a saved log (JSON round-trips doubles exactly) continues it byte for byte. The twin keeps the
 * same rule (python/titans_torch/train.py `append_record`).
 */

/** The most records a run's stored history keeps (even, so that pairs merge evenly). */
export const MAX_HISTORY_RECORDS = 2048;

/** One applied update, as the trainer reports it to `hooks.onStep`. */
export interface StepRecord {
  step: number;
  /** Training loss of the update's batch (nats per predicted token). */
  loss: number;
  /** Learning rate the update used. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  tokensPerSecond: number;
}

/**
 * A run of consecutive applied updates, summarised. A one-update record is its StepRecord with
 * `firstStep = step` and `steps = 1`; trainer.json files written before the history was bounded
 * hold only such records, without the two fields.
 */
export interface HistoryRecord {
  /** The first update summarised. */
  firstStep: number;
  /** The last update summarised (its step number, as in StepRecord). */
  step: number;
  /** How many applied updates the record summarises (≥ 1). */
  steps: number;
  /** Mean training loss over those updates. */
  loss: number;
  /** The learning rate of the last update. */
  lr: number;
  /** Mean gradient norm over those updates (before clipping). */
  gradNorm: number;
  /** Mean of the updates' throughputs. */
  tokensPerSecond: number;
}

/**
 * The one-update record of a step.
 * @example stepHistoryRecord({ step: 7, loss: 2.1, lr: 1e-3, gradNorm: 0.8, tokensPerSecond: 900 }).steps; // 1
 */
export function stepHistoryRecord(r: StepRecord): HistoryRecord {
  return {
    firstStep: r.step,
    step: r.step,
    steps: 1,
    loss: r.loss,
    lr: r.lr,
    gradNorm: r.gradNorm,
    tokensPerSecond: r.tokensPerSecond,
  };
}

/**
 * Two adjacent records as one (`a` the older): means weighted by their counts, `b`'s lr.
 * @example mergeRecords(history[0], history[1]); // firstStep of the first, step and lr of the second
 */
export function mergeRecords(a: HistoryRecord, b: HistoryRecord): HistoryRecord {
  const steps = a.steps + b.steps;
  const mean = (x: number, y: number) => (x * a.steps + y * b.steps) / steps;
  return {
    firstStep: a.firstStep,
    step: b.step,
    steps,
    loss: mean(a.loss, b.loss),
    lr: b.lr,
    gradNorm: mean(a.gradNorm, b.gradNorm),
    tokensPerSecond: mean(a.tokensPerSecond, b.tokensPerSecond),
  };
}

/**
 * Adjacent pairs merged (0+1, 2+3, …); an odd last record stays as it is. Length ⌈n / 2⌉.
 * @example mergePairs(history).length === Math.ceil(history.length / 2);
 */
export function mergePairs(history: readonly HistoryRecord[]): HistoryRecord[] {
  const merged: HistoryRecord[] = [];
  for (let i = 0; i < history.length; i += 2) {
    const next = history[i + 1];
    merged.push(next ? mergeRecords(history[i]!, next) : history[i]!);
  }
  return merged;
}

/**
 * The log with one more applied update: it joins the newest record while that holds fewer than
 * W = history[0].steps updates; otherwise it starts a record, after merging adjacent pairs
 * (doubling W) when the log already holds `limit` records. Pure: `history` is not changed.
 * @example
 * let history: HistoryRecord[] = [];
 * history = appendRecord(history, { step: 1, loss: 5.5, lr: 1e-3, gradNorm: 2, tokensPerSecond: 900 });
 */
export function appendRecord(
  history: readonly HistoryRecord[],
  record: StepRecord,
  limit = MAX_HISTORY_RECORDS,
): HistoryRecord[] {
  if (!(Number.isInteger(limit) && limit >= 2 && limit % 2 === 0)) {
    throw new RangeError(`appendRecord: limit must be an even integer ≥ 2, got ${limit}`);
  }
  const one = stepHistoryRecord(record);
  const last = history[history.length - 1];
  if (!last) return [one];
  if (last.steps < history[0]!.steps) return [...history.slice(0, -1), mergeRecords(last, one)];
  return [...(history.length >= limit ? mergePairs(history) : history), one];
}

/**
 * A log brought within `limit` records by merging adjacent pairs as often as needed: what a
 * trainer.json written before the bound (one record per step, any number) becomes on loading,
 * the same records `appendRecord` would have kept (up to rounding in the means).
 * @example const history = boundHistory(legacy.map(stepHistoryRecord)); // ≤ MAX_HISTORY_RECORDS
 */
export function boundHistory(
  history: readonly HistoryRecord[],
  limit = MAX_HISTORY_RECORDS,
): HistoryRecord[] {
  let bounded = [...history];
  while (bounded.length > limit) bounded = mergePairs(bounded);
  return bounded;
}

/**
 * Applied updates the log summarises (Σ steps): the optimizer's step count.
 * @example historySteps(state.history) === state.optimizer.step;
 */
export function historySteps(history: readonly HistoryRecord[]): number {
  return history.reduce((n, r) => n + r.steps, 0);
}

/**
 * Mean training loss of the recent updates: over the newest records that together hold at least
 * `steps` updates (exactly the last `steps` while the log is at full resolution; a little more
 * once records summarise several), weighted by their counts. null for an empty log.
 * @example const trainLoss = recentLoss(state.history, 20);
 */
export function recentLoss(history: readonly HistoryRecord[], steps = 20): number | null {
  let sum = 0;
  let count = 0;
  for (let i = history.length - 1; i >= 0 && count < steps; i--) {
    sum += history[i]!.loss * history[i]!.steps;
    count += history[i]!.steps;
  }
  return count > 0 ? sum / count : null;
}
