/**
 * Long-context tasks as training data and as evaluations (browser-safe). A task example is
 * context + question → answer; the model reads `context + question` as one stream and must
 * produce `answer` (greedy decoding, exact match) — or, for examples that name `scored` answer
 * positions (MQAR), predict those positions given the true answer before each (teacher forcing).
 * Training sequences put the answer after the prompt and count only the answer's tokens (or only
 * the scored ones) in the loss.
 */
import type { TokenBatch } from '../data/dataset.js';
import { argMax, type Rng } from '../engine/index.js';
import type { TitansConfig } from '../models/config.js';
import { generate } from '../models/generate.js';
import { type ModelParams, releaseState } from '../models/model.js';
import { modelStream } from '../models/stream.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { BatchSource } from '../train/trainer.js';
import type { Task, TaskExample } from './tasks/types.js';

/**
 * Token ids of one example: what the model reads, what it must answer, and (when the example
 * names `scored` chars) the answer's token offsets to predict, which then equal the char offsets.
 */
export function encodeExample(
  tokenizer: Tokenizer,
  example: TaskExample,
): { prompt: Int32Array; answer: Int32Array; scored: number[] | null } {
  const answer = tokenizer.encode(example.answer);
  if (example.scored === undefined)
    return { prompt: tokenizer.encode(example.context + example.question), answer, scored: null };
  if (answer.length !== example.answer.length)
    throw new RangeError(
      `an example with scored answer positions needs one token per answer char; the tokenizer made ${answer.length} tokens of ${example.answer.length} chars`,
    );
  for (const offset of example.scored)
    if (!Number.isInteger(offset) || offset < 0 || offset >= answer.length)
      throw new RangeError(`scored answer offset ${offset} is outside the answer (${answer.length} chars)`);
  return { prompt: tokenizer.encode(example.context + example.question), answer, scored: example.scored };
}

/**
 * Training batches of a task at a fixed sequence length: each row is prompt + answer (+ padding),
 * the context sized so that the row fills `seqLen + 1` tokens; targets are −1 (ignored) except
 * where the next token is part of the answer (one of its `scored` positions, when it names
 * them). Needs a tokenizer where one character of ASCII text is one token (the byte tokenizer)
 * for the sizes to be exact; otherwise rows are padded.
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
      const { sequence, answerStart, scored } = tokens;
      const n = Math.min(sequence.length, seqLen + 1);
      for (let t = 0; t < seqLen; t++) inputs[row * seqLen + t] = t < n ? sequence[t]! : 0;
      // Position t predicts token t + 1.
      const predicted = scored
        ? scored.map((offset) => answerStart + offset)
        : Array.from({ length: sequence.length - answerStart }, (_, i) => answerStart + i);
      for (const p of predicted) if (p >= 1 && p < n) targets[row * seqLen + p - 1] = sequence[p]!;
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
  const { prompt, answer, scored } = encodeExample(tokenizer, example);
  const sequence = new Int32Array(prompt.length + answer.length);
  sequence.set(prompt);
  sequence.set(answer, prompt.length);
  return { sequence, answerStart: prompt.length, scored };
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

/** One evaluated example: what was asked, what the model answered, and its score. */
export interface ExampleRecord {
  /** The context length asked of the generator. */
  length: number;
  /** Tokens the model read before answering (context + question). */
  promptTokens: number;
  question: string;
  answer: string;
  /**
   * The model's answer: decoded greedily, or (teacher-forced examples) the answer with each
   * scored position replaced by the model's prediction.
   */
  predicted: string;
  score: number;
  /** Char offsets of the facts the answer depends on, in the context. */
  evidence: number[];
}

export interface EvaluateTaskOptions {
  lengths: number[];
  /** Examples per length. */
  examples: number;
  rng: Rng;
  /** Prompts are fed in pieces of at most this many tokens (bounds memory). Default 2048. */
  piece?: number;
  /** Score one greedy prediction (default: the task's own, else exact match after trimming). */
  score?: (predicted: string, answer: string) => number;
  onProgress?: (length: number, done: number, total: number) => void;
  /** Called with every example once scored (per-example predictions for a report). */
  onExample?: (record: ExampleRecord) => void;
}

/**
 * Accuracy at each context length: every example is read as a stream (state carried across
 * pieces), then the answer's length in tokens is decoded greedily — or, for an example naming
 * `scored` answer positions, the answer is read too and the example scores the fraction of those
 * positions the model predicts (argmax) given the true answer before each.
 *
 * @example
 * const result = await evaluateTask(params, config, byteTokenizer(), passkeyTask(), { lengths: [1024, 4096], examples: 50, rng: new Rng(0) });
 */
export async function evaluateTask(
  params: ModelParams,
  config: TitansConfig,
  tokenizer: Tokenizer,
  task: Task,
  options: EvaluateTaskOptions,
): Promise<TaskEvaluation> {
  const score = options.score ?? task.score ?? ((p: string, a: string) => (p.trim() === a.trim() ? 1 : 0));
  const piece = options.piece ?? 2048;
  const results: LengthResult[] = [];
  for (const length of options.lengths) {
    let correct = 0;
    for (let i = 0; i < options.examples; i++) {
      const example = task.example(options.rng, length);
      const { prompt, answer, scored } = encodeExample(tokenizer, example);
      let predicted: string;
      let points: number;
      if (scored) {
        const best = await teacherForcedPredictions(params, config, prompt, answer, piece);
        points = scored.filter((j) => best[j] === answer[j]).length / scored.length;
        const filled = Int32Array.from(answer);
        for (const j of scored) filled[j] = best[j]!;
        predicted = tokenizer.decode(filled);
      } else {
        predicted = tokenizer.decode(await greedyAnswer(params, config, prompt, answer.length, piece));
        points = score(predicted, example.answer);
      }
      correct += points;
      options.onExample?.({
        length,
        promptTokens: prompt.length,
        question: example.question,
        answer: example.answer,
        predicted,
        score: points,
        evidence: example.evidence,
      });
      options.onProgress?.(length, i + 1, options.examples);
    }
    results.push({ length, examples: options.examples, correct, accuracy: correct / options.examples });
  }
  return { task: task.name, chance: task.chance, results };
}

/** Reads `prompt` as one stream (in pieces of `piece` tokens) and decodes `n` tokens greedily. */
export async function greedyAnswer(
  params: ModelParams,
  config: TitansConfig,
  prompt: Int32Array,
  n: number,
  piece: number,
): Promise<number[]> {
  const { tokens, state } = await generate(params, config, prompt, {
    maxTokens: n,
    temperature: 0,
    promptChunk: piece,
  });
  releaseState(state, null);
  return tokens;
}

/**
 * Reads `prompt` (in pieces of at most `piece` tokens) and then `answer`, and returns the fraction
 * of the `scored` answer offsets where the argmax of the logits before them is the answer's token
 * (teacher forcing: every prediction sees the true answer before it).
 *
 * @example
 * await teacherForcedScore(params, config, prompt, encode('b:0 h:4'), [2, 6], 2048); // 0, 0.5 or 1
 */
export async function teacherForcedScore(
  params: ModelParams,
  config: TitansConfig,
  prompt: Int32Array,
  answer: Int32Array,
  scored: readonly number[],
  piece: number,
): Promise<number> {
  if (scored.length === 0) throw new RangeError('teacherForcedScore: no answer position is scored');
  const best = await teacherForcedPredictions(params, config, prompt, answer, piece);
  return scored.filter((j) => best[j] === answer[j]).length / scored.length;
}

/** The argmax prediction at every answer position j, given the prompt and answer[0 … j−1]. */
async function teacherForcedPredictions(
  params: ModelParams,
  config: TitansConfig,
  prompt: Int32Array,
  answer: Int32Array,
  piece: number,
): Promise<Int32Array> {
  if (prompt.length === 0) throw new RangeError('teacherForcedScore: the prompt is empty');
  const stream = modelStream(params, config);
  try {
    // The logits at the last prompt token predict answer[0]: read the prompt but that token first.
    await stream.feedPieces(prompt.subarray(0, prompt.length - 1), piece);
    const tail = new Int32Array(answer.length);
    tail[0] = prompt[prompt.length - 1]!;
    tail.set(answer.subarray(0, answer.length - 1), 1);
    // logits (1, A, V): row j predicts answer[j]. One read-back per example.
    return Int32Array.from((await stream.feed(tail, (logits) => argMax(logits, -1)))!);
  } finally {
    stream.close();
  }
}
