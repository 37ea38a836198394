/**
 * The shape every long-context evaluation task shares. A task draws examples from an explicit
 * Rng (same seed, same example); the model is shown `context + question` and must produce
 * `answer`. Contexts are printable ASCII so that, under the byte tokenizer, one character is one
 * token and `length` is the context's length in tokens.
 */
import type { Rng } from '../../engine/random.js';

/**
 * One evaluation example: the prompt is `context + question`; `answer` is decoded greedily and
 * scored by exact match after trimming, unless `scored` names the answer positions to predict.
 *
 * @example
 * const ex: TaskExample = {
 *   context: 'The grass is green. The pass key is 42. Remember it. 42 is the pass key. ',
 *   question: '\nWhat is the pass key? Answer: ',
 *   answer: '42',
 *   evidence: [20],
 * };
 */
export interface TaskExample {
  context: string;
  question: string;
  answer: string;
  /** char offsets in `context` of every fact the answer depends on (needles/supporting facts) */
  evidence: number[];
  /**
   * Char offsets in `answer` that the model must predict, each given the true answer before it
   * (teacher forcing); the rest of the answer is given, not predicted, and only these positions
   * count in the training loss. The score is the fraction predicted right. This is how Zoology
   * scores MQAR: each query key is given and its value predicted. Absent: the whole answer is
   * decoded greedily and scored by `Task.score`. Needs one token per answer char.
   */
  scored?: number[];
}

/**
 * Per-example options.
 *
 * @example
 * const options: ExampleOptions = { needleDepth: 0.5 }; // the needle in the middle
 */
export interface ExampleOptions {
  /** 0..1: fraction of the context where the needle goes (0 = first, 1 = last); default random. */
  needleDepth?: number;
}

/**
 * A generator of examples of one kind.
 *
 * @example
 * const task = passkeyTask();
 * const { context, question, answer } = task.example(new Rng(1), 4096, { needleDepth: 0.25 });
 * context.length; // 4096
 */
export interface Task {
  readonly name: string;
  readonly description: string;
  /** probability that a uniformly random guess of the answer is exactly right */
  readonly chance: number;
  /** Scores a greedy prediction in [0, 1] (default: exact match after trimming); unused for examples with `scored`. */
  score?(predicted: string, answer: string): number;
  /**
   * What this task does with `needleDepth`: 'depth' (default) puts the needle (or last supporting
   * fact) there; 'own' means the task places its facts itself and ignores it (MQAR's power-law
   * layout, custom data), so depth bounds such as `--max-depth` do not apply.
   */
  readonly placement?: 'depth' | 'own';
  /** an example whose context is exactly (or at most, if exact is impossible, within a few chars of) `length` characters */
  example(rng: Rng, length: number, options?: ExampleOptions): TaskExample;
}

/**
 * Checks a requested context length and needle depth, naming the task in the error.
 *
 * @example
 * const depth = checkExampleArgs('niah1', 1024, { needleDepth: 0.5 }); // 0.5
 * checkExampleArgs('niah1', 1024, {}); // undefined: the caller draws one
 */
export function checkExampleArgs(task: string, length: number, options?: ExampleOptions): number | undefined {
  if (!Number.isInteger(length) || length < 0)
    throw new RangeError(`${task}: length must be a non-negative integer, got ${length}`);
  const depth = options?.needleDepth;
  if (depth !== undefined && !(depth >= 0 && depth <= 1))
    throw new RangeError(`${task}: needleDepth must be in [0, 1], got ${depth}`);
  return depth;
}
