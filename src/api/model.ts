/**
 * `TitansModel`: a model with its tokenizer, ready to use — generate (streamed as text), read
 * long documents in a session whose memory persists, score a text, inspect the memory, save.
 * Get one from `loadModel` or `train`. Browser-safe (saving to a directory needs Node).
 */
import { dispose } from '../engine/tensor.js';
import { flattenTree } from '../engine/tree.js';
import { predictedBytes, type ScoreOptions, textLoss } from '../eval/perplexity.js';
import { serializeSafetensors } from '../io/safetensors.js';
import { toNamedArrays } from '../io/tensors.js';
import { configFile, type TitansConfig } from '../models/config.js';
import { countParameters, type ModelParams } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { type Inspection, inspectTokens } from './inspect.js';
import { importNode } from './runtime.js';
import { type GenerationOptions, Session } from './session.js';

/** What `model.score(text)` returns. */
export interface TextScore {
  /** Mean next-token loss, nats per token. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Total loss in bits over the UTF-8 bytes of the predicted tokens: comparable across tokenizers. */
  bitsPerByte: number;
  /** Tokens predicted (all but the first). */
  tokens: number;
  /** UTF-8 bytes of those tokens. */
  bytes: number;
  /** How the text was read (see `ScoreOptions.mode`). */
  mode: 'windowed' | 'streamed';
}

/** The files of a checkpoint, in memory: what `save` writes and `loadModel` reads. */
export interface ModelFiles {
  /** config.json */
  config: string;
  /** model.safetensors */
  weights: Uint8Array;
  /** tokenizer.json */
  tokenizer: string;
}

/**
 * A model and its tokenizer.
 *
 * @example
 * const model = await loadModel('sotu-mag');
 * console.log(await model.generate('The state of the Union is', { maxNewTokens: 80, seed: 1 }));
 * const { bitsPerByte } = await model.score('We hold these truths to be self-evident.');
 */
export class TitansModel {
  /** @internal use `loadModel` or `train`. */
  constructor(
    readonly config: TitansConfig,
    readonly params: ModelParams,
    readonly tokenizer: Tokenizer,
  ) {}

  /** Number of scalar parameters. */
  get parameters(): number {
    return countParameters(this.params);
  }

  /** Identifies the architecture (config and vocabulary): a saved session resumes only on a model with the same. */
  get fingerprint(): string {
    const text = JSON.stringify(this.config);
    let hash = 0x811c9dc5; // FNV-1a
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return `${this.config.variant}-${this.parameters}-${hash.toString(16).padStart(8, '0')}`;
  }

  /**
   * A session: text read piece by piece with the memory carried along; `state` (from
   * `session.saveState()`) resumes a saved one exactly.
   * @example const session = model.session(); await session.read(book); await session.generate('\nSummary:');
   */
  session(state?: Uint8Array): Session {
    return state ? Session.restore(this, state) : new Session(this);
  }

  /**
   * Continues `prompt` and resolves to the generated text, streamed UTF-8-safely to
   * `options.onText` as it comes.
   * @example
   * const text = await model.generate('The pass key is', { maxNewTokens: 4, temperature: 0 });
   */
  async generate(prompt: string, options: GenerationOptions = {}): Promise<string> {
    const session = this.session();
    try {
      return await session.generate(prompt, options);
    } finally {
      session.close();
    }
  }

  /**
   * The async-iterator form of `generate`: yields settled text pieces.
   * @example for await (const piece of model.stream('Once', { maxNewTokens: 40, seed: 2 })) process.stdout.write(piece);
   */
  async *stream(prompt: string, options: GenerationOptions = {}): AsyncGenerator<string, void, void> {
    const session = this.session();
    try {
      yield* session.stream(prompt, options);
    } finally {
      session.close();
    }
  }

  /**
   * The loss of `text` under the model: nats per token, perplexity, bits per byte. Windowed by
   * default (fresh state every `seqLen` tokens, as in training); `mode: 'streamed'` reads it as one
   * stream with the memory carried across.
   * @example const { bitsPerByte } = await model.score(text, { mode: 'streamed' });
   */
  score(text: string, options: ScoreOptions = {}): Promise<TextScore> {
    return this.scoreTokens(this.tokenizer.encode(text), options);
  }

  /**
   * `score` for text already tokenised with `model.tokenizer`.
   * @example const { loss } = await model.scoreTokens(model.tokenizer.encode(text).subarray(0, 4097));
   */
  async scoreTokens(ids: Int32Array, options: ScoreOptions = {}): Promise<TextScore> {
    const { nats, tokens } = await textLoss(this.params, this.config, ids, options);
    const bytes = predictedBytes(this.tokenizer, ids);
    return {
      loss: nats / tokens,
      perplexity: Math.exp(nats / tokens),
      bitsPerByte: nats / Math.LN2 / bytes,
      tokens,
      bytes,
      mode: options.mode ?? 'windowed',
    };
  }

  /**
   * The memory at work over `text`: per token and memory layer/head, the surprise ‖∇ℓ‖, the gates
   * α, η, θ and the recall error, and the model's loss per token (see `Inspection`).
   * @example const { tokens, memory } = await model.inspect('The pass key is 7. Remember it.');
   */
  async inspect(text: string): Promise<Inspection> {
    const ids = this.tokenizer.encode(text);
    if (ids.length === 0) throw new RangeError('inspect: the text is empty');
    const traced = await inspectTokens(this.params, this.config, ids);
    // Each token's own text; the bytes of a split character show on its last byte.
    let shown = '';
    const tokens = Array.from(ids, (id, i) => {
      const upTo = this.tokenizer.decode(ids.subarray(0, i + 1));
      const settled = upTo.endsWith('\uFFFD') && i + 1 < ids.length ? shown : upTo;
      const piece = settled.slice(shown.length);
      shown = settled;
      return { id, text: piece };
    });
    return { tokens, ...traced };
  }

  /**
   * The checkpoint's files in memory (config.json with model_type, model.safetensors,
   * tokenizer.json): for a download in a browser, or to send a trained model between workers.
   * @example const { config, weights, tokenizer } = await model.files();
   */
  async files(): Promise<ModelFiles> {
    const weights = serializeSafetensors(await toNamedArrays(flattenTree(this.params)), {
      format: 'titans-ts',
      variant: this.config.variant,
    });
    return {
      config: `${JSON.stringify(configFile(this.config), null, 2)}\n`,
      weights,
      tokenizer: `${JSON.stringify(this.tokenizer.toJSON())}\n`,
    };
  }

  /**
   * Writes the model as a checkpoint directory (config.json, model.safetensors, tokenizer.json),
   * atomically. Node only.
   * @example await model.save('models/my-model');
   */
  async save(dir: string): Promise<void> {
    const { saveModelCheckpoint } = await importNode<typeof import('../io/model-checkpoint.js')>(
      new URL('../io/model-checkpoint.js', import.meta.url).href,
    );
    await saveModelCheckpoint(dir, { config: this.config, params: this.params, tokenizer: this.tokenizer });
  }

  /** Frees the parameters; the model cannot be used afterwards. */
  dispose(): void {
    dispose(this.params);
  }

  toString(): string {
    const { variant, dModel, layers, window } = this.config;
    return `TitansModel(${variant}, ${this.parameters.toLocaleString('en-US')} parameters, d=${dModel}, ${layers} layers, window ${window}, ${this.tokenizer.kind} tokenizer of ${this.tokenizer.vocabSize})`;
  }

  /** How Node's console.log and util.inspect show a model. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
