/**
 * Seeded generators for long-context evaluation (browser-safe: nothing here imports `node:*`;
 * callers load the haystack text, e.g. `loadText('builtin:sotu')`, and pass it in).
 *
 *   niah1         RULER S-NIAH-1, pass key in repeated filler        passkeyTask
 *   niah2         RULER S-NIAH-2, 7-digit number in natural text      numberNeedleTask
 *   niah3         RULER S-NIAH-3, UUID in natural text                uuidNeedleTask
 *   mqar          Zoology multi-query associative recall              mqarTask
 *   babilong-qa1  bAbI single supporting fact in natural text         babiTask('qa1', …)
 *   babilong-qa2  bAbI two supporting facts in natural text           babiTask('qa2', …)
 *   custom        JSON Lines of {context, question, answer}           parseCustomJsonl, exactMatch
 */
import { babiTask } from './babilong.js';
import type { Haystack } from './haystack.js';
import { mqarTask } from './mqar.js';
import { numberNeedleTask, passkeyTask, uuidNeedleTask } from './niah.js';
import type { Task } from './types.js';

export * from './babilong.js';
export * from './custom.js';
export * from './haystack.js';
export * from './mqar.js';
export * from './niah.js';
export * from './placement.js';
export * from './types.js';

/**
 * The tasks by name, each with its default options, built over a haystack (the tasks that do
 * not use one ignore it).
 *
 * @example
 * const task = TASKS['babilong-qa1'](haystack);
 * Object.keys(TASKS); // ['niah1', 'niah2', 'niah3', 'mqar', 'babilong-qa1', 'babilong-qa2']
 */
export const TASKS = {
  niah1: () => passkeyTask(),
  niah2: (haystack: Haystack) => numberNeedleTask(haystack),
  niah3: (haystack: Haystack) => uuidNeedleTask(haystack),
  mqar: () => mqarTask(),
  'babilong-qa1': (haystack: Haystack) => babiTask('qa1', haystack),
  'babilong-qa2': (haystack: Haystack) => babiTask('qa2', haystack),
} as const satisfies Record<string, (haystack: Haystack) => Task>;

/** A name `TASKS` knows. */
export type TaskName = keyof typeof TASKS;

/**
 * The task called `name` (see `TASKS`); an unknown name throws, listing the valid ones.
 *
 * @example
 * taskByName('niah2', Haystack.fromText(text)).chance; // 1 / 9e6
 * taskByName('niah9', haystack); // RangeError: unknown task 'niah9'; valid: niah1, niah2, ...
 */
export function taskByName(name: string, haystack: Haystack): Task {
  if (!Object.hasOwn(TASKS, name))
    throw new RangeError(`unknown task '${name}'; valid: ${Object.keys(TASKS).join(', ')}`);
  return TASKS[name as TaskName](haystack);
}
