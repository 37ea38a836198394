/**
 * Where needles go relative to what attention can see: the bound that keeps every needle out of
 * the attention layers' reach, and a task whose needles stay shallower than a given depth.
 * Browser-safe (the web demo trains with them).
 */
import type { Task } from './types.js';

/**
 * The deepest needle position (as a fraction of a context of `length`) that keeps every needle
 * outside what the attention layers can see from the answer: layers · window tokens back, plus the
 * question (≈ 40 tokens) — so only a memory can carry it.
 *
 * @example
 * maxDepthBeyondWindow(256, { layers: 2, window: 32 }); // 0.5125
 */
export function maxDepthBeyondWindow(length: number, model: { layers?: number; window?: number }): number {
  const reach = (model.layers ?? 2) * (model.window ?? 64) + 48;
  return Math.max(0, Math.min(0.9, (length - reach) / length - 0.05));
}

/**
 * A task whose needles sit at uniform depths in [0, maxDepth] (so that they lie beyond the window).
 *
 * @example
 * const task = shallowNeedles(passkeyTask({ digits: 1, cue: 'recall' }), maxDepthBeyondWindow(256, config));
 */
export function shallowNeedles(task: Task, maxDepth: number): Task {
  return {
    ...task,
    example: (rng, length, options) =>
      task.example(rng, length, { needleDepth: options?.needleDepth ?? rng.next() * maxDepth }),
  };
}
