/**
 * A session: one text read piece by piece with the model's state — the neural memory, trained
 * while it reads — carried across calls. Read a document, ask, generate, read more; save the state
 * (a conversation's memory) and resume it later, exactly where it stopped.
 */
import { noGrad } from '../engine/tape.js';
import { dispose, tidy } from '../engine/tensor.js';
import { decodeTokens, feedAndReadLast, type SamplingOptions } from '../models/generate.js';
import { initialModelState, type ModelState, releaseState } from '../models/model.js';
import { type ModelStream, modelStream } from '../models/stream.js';
import type { TitansModel } from './model.js';
import { stateFromBytes, stateToBytes } from './state.js';
import { TextStream } from './text.js';

/** Options of `generate` and `stream`. */
export interface GenerationOptions extends Omit<SamplingOptions, 'rng'> {
  /** Tokens to generate at most. Default 200. */
  maxNewTokens?: number;
  /** Generation ends when one of these strings appears; the text is cut before it. */
  stop?: string | readonly string[];
  /** Called with each piece of settled text as it is generated (never half a character). */
  onText?: (text: string) => void;
}

/** Tokens the prompt is fed in at once (bounds memory; the result does not depend on it). */
const READ_PIECE = 512;

/**
 * A stream of text with the model's state carried along. Create one with `model.session()`.
 *
 * @example
 * const session = model.session();
 * await session.read(longDocument);                       // the memory learns the document
 * const answer = await session.generate('\nQ: What is the pass key?\nA:', { maxNewTokens: 8 });
 * await writeFile('chat.state', await session.saveState()); // later: model.session(bytes)
 * session.close();
 */
export class Session {
  private reader: ModelStream;
  /** Logits of the next token (after the last token read or generated); null before any. */
  private next: Float64Array | null = null;
  /** The last tokens, for the repetition penalty. */
  private recent: number[] = [];
  private closed = false;

  /** @internal use `model.session()`. */
  constructor(
    readonly model: TitansModel,
    state: ModelState | null = null,
    next: Float64Array | null = null,
  ) {
    this.reader = modelStream(model.params, model.config, state);
    this.next = next;
  }

  /** Tokens read and generated so far. */
  get position(): number {
    return this.reader.state?.position ?? 0;
  }

  private check(): void {
    if (this.closed) throw new Error('session: used after close()');
  }

  /**
   * Feeds `text`: the model reads it (the memory is written as it goes) and nothing is generated.
   * @example await session.read('The pass key is 7. Remember it. ');
   */
  async read(text: string): Promise<void> {
    this.check();
    const ids = this.model.tokenizer.encode(text);
    if (ids.length === 0) return;
    this.next = await feedAndReadLast(this.reader, ids, READ_PIECE);
    this.recent = [...this.recent, ...ids].slice(-64);
  }

  /**
   * Generates a continuation of everything read so far (after reading `prompt`, when given;
   * `generate(options)` continues without one) and resolves to the text. The state then includes every generated token, so the next call
   * continues exactly.
   *
   * @example
   * const text = await session.generate('The ', { maxNewTokens: 50, temperature: 0.7, seed: 1, onText: (t) => process.stdout.write(t) });
   */
  async generate(prompt?: string | GenerationOptions, options: GenerationOptions = {}): Promise<string> {
    let text = '';
    for await (const piece of this.stream(prompt, options)) text += piece;
    return text;
  }

  /**
   * The async-iterator form of `generate`: yields settled text pieces as they are produced.
   * Breaking out of the loop early leaves the state after the last token produced.
   *
   * @example
   * for await (const piece of session.stream('Once upon a time', { maxNewTokens: 100, seed: 3 })) process.stdout.write(piece);
   */
  async *stream(
    prompt?: string | GenerationOptions,
    options: GenerationOptions = {},
  ): AsyncGenerator<string, void, void> {
    this.check();
    // generate(options) continues what was read, without a prompt.
    if (typeof prompt === 'object') [prompt, options] = [undefined, prompt];
    if (prompt) await this.read(prompt);
    if (!this.next)
      throw new Error('session.generate: nothing has been read yet (pass a prompt or call read first)');
    const stops =
      options.stop === undefined ? [] : typeof options.stop === 'string' ? [options.stop] : options.stop;
    const text = new TextStream(this.model.tokenizer, stops);
    const { maxNewTokens, onText, stop: _stop, ...sampling } = options;
    const seed = sampling.seed ?? randomSeed(sampling.temperature);
    const tokens = decodeTokens(
      this.reader,
      this.next,
      { ...sampling, ...(seed === undefined ? {} : { seed }), maxTokens: maxNewTokens ?? 200 },
      this.recent,
    );
    for await (const { token, logits } of tokens) {
      this.next = logits;
      const piece = text.push(token);
      if (piece) {
        onText?.(piece);
        yield piece;
      }
      if (text.stopped) return;
    }
    const rest = text.finish();
    if (rest) {
      onText?.(rest);
      yield rest;
    }
  }

  /**
   * The `k` most likely next tokens after everything read so far, with their probabilities
   * (softmax of the logits, temperature 1).
   * @example await session.read('…\nThe pass key is '); session.nextTokens(3); // [{ text: '7', probability: 0.98, … }, …]
   */
  nextTokens(k = 5): { token: number; text: string; probability: number }[] {
    this.check();
    const logits = this.next;
    if (!logits) throw new Error('session.nextTokens: nothing has been read yet');
    let max = Number.NEGATIVE_INFINITY;
    for (const v of logits) max = Math.max(max, v);
    let total = 0;
    for (const v of logits) total += Math.exp(v - max);
    return Array.from(logits, (v, token) => ({ token, p: Math.exp(v - max) / total }))
      .sort((a, b) => b.p - a.p)
      .slice(0, k)
      .map(({ token, p }) => ({ token, text: this.model.tokenizer.decode([token]), probability: p }));
  }

  /**
   * Forgets what the memory learnt in this session: every memory layer goes back to its trained
   * initial state (attention keeps its window). What the model answers after this shows what
   * came from the memory.
   *
   * @example
   * await session.read(document); session.resetMemory(); await session.generate(question);
   */
  resetMemory(): void {
    this.check();
    const state = this.reader.state;
    if (!state) return;
    // Built in a scope: priming the memory with the persistent rows makes intermediates.
    const fresh = noGrad(() => tidy(() => initialModelState(this.model.params, this.model.config, 1)));
    const blocks = state.blocks.map((b, i) => {
      const memory = fresh.blocks[i]!.memory;
      if (!b.memory || !memory) return b;
      const mac =
        b.mac && fresh.blocks[i]!.mac ? { ...b.mac, readWeights: fresh.blocks[i]!.mac!.readWeights } : b.mac;
      return { ...b, memory, mac };
    });
    const next: ModelState = { ...state, blocks };
    releaseState(state, next);
    releaseState(fresh, next);
    this.reader = modelStream(this.model.params, this.model.config, next);
  }

  /**
   * The session's state as bytes (safetensors): the memory, caches and position, and the next
   * token's logits. `model.session(bytes)` resumes it exactly — in this process or another.
   *
   * @example
   * await writeFile('chat.state', await session.saveState());
   */
  async saveState(): Promise<Uint8Array> {
    this.check();
    if (!this.reader.state) throw new Error('session.saveState: nothing has been read yet');
    return stateToBytes(this.reader.state, {
      model: this.model.fingerprint,
      next: this.next ? Array.from(this.next) : null,
      recent: this.recent,
    });
  }

  /** @internal restores what `saveState` wrote (see `model.session(bytes)`). */
  static restore(model: TitansModel, bytes: Uint8Array): Session {
    const { state, extra } = stateFromBytes(bytes, 'session state');
    if (extra.model !== model.fingerprint) {
      dispose(state);
      throw new Error(
        `session state: saved by another model (${String(extra.model)}, this is ${model.fingerprint})`,
      );
    }
    const session = new Session(
      model,
      state as ModelState,
      Array.isArray(extra.next) ? Float64Array.from(extra.next as number[]) : null,
    );
    session.recent = Array.isArray(extra.recent) ? (extra.recent as number[]) : [];
    return session;
  }

  /** Frees the state. The session cannot be used afterwards; calling it twice is harmless. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.close();
  }
}

/** A fresh seed for sampling when none is given (greedy decoding needs none). */
function randomSeed(temperature: number | undefined): number | undefined {
  return temperature === 0 ? undefined : Math.floor(Math.random() * 2 ** 31);
}
