/**
 * Long-context tasks as training data and as evaluations (browser-safe). A task example is
 * context + question → answer; the model reads `context + question` as one stream and must
 * produce `answer` (greedy decoding, exact match). Training sequences put the answer after the
 * prompt and count only the answer's tokens in the loss.
 */
import type { TokenBatch } from '../data/dataset.js';
import type { Rng } from '../engine/index.js';
import type { TitansConfig } from '../models/config.js';
import { generate } from '../models/generate.js';
import { type ModelParams, releaseState } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { BatchSource } from '../train/trainer.js';
import type { Task, TaskExample } from './tasks/types.js';

/** Token ids of one example: what the model reads, and what it must answer. */
export function encodeExample(
  tokenizer: Tokenizer,
  example: TaskExample,
): { prompt: Int32Array; answer: Int32Array } {
  return {
    prompt: tokenizer.encode(example.context + example.question),
    answer: tokenizer.encode(example.answer),
  };
}

/**
 * Training batches of a task at a fixed sequence length: each row is prompt + answer (+ padding),
 * the context sized so that the row fills `seqLen + 1` tokens; targets are −1 (ignored) except
 * where the next token is part of the answer. Needs a tokenizer where one character of ASCII text
 * is one token (the byte tokenizer) for the sizes to be exact; otherwise rows are padded.
 *
 * @example
 * const source = taskBatchSource(passkeyTask({ digits: 1 }), byteTokenizer());
 * await trainLanguageModel(config, source, options, state);
 */
export function taskBatchSource(
  task: Task,
  tokenizer: Tokenizer,
  validation: { rng: Rng; batches: number; batch: number; seqLen: number } | null = null,
): BatchSource {
  const sample = (rng: Rng, batch: number, seqLen: number): TokenBatch => {
    const inputs = new Int32Array(batch * seqLen);
    const targets = new Int32Array(batch * seqLen).fill(-1);
    for (let row = 0; row < batch; row++) {
      const tokens = exampleOfLength(task, tokenizer, rng, seqLen + 1);
      const { sequence, answerStart } = tokens;
      const n = Math.min(sequence.length, seqLen + 1);
      for (let t = 0; t < seqLen; t++) inputs[row * seqLen + t] = t < n ? sequence[t]! : 0;
      for (let t = Math.max(answerStart - 1, 0); t < n - 1; t++) targets[row * seqLen + t] = sequence[t + 1]!;
    }
    return { inputs, targets };
  };
  const source: BatchSource = { sample };
  if (validation) {
    source.validation = Array.from({ length: validation.batches }, () =>
      sample(validation.rng, validation.batch, validation.seqLen),
    );
  }
  return source;
}

/**
 * An example whose prompt + answer is about `total` tokens: the context length is chosen from the
 * question and answer of a first draw, then the example is drawn again at that length.
 */
function exampleOfLength(task: Task, tokenizer: Tokenizer, rng: Rng, total: number) {
  const probe = task.example(rng.split(), Math.max(8, total)); // a story task needs the room
  const overhead = tokenizer.encode(probe.question + probe.answer).length;
  const contextLength = Math.max(8, total - overhead - 2);
  const example = task.example(rng, contextLength);
  const { prompt, answer } = encodeExample(tokenizer, example);
  const sequence = new Int32Array(prompt.length + answer.length);
  sequence.set(prompt);
  sequence.set(answer, prompt.length);
  return { sequence, answerStart: prompt.length };
}

/** Accuracy at one context length. */
export interface LengthResult {
  /** Context length asked of the generator (characters = tokens with the byte tokenizer). */
  length: number;
  examples: number;
  correct: number;
  accuracy: number;
}

export interface TaskEvaluation {
  task: string;
  chance: number;
  results: LengthResult[];
}

export interface EvaluateTaskOptions {
  lengths: number[];
  /** Examples per length. */
  examples: number;
  rng: Rng;
  /** Prompts are fed in pieces of at most this many tokens (bounds memory). Default 2048. */
  piece?: number;
  /** Score one prediction (default: the task's own, else exact match after trimming). */
  score?: (predicted: string, answer: string) => number;
  onProgress?: (length: number, done: number, total: number) => void;
}

/**
 * Accuracy of greedy answers at each context length: every example is read as a stream (state
 * carried across pieces), then the answer's length in tokens is decoded greedily.
 *
 * @example
 * const result = evaluateTask(params, config, byteTokenizer(), passkeyTask(), { lengths: [1024, 4096], examples: 50, rng: new Rng(0) });
 */
export function evaluateTask(
  params: ModelParams,
  config: TitansConfig,
  tokenizer: Tokenizer,
  task: Task,
  options: EvaluateTaskOptions,
): TaskEvaluation {
  const score = options.score ?? task.score ?? ((p: string, a: string) => (p.trim() === a.trim() ? 1 : 0));
  const results: LengthResult[] = [];
  for (const length of options.lengths) {
    let correct = 0;
    for (let i = 0; i < options.examples; i++) {
      const example = task.example(options.rng, length);
      const { prompt, answer } = encodeExample(tokenizer, example);
      const predicted = greedyAnswer(params, config, prompt, answer.length, options.piece ?? 2048);
      correct += score(tokenizer.decode(predicted), example.answer);
      options.onProgress?.(length, i + 1, options.examples);
    }
    results.push({ length, examples: options.examples, correct, accuracy: correct / options.examples });
  }
  return { task: task.name, chance: task.chance, results };
}

/** Reads `prompt` as one stream (in pieces of `piece` tokens) and decodes `n` tokens greedily. */
export function greedyAnswer(
  params: ModelParams,
  config: TitansConfig,
  prompt: Int32Array,
  n: number,
  piece: number,
): number[] {
  const { tokens, state } = generate(params, config, prompt, {
    maxTokens: n,
    temperature: 0,
    promptChunk: piece,
  });
  releaseState(state, null);
  return tokens;
}
